"""Writing a command's outputs without destroying what CompactRig did not make.

Every output (``--out``, ``--npz``, ``--nwb``, ``--png``, ``--csv``) is checked before any long work
starts: the folder it goes into must exist or be creatable and be writable, an existing file is replaced
only when the user says ``--force``, files that belong to something else (a session's store) are never
replaced, and a non-empty folder that is not CompactRig's own output is written into only with
``--force``. The output itself is written beside its final name and renamed into place, so a crash or an
error never leaves half a file under the real name and a failed write keeps the old file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from compactrig.engine.errors import CompactRigError

T = TypeVar("T")


def write_atomically(path: str | Path, write: Callable[[Path], T]) -> T:
    """Call ``write(temporary)`` for a file beside ``path`` (same suffix, so formats are kept), then rename it
    over ``path`` (its folder is created if missing); returns what ``write`` returned. On any failure the
    temporary file goes and ``path`` is as it was."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        result = write(temporary)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise CompactRigError(f"{path}: cannot write it ({error.strerror or error}); check the folder and the "
                              "free space") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return result


def check_writable_folder(folder: str | Path, flag: str) -> None:
    """Refuse (one line) unless ``folder`` is, or could be created as, a writable folder; creates nothing."""
    folder = Path(folder).absolute()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise CompactRigError(f"{flag} {folder}: {existing} is a file, not a folder; choose another place")
    try:
        handle, probe = tempfile.mkstemp(prefix=".compactrig-write-test-", dir=existing)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise CompactRigError(f"{flag} {folder}: cannot write in {existing} ({error.strerror or error}); choose "
                              "another place or fix its permissions") from None


def check_output_file(path: str | Path, flag: str, force: bool, protected: Iterable[Path] = ()) -> Path:
    """Refuse ``path`` as an output if it is (or is inside) one of ``protected`` (even with ``force``), is a folder,
    already exists without ``force``, or cannot be written; returns it."""
    path = Path(path)
    resolved = path.resolve()
    for owned in protected:
        owned = Path(owned).resolve()
        if resolved == owned or owned in resolved.parents:
            raise CompactRigError(f"{flag} {path}: that is {owned}, which CompactRig must not replace; choose "
                                  "another file")
    if path.is_dir():
        raise CompactRigError(f"{flag} {path}: is a folder; give a file name")
    if path.exists() and not force:
        raise CompactRigError(f"{flag} {path}: already exists; add --force to replace it, or choose another name")
    check_writable_folder(path.parent, flag)
    return path


def check_output_folder(folder: str | Path, flag: str, force: bool, ours: Callable[[Path], bool],
                        what: str) -> Path:
    """Refuse ``folder`` as an output folder if it is a file, cannot be written, or already holds files without
    being ``what`` (``ours(folder)`` says whether it is) unless ``force``; returns it."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CompactRigError(f"{flag} {folder}: is a file, not a folder; choose a folder")
    if folder.is_dir() and any(folder.iterdir()) and not ours(folder) and not force:
        raise CompactRigError(f"{flag} {folder}: holds files and is not {what}; choose a new or empty folder (or "
                              "add --force to write into it: nothing of yours there is deleted or replaced)")
    check_writable_folder(folder, flag)
    return folder
