"""Read image collections from a folder, a .zip (the published session zips included) or tar shards.

Images are taken in file-name order; each image's id is its file stem
(``image0007``), which every later step keeps. ``list_images`` only lists; a range is decoded
when it is read, so collections far larger than memory stream through in chunks.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from compactrig.engine.errors import CompactRigError
from compactrig.engine.inside_folder import check_member_name
from compactrig.engine.preprocess import to_model_image

TAR_SUFFIXES = (".tar",)
"""Shard files a folder of shards holds (uncompressed tar: members are read by seeking)."""
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp"}


@dataclass(frozen=True)
class ImageCollection:
    """Images ready for the models, with the ids they keep everywhere."""

    ids: list[str]
    pixels: np.ndarray  # uint8 (N, 112, 112, 3)

    def __len__(self) -> int:
        return len(self.ids)


def _is_image_name(name: str) -> bool:
    path = PurePosixPath(name)
    return (path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
            and "__MACOSX" not in path.parts)


def _decode(data: bytes | Path, where: str) -> np.ndarray:
    try:
        source = io.BytesIO(data) if isinstance(data, bytes) else data
        with Image.open(source) as image:
            image.load()
            return to_model_image(image)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise CompactRigError(f"{where}: not a readable image ({error}); remove or replace it") from None


@dataclass(frozen=True)
class ImageListing:
    """The images of a folder, zip or tar shards, listed but not decoded: ids (file stems, unique) and where
    each one is. ``read(start, stop)`` decodes just that range, so a collection of any size is streamed
    in chunks and memory holds one chunk of pixels (plus the names)."""

    path: Path
    ids: list[str]
    where: list[str]
    """Per image, the file it comes from (``archive:member`` inside a zip or tar), for provenance."""
    _members: list = field(repr=False, compare=False)
    """Per image: (archive index or -1 for a plain file, member name or file path)."""
    _archives: list[Path] = field(repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.ids)

    def read(self, start: int = 0, stop: int | None = None,
             progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """uint8 ``(n, 112, 112, 3)`` for images ``start:stop``, converted as the models expect."""
        stop = len(self.ids) if stop is None else min(stop, len(self.ids))
        return self.read_at(range(start, stop), progress)

    def read_at(self, indices: Sequence[int], progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """uint8 ``(n, 112, 112, 3)`` for the images at ``indices`` (each archive opened once)."""
        pixels = np.empty((len(indices), 112, 112, 3), dtype=np.uint8)
        opened: dict[int, zipfile.ZipFile | tarfile.TarFile] = {}
        try:
            for row, index in enumerate(indices):
                archive, member = self._members[index]
                if archive < 0:
                    data: bytes | Path = member
                else:
                    if archive not in opened:
                        opened[archive] = _open_archive(self._archives[archive])
                    data = _member_bytes(opened[archive], member, self.where[index])
                pixels[row] = _decode(data, self.where[index])
                if progress is not None:
                    progress(row + 1, len(pixels))
        finally:
            for handle in opened.values():
                handle.close()
        return pixels


def _open_archive(path: Path) -> zipfile.ZipFile | tarfile.TarFile:
    return zipfile.ZipFile(path) if zipfile.is_zipfile(path) else tarfile.open(path)


def _member_bytes(archive: zipfile.ZipFile | tarfile.TarFile, member: str, where: str) -> bytes:
    if isinstance(archive, zipfile.ZipFile):
        return archive.read(member)
    handle = archive.extractfile(member)
    if handle is None:
        raise CompactRigError(f"{where}: not a regular file in the tar; remove it from the shard")
    return handle.read()


def _archive_names(path: Path) -> list[str]:
    """Image member names of a zip or tar (shard), in archive order."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if not n.endswith("/")]
        else:
            with tarfile.open(path) as archive:
                names = [m.name for m in archive.getmembers() if m.isfile()]
    except (tarfile.TarError, OSError, EOFError) as error:
        raise CompactRigError(f"{path}: not a readable zip or tar ({error}); re-create it") from None
    return [check_member_name(n, path) for n in names if _is_image_name(n)]


def _is_archive(path: Path) -> bool:
    return path.is_file() and (zipfile.is_zipfile(path) or tarfile.is_tarfile(path))


def list_images(path: str | Path) -> ImageListing:
    """The images of a folder (not recursive), a .zip, a .tar, or a folder of .tar shards (WebDataset style,
    shards and members in name order): ids and locations, nothing decoded."""
    path = Path(path)
    if not path.exists():
        raise CompactRigError(f"{path}: no such file or folder; give a folder of images, a .zip or .tar shards")
    archives: list[Path] = []
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and _is_image_name(p.name))
        entries = [(p.stem, str(p.absolute()), (-1, p)) for p in files]
        if not entries:
            archives = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(TAR_SUFFIXES))
    elif _is_archive(path):
        archives = [path]
    else:
        raise CompactRigError(f"{path}: not a folder, a .zip or a .tar of images; give one of those")
    if archives:
        entries = [(PurePosixPath(name).stem, f"{shard.absolute()}:{name}", (k, name))
                   for k, shard in enumerate(archives) for name in sorted(_archive_names(shard))]
    if not entries:
        raise CompactRigError(f"{path}: holds no images (.png, .jpg, ...); point at a folder, zip or tar of images")
    ids = [stem for stem, _, _ in entries]
    if len(set(ids)) < len(ids):
        seen: set[str] = set()
        duplicated = next(i for i in ids if i in seen or seen.add(i))
        raise CompactRigError(f"{path}: several images share the id {duplicated!r}; image ids are file stems and "
                              "must be unique")
    return ImageListing(path, ids, [w for _, w, _ in entries], [m for _, _, m in entries], archives)


def read_images(path: str | Path, progress: Callable[[int, int], None] | None = None) -> ImageCollection:
    """All images in a folder (not recursive), a zip or tar shards, converted to 112x112 RGB (for collections
    that fit in memory; ``list_images`` streams larger ones)."""
    listing = list_images(path)
    return ImageCollection(ids=listing.ids, pixels=listing.read(progress=progress))
