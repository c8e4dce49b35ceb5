"""Paths read from a file (a manifest entry, an archive member) stay inside the folder they came from.

A stimulus set's ``manifest.json``, a session's snapshot or a zip of images is data, written by anyone: a
name in it such as ``../x/y``, ``/etc/passwd`` or ``C:\\x`` must never make CompactRig read, overwrite
or delete a file elsewhere. Names are checked as written (on POSIX and Windows rules alike, since a file
made on one system is read on the other) and, for files on disk, again after links are resolved.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

from compactrig.engine.errors import CompactRigError


def leaves_folder(name: str) -> bool:
    """True when the relative ``name`` could point outside its folder: empty, absolute, a drive, or a ``..``."""
    if not isinstance(name, str) or not name.strip() or "\0" in name:
        return True
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    return (posix.is_absolute() or bool(windows.anchor) or ".." in posix.parts or ".." in windows.parts)


def path_inside(folder: str | Path, name: str, what: str) -> Path:
    """``folder / name``, refused (one line naming ``what``) if it leaves ``folder``, links included."""
    base = Path(folder).resolve()
    target = (base / name).resolve() if not leaves_folder(name) else None
    if target is None or (target != base and base not in target.parents):
        raise CompactRigError(f"{what}: {name!r} leads outside {folder}; only files inside it are used (fix that "
                              "entry, or the link)")
    return target


def check_member_name(name: str, archive: str | Path) -> str:
    """An archive member's name, refused if it leaves the archive (``../x.png``, ``/x.png``, ``C:\\x.png``)."""
    if leaves_folder(name):
        raise CompactRigError(f"{archive}: member {name!r} leaves the archive (an absolute path or ..); "
                              "re-create the archive with relative names")
    return name
