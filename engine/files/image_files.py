"""Read image collections from a folder, a .zip (the published session zips included) or tar shards.

Images are taken in file-name order; each image's id is its file stem
(``image0007``), which every later step keeps. ``list_images`` only lists; a range is decoded
when it is read, so collections far larger than memory stream through in chunks.

``decode_rgb`` is the one place CompactRig decodes an image file: collections here, and the PNGs of a
stimulus set (``compactrig.stimuli.stimulus_set``), so both refuse and scale alike.

Hostile or odd files are refused in one line, never read into memory whole:
- an image of more than ``MAX_PIXELS`` pixels (a decompression bomb: a small file declaring a huge
  image) is refused before its pixels are decoded;
- an archive member larger than ``MAX_MEMBER_BYTES`` is refused from its declared size when listed,
  and no member is read past that many bytes whatever its header says.
Pixel depths other than 8 bits are scaled to 0..255 as a physiologist means them:
- 16-bit images (PNG, TIFF: full range 0..65535) are divided by 257, so 65535 is 255 and 257 is 1,
  rounded to the nearest level (16-bit RGB PNGs are reduced to 8 bits by Pillow itself, from their
  high byte, which differs from that by at most one level);
- 32-bit integer images are taken as 16-bit ones and must hold values in 0..65535;
- floating-point images (mode F, float TIFF) must hold values in 0..1 (the convention of
  scikit-image and most analysis code), scaled by 255; anything else (NaN, infinity, a value outside
  0..1) is refused rather than guessed at by a stretch that would change the image's contrast.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

import numpy as np
from PIL import Image, UnidentifiedImageError

from compactrig.engine.errors import CompactRigError
from compactrig.engine.files.inside_folder import check_member_name
from compactrig.engine.models.layout import IMAGE_SIZE
from compactrig.engine.models.preprocess import to_model_image
from compactrig.engine.progress import Progress

TAR_SUFFIXES = (".tar",)
"""Shard files a folder of shards holds (uncompressed tar: members are read by seeking)."""
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp"}
MAX_PIXELS = 64_000_000
"""The largest image decoded (64 megapixels, beyond any camera's image a lab would show, and below
Pillow's own decompression-bomb limit): the models see 112x112, so larger ones are refused."""
MAX_MEMBER_BYTES = 4 * MAX_PIXELS
"""The largest archive member read: an uncompressed RGBA image of ``MAX_PIXELS`` pixels."""
READ_BLOCK = 1 << 20
"""Bytes read from an archive member at a time."""
SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}

warnings.simplefilter("error", Image.DecompressionBombWarning)
"""Pillow warns (and would decode anyway) above its own limit, which is above ``MAX_PIXELS``: as its
documentation suggests, the warning is made an error, so the user sees only CompactRig's one line (the
image is refused by ``MAX_PIXELS`` either way)."""


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


