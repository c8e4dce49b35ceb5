"""What the user sees when something fails that CompactRig did not expect: one line and a log file.

Expected problems are ``CompactRigError`` messages. Anything else is a defect: its traceback is what
a developer needs, and is no use to a physiologist at the rig, so it goes to a new file in the user
log folder (``platformdirs.user_log_dir("compactrig")``, or ``COMPACTRIG_LOG_DIR`` when set) and the
user is told, in one line, what failed and where that file is. The command line and every window job
report through ``report_unexpected``.
"""

from __future__ import annotations

import os
import tempfile
import traceback
from datetime import datetime
from pathlib import Path

import platformdirs

SUMMARY_CHARS = 200
"""The longest exception message quoted in the user's line (the log holds all of it)."""


def log_dir() -> Path:
    """Where crash logs go: ``COMPACTRIG_LOG_DIR`` when set, else the platform's user log folder."""
    return Path(os.environ.get("COMPACTRIG_LOG_DIR") or platformdirs.user_log_dir("compactrig"))


def _write_log(text: str) -> Path:
    """A new file holding ``text`` in the log folder (the temporary folder when that cannot be written)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for folder in (log_dir(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(prefix=f"crash-{stamp}-", suffix=".log", dir=folder)
            with os.fdopen(handle, "w", encoding="utf-8") as log:
                log.write(text)
            return Path(name)
        except OSError:
            continue
    raise OSError("neither the log folder nor the temporary folder can be written")


def report_unexpected(what: str, error: BaseException) -> str:
    """Writes ``error``'s traceback to a new log file and returns the one line that tells the user
    that ``what`` failed, why in brief, and where the log is."""
    message = " ".join(str(error).split())
    if len(message) > SUMMARY_CHARS:
        message = message[:SUMMARY_CHARS - 3] + "..."
    summary = f"{type(error).__name__}: {message}" if message else type(error).__name__
    details = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    header = f"{what} failed ({datetime.now().isoformat(timespec='seconds')})\n"
    try:
        where = f"the traceback is in {_write_log(header + details)}; please send that file with a report"
    except OSError as unwritable:
        where = f"no log could be written ({unwritable})"
    return f"{what} failed unexpectedly ({summary}); {where}"
