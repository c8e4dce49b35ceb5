"""The session folder: snapshots of what the session used, and exclusive access.

``DIR/session.json`` holds the rig the session runs with (the rig file, its ``[source]`` as the command
line or the window set it: the one home of the session's source), the plan (stimuli, unit-to-model
mapping, bank, repeats), the bank's identity, the stimulus set (ids and each image's pixel hash), the
session's id and the software version; ``DIR/stimuli/`` is a copy of the stimulus set;
``DIR/trials.sqlite`` the trial store; ``DIR/lock`` is held (through ``filelock``: ``flock`` on Linux
and macOS, ``msvcrt`` locking on Windows) by the process using the session, so a second process is
refused, and a lock left by a killed process is free again at once (the
operating system drops it with the process). ``DIR/lock.holder`` names the holder for the message.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from compactrig.engine.errors import CompactRigError
from compactrig.engine.files.safe_output import write_atomically
from compactrig.rig.presenter.refresh import RefreshCheck

SESSION_FILE = "session.json"
LOCK_FILE = "lock"
HOLDER_FILE = "lock.holder"
STORE_FILE = "trials.sqlite"
STIMULI_DIR = "stimuli"
REFRESH_KEY = "refresh_measured"
"""In ``session.json``: the measured refresh of each run of the session (``RefreshCheck.record``), oldest first."""
STARTING_FILE = "starting.json"
"""The parts a start is writing, there until its ``session.json`` is: a start killed half-way is known by it."""


class SessionLock:
    """An exclusive lock on ``DIR/lock``; ``DIR/lock.holder`` names the holder's PID for the refusal message."""

    def __init__(self, folder: Path) -> None:
        # imported here: every command that writes a file learns the session files' names from this module,
        # and filelock's import (~80 ms) is paid only by those that lock a session (issue 41)
        from filelock import FileLock

        self.path = folder / LOCK_FILE
        self._lock = FileLock(self.path, timeout=0, thread_local=False)

    def acquire(self) -> SessionLock:
        from filelock import Timeout

        holder = self.path.with_name(HOLDER_FILE)
        try:
            self._lock.acquire()
        except Timeout:
            try:
                who = holder.read_text().strip() or "another process"
            except OSError:
                who = "another process"
            raise CompactRigError(f"{self.path.parent}: session in use by {who}; close it there first "
                                  "(a lock left by a killed process is released automatically)") from None
        holder.write_text(f"process {os.getpid()}")
        return self

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release()


def write_snapshot(folder: Path, snapshot: dict[str, Any]) -> None:
    """Record what the session uses (atomically: a reader sees the old snapshot or the new one)."""
    text = json.dumps(snapshot, indent=1)
    write_atomically(folder / SESSION_FILE, lambda path: path.write_text(text))


def session_files(folder: Path) -> list[Path]:
    """What a session folder holds of its own: no command writes over these, even with ``--force``."""
    return [folder / name for name in (SESSION_FILE, STORE_FILE, f"{STORE_FILE}-journal", f"{STORE_FILE}-wal",
                                       f"{STORE_FILE}-shm", STIMULI_DIR, LOCK_FILE, HOLDER_FILE, STARTING_FILE)]


def read_snapshot(folder: Path) -> dict[str, Any]:
    path = folder / SESSION_FILE
    if not path.is_file():
        raise CompactRigError(f"{folder}: not a session folder (no {SESSION_FILE}); start one with "
                              "`compactrig session run`")
    try:
        snapshot = json.loads(path.read_text())
    except (ValueError, OSError) as error:
        raise CompactRigError(f"{path}: unreadable ({error})") from None
    kinds = {"plan": dict, "rig": dict, "bank": dict, "stimulus_ids": list, "created": str}
    wrong = [key for key, kind in kinds.items() if not isinstance(snapshot, dict)
             or not isinstance(snapshot.get(key), kind)]
    if not wrong and not all(isinstance(image_id, str) for image_id in snapshot["stimulus_ids"]):
        wrong = ["stimulus_ids"]
    if wrong:
        raise CompactRigError(f"{path}: {wrong[0]!r} is missing or not of its kind (edited?); restore session.json "
                              "from a backup")
    return snapshot


def record_refresh(folder: Path, check: RefreshCheck) -> None:
    """Add this run's measured refresh to ``session.json`` (the caller holds the session lock)."""
    snapshot = read_snapshot(folder)
    kept = snapshot.get(REFRESH_KEY)
    snapshot[REFRESH_KEY] = [*(kept if isinstance(kept, list) else []), check.record()]
    write_snapshot(folder, snapshot)


def recorded_refreshes(snapshot: dict[str, Any]) -> list[RefreshCheck]:
    """The measured refresh of each run ``session.json`` recorded (none before this was recorded)."""
    kept = snapshot.get(REFRESH_KEY)
    checks = [RefreshCheck.from_record(record) for record in kept] if isinstance(kept, list) else []
    return [check for check in checks if check is not None]
