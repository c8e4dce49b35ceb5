"""Where sessions are kept and which were used lately: what the window's "Recent sessions" list shows.

A new session goes under the sessions folder (``COMPACTRIG_SESSIONS_DIR``, else ``sessions`` in the user
data directory, which on Linux sits under the hidden ``~/.local/share``: hard to reach from a file dialog,
so the list names it and the window reveals it with one click). The list holds the sessions the window
started, resumed or opened (remembered between runs, wherever they are) and those found in the sessions
folder, newest first; a folder that no longer holds a readable session is left out, never an error.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from compactrig.engine.errors import CompactRigError
from compactrig.rig.session.folder import SESSION_FILE, read_snapshot

SESSIONS_ENV = "COMPACTRIG_SESSIONS_DIR"
REMEMBERED = 20
"""Sessions remembered between runs (most recent first)."""


def sessions_root() -> Path:
    """The folder new sessions go in."""
    configured = os.environ.get(SESSIONS_ENV)
    return Path(configured) if configured else Path(platformdirs.user_data_dir("compactrig")) / "sessions"


def new_session_folder() -> Path:
    """A folder for a session started now, in ``sessions_root``."""
    return sessions_root() / time.strftime("session-%Y%m%d-%H%M%S")


@dataclass(frozen=True)
class RecentSession:
    folder: Path
    created: str
    """When it was created (``session.json``'s ISO time)."""
    source: str
    images: int

    def describe(self) -> str:
        """One line: when, which source, how many images, the folder's name."""
        when = self.created[:16].replace("T", " ")
        return f"{when}  {self.source}, {self.images} images  ({self.folder.name})"


def remember(remembered: list[str], folder: Path | str) -> list[str]:
    """``remembered`` with ``folder`` first (once), at most ``REMEMBERED`` long."""
    path = str(Path(folder).absolute())
    return [path, *(f for f in remembered if f != path)][:REMEMBERED]


def _read(folder: Path) -> RecentSession | None:
    try:
        snapshot = read_snapshot(folder)
    except CompactRigError:
        return None
    rig_source = snapshot["rig"].get("source")
    source = snapshot["plan"].get("source") or (rig_source.get("name") if isinstance(rig_source, dict) else None)
    return RecentSession(folder, snapshot["created"], str(source or "unknown source"), len(snapshot["stimulus_ids"]))


def recent_sessions(remembered: list[str], root: Path, limit: int = REMEMBERED) -> list[RecentSession]:
    """The remembered sessions and those in ``root``, each once, newest first, that can still be read."""
    folders = {Path(f).absolute(): None for f in remembered}
    if root.is_dir():
        folders |= {p.absolute(): None for p in root.iterdir() if (p / SESSION_FILE).is_file()}
    found = [s for s in map(_read, folders) if s is not None]
    return sorted(found, key=lambda s: s.created, reverse=True)[:limit]
