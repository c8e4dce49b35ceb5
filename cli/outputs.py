"""Every command's output checks, with what no command may ever write over wherever it lies.

``engine.files.safe_output`` checks one output (writable, ``--force`` to replace a file or to write into a foreign
folder); this adds the parts of CompactRig's own folders found around the output: a session's own files
(``session.json``, the trial store, its lock, ``stimuli/``: in any session folder, not only the one a
command was given) and a stimulus set's manifest and PNGs. Those are refused even with ``--force``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from compactrig.engine.errors import CompactRigError
from compactrig.engine.files.safe_output import check_output_file, check_output_folder
from compactrig.rig.session.folder import SESSION_FILE, session_files
from compactrig.stimuli.stimulus_set import MANIFEST


def owned_parts(path: Path) -> list[Path]:
    """The files of sessions and stimulus sets that ``path`` is, or lies in (each of its folders is looked at)."""
    resolved = Path(path).absolute().resolve()
    owned: list[Path] = []
    for folder in resolved.parents:
        if (folder / SESSION_FILE).is_file():
            owned += session_files(folder)
    if (resolved.parent / MANIFEST).is_file():
        owned += [resolved.parent / MANIFEST, *resolved.parent.glob("*.png")]
    return owned


def check_file(path: Path, flag: str, force: bool, also: Iterable[Path] = ()) -> Path:
    """``path`` as an output file (``engine.files.safe_output.check_output_file``), never a session's or a stimulus
    set's own file."""
    return check_output_file(path, flag, force, [*owned_parts(path), *also])


def check_folder(folder: Path, flag: str, force: bool, ours: Callable[[Path], bool], what: str) -> Path:
    """``folder`` as an output folder (``engine.files.safe_output.check_output_folder``), never a session folder or a
    folder inside one (its ``stimuli/`` is the session's record of what was shown)."""
    resolved = Path(folder).absolute().resolve()
    for candidate in (resolved, *resolved.parents):
        if (candidate / SESSION_FILE).is_file():
            raise CompactRigError(f"{flag} {folder}: is inside the session {candidate}, whose files CompactRig never "
                                  "writes over; choose a folder outside it (queue images into a session with the "
                                  "window's closed loop or `compactrig loop run`)")
    return check_output_folder(folder, flag, force, ours, what)


def check_apart(files: Iterable[tuple[str, Path | None]], folders: Iterable[tuple[str, Path | None]] = ()) -> None:
    """A command's outputs (flag, path; None: not asked for) never on one file, and no output file inside an output
    folder: one would replace the other without a word."""
    named = [(flag, Path(path).absolute().resolve()) for flag, path in files if path is not None]
    for k, (flag, path) in enumerate(named):
        for other, other_path in named[k + 1:]:
            if path == other_path:
                raise CompactRigError(f"{flag} and {other} are both {path}; give two files")
    for folder_flag, folder in folders:
        if folder is None:
            continue
        inside = Path(folder).absolute().resolve()
        for flag, path in named:
            if inside in path.parents:
                raise CompactRigError(f"{flag} {path} is inside {folder_flag} {folder}, which the command fills; "
                                      "put it elsewhere")

