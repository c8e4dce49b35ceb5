"""The session folder: snapshots of what the session used, and exclusive access.

``DIR/session.json`` holds the rig file, the bank's identity, the unit-to-model mapping,
the stimulus set, the source and the software version; ``DIR/stimuli/`` is a copy of the
stimulus set; ``DIR/trials.sqlite`` the trial store; ``DIR/lock`` is held with ``flock`` by
the process using the session, so a second process is refused and a lock left by a killed
process is free again at once (the kernel drops it with the process).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any

from engine.errors import CompactRigError

SESSION_FILE = "session.json"
LOCK_FILE = "lock"
STORE_FILE = "trials.sqlite"
STIMULI_DIR = "stimuli"


class SessionLock:
    """An exclusive ``flock`` on ``DIR/lock``, naming the holder's PID for the refusal message."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_FILE
        self._handle = None

    def acquire(self) -> "SessionLock":
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise CompactRigError(f"{self.path.parent}: session in use by {holder}; close it there first "
                                  "(a lock left by a killed process is released automatically)") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}")
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def write_snapshot(folder: Path, snapshot: dict[str, Any], stimuli: Path) -> None:
    """Record what the session uses (atomically) and copy the stimulus set in."""
    target = folder / STIMULI_DIR
    if not target.exists():
        shutil.copytree(stimuli, target)
    staging = folder / f".{SESSION_FILE}.tmp"
    staging.write_text(json.dumps(snapshot, indent=1))
    os.replace(staging, folder / SESSION_FILE)


def read_snapshot(folder: Path) -> dict[str, Any]:
    path = folder / SESSION_FILE
    if not path.is_file():
        raise CompactRigError(f"{folder}: not a session folder (no {SESSION_FILE}); start one with "
                              "`compactrig session run`")
    try:
        return json.loads(path.read_text())
    except ValueError as error:
        raise CompactRigError(f"{path}: unreadable ({error})") from None