def decode_rgb(data: bytes | Path, where: str) -> np.ndarray:
    """One image file (its bytes, or its path) as uint8 ``(height, width, 3)`` RGB at its own size: the one
    place CompactRig decodes an image. A decompression bomb is refused from its header, other depths are
    scaled as the module docstring says, grey is replicated and alpha dropped; every problem is one line
    starting with ``where``."""
    try:
        source = io.BytesIO(data) if isinstance(data, bytes) else data
        with Image.open(source) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise CompactRigError(f"{where}: declares {width}x{height} pixels, more than the "
                                      f"{MAX_PIXELS // 1_000_000} megapixels read (a decompression bomb, or far "
                                      "larger than the models' 112x112); shrink it or remove it")
            image.load()
            return np.asarray(_eight_bit(image, where).convert("RGB"), dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise CompactRigError(f"{where}: refused as a decompression bomb ({error}); remove it") from None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise CompactRigError(f"{where}: not a readable image ({error}); remove or replace it") from None


def _decode(data: bytes | Path, where: str) -> np.ndarray:
    return to_model_image(decode_rgb(data, where))


def _eight_bit(image: Image.Image, where: str) -> Image.Image:
    """16-bit, 32-bit integer and floating-point images as 8-bit grey, scaled as the module docstring says;
    8-bit images as they are."""
    if image.mode not in SIXTEEN_BIT_MODES and image.mode != "F":
        return image
    values = np.asarray(image).astype(np.float64)
    if image.mode == "F":
        if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
            raise CompactRigError(
                f"{where}: a floating-point image with values from {np.nanmin(values):g} to {np.nanmax(values):g}"
                f"{' and NaN or infinite ones' if not np.isfinite(values).all() else ''}; CompactRig reads float "
                "images as 0..1 (0 black, 1 white): rescale it to 0..1 or save it as an 8- or 16-bit image")
        levels = values * 255
    else:
        if values.min() < 0 or values.max() > 65535:
            raise CompactRigError(f"{where}: a 32-bit integer image with values from {values.min():g} to "
                                  f"{values.max():g}; CompactRig reads integer images as 16-bit (0..65535): save "
                                  "it as an 8- or 16-bit image")
        levels = values / 257
    return Image.fromarray(np.rint(levels).astype(np.uint8))  # 2-D uint8: mode L


@dataclass(frozen=True)
class ImageListing:
    """The images of a folder, zip or tar shards, listed but not decoded: ids (file stems, unique) and where
    each one is. ``read(start, stop)`` decodes just that range, so a collection of any size is streamed
    in chunks and memory holds one chunk of pixels (plus the names)."""

    path: Path
    ids: list[str]
    where: list[str]
    """Per image, the file it comes from (``archive:member`` inside a zip or tar), for provenance."""
    sizes: list[int]
    """Per image, its file's size in bytes (as its archive declares it for a member)."""
    _members: list = field(repr=False, compare=False)
    """Per image: (archive index or -1 for a plain file, member name or file path)."""
    _archives: list[Path] = field(repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.ids)

    def fingerprint(self) -> str:
        """A SHA-256 over every image's file (path, or archive and member) and size, in listing order: two
        listings with the same fingerprint are the same collection, which matching ids alone do not say
        (another folder can hold other images under the same names). Nothing is decoded or read."""
        digest = hashlib.sha256()
        for where, size in zip(self.where, self.sizes):
            digest.update(f"{where}\0{size}\n".encode())
        return digest.hexdigest()

    def read(self, start: int = 0, stop: int | None = None,
             progress: Progress | None = None) -> np.ndarray:
        """uint8 ``(n, 112, 112, 3)`` for images ``start:stop``, converted as the models expect."""
        stop = len(self.ids) if stop is None else min(stop, len(self.ids))
        return self.read_at(range(start, stop), progress)

    def read_at(self, indices: Sequence[int], progress: Progress | None = None) -> np.ndarray:
        """uint8 ``(n, 112, 112, 3)`` for the images at ``indices`` (each archive opened once)."""
        pixels = np.empty((len(indices), IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
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
    """The member's bytes, read no further than ``MAX_MEMBER_BYTES`` whatever its header declares."""
    handle: IO[bytes] | None
    try:
        if isinstance(archive, zipfile.ZipFile):
            handle = archive.open(member)
        else:
            handle = archive.extractfile(member)
            if handle is None:
                raise CompactRigError(f"{where}: not a regular file in the tar; remove it from the shard")
        with handle:
            blocks, total = [], 0
            while block := handle.read(READ_BLOCK):  # never a buffer of the cap's size, nor past the cap
                total += len(block)
                if total > MAX_MEMBER_BYTES:
                    raise CompactRigError(_too_large(where))
                blocks.append(block)
    except (zipfile.BadZipFile, tarfile.TarError, zlib.error, OSError, EOFError) as error:
        raise CompactRigError(f"{where}: cannot be read from its archive ({error}); re-create the archive") from None
    except (NotImplementedError, RuntimeError) as error:  # a compression method zipfile lacks, or encryption
        raise CompactRigError(f"{where}: {error}; store the archive without encryption, deflated or stored") from None
    return b"".join(blocks)


def _too_large(where: str, size: int | None = None) -> str:
    said = f" declares {size:,} bytes," if size is not None else " is"
    return (f"{where}:{said} larger than the {MAX_MEMBER_BYTES // 2**20} MiB an image file may be; remove it from "
            "the archive")


def _archive_members(path: Path) -> list[tuple[str, int]]:
    """(name, declared size) of the image members of a zip or tar (shard), in archive order; a member
    declaring more than ``MAX_MEMBER_BYTES`` is refused here, before any work starts."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                members = [(m.filename, m.file_size) for m in archive.infolist() if not m.is_dir()]
        else:
            with tarfile.open(path) as archive:
                members = [(m.name, m.size) for m in archive.getmembers() if m.isfile()]
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as error:
        raise CompactRigError(f"{path}: not a readable zip or tar ({error}); re-create it") from None
    members = [(check_member_name(name, path), size) for name, size in members if _is_image_name(name)]
    for name, size in members:
        if size > MAX_MEMBER_BYTES:
            raise CompactRigError(_too_large(f"{path.absolute()}:{name}", size))
    return members


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
        entries: list[tuple[str, str, int, tuple[int, Path | str]]] = [
            (p.stem, str(p.absolute()), p.stat().st_size, (-1, p)) for p in files]
        if not entries:
            archives = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(TAR_SUFFIXES))
    elif _is_archive(path):
        archives = [path]
    else:
        raise CompactRigError(f"{path}: not a folder, a .zip or a .tar of images; give one of those")
    if archives:
        entries = [(PurePosixPath(name).stem, f"{shard.absolute()}:{name}", size, (k, name))
                   for k, shard in enumerate(archives) for name, size in sorted(_archive_members(shard))]
    if not entries:
        raise CompactRigError(f"{path}: holds no images (.png, .jpg, ...); point at a folder, zip or tar of images")
    ids = [stem for stem, _, _, _ in entries]
    if len(set(ids)) < len(ids):
        seen: set[str] = set()
        for duplicated in ids:
            if duplicated in seen:
                break
            seen.add(duplicated)
        raise CompactRigError(f"{path}: several images share the id {duplicated!r}; image ids are file stems and "
                              "must be unique")
    return ImageListing(path, ids, [w for _, w, _, _ in entries], [n for _, _, n, _ in entries],
                        [m for _, _, _, m in entries], archives)


def read_images(path: str | Path, progress: Progress | None = None) -> ImageCollection:
    """All images in a folder (not recursive), a zip or tar shards, converted to 112x112 RGB (for collections
    that fit in memory; ``list_images`` streams larger ones)."""
    listing = list_images(path)
    return ImageCollection(ids=listing.ids, pixels=listing.read(progress=progress))
