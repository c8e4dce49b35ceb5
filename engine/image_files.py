"""Read image collections from a folder or a .zip (the published session zips included).

Images are taken in file-name order; each image's id is its file stem
(``image0007``), which every later step keeps.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

import numpy as np
from PIL import Image, UnidentifiedImageError

from compactrig.engine.errors import CompactRigError
from compactrig.engine.preprocess import to_model_image

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


def read_images(path: str | Path, progress: Callable[[int, int], None] | None = None) -> ImageCollection:
    """All images in a folder (not recursive) or a zip, converted to 112x112 RGB."""
    path = Path(path)
    if not path.exists():
        raise CompactRigError(f"{path}: no such file or folder; give a folder of images or a .zip")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and _is_image_name(p.name))
        entries = [(p.stem, p, str(p)) for p in files]
        archive = None
    elif zipfile.is_zipfile(path):
        archive = zipfile.ZipFile(path)
        names = sorted(n for n in archive.namelist() if not n.endswith("/") and _is_image_name(n))
        entries = [(PurePosixPath(n).stem, n, f"{path}:{n}") for n in names]
    else:
        raise CompactRigError(f"{path}: not a folder or a .zip of images; give a folder of images or a .zip")
    if not entries:
        raise CompactRigError(f"{path}: holds no images (.png, .jpg, ...); point at a folder or zip of images")
    ids = [stem for stem, _, _ in entries]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise CompactRigError(f"{path}: several images share the id {duplicated[0]!r}; image ids are file stems and must be unique")
    pixels = np.empty((len(entries), 112, 112, 3), dtype=np.uint8)
    for index, (_, item, where) in enumerate(entries):
        pixels[index] = _decode(archive.read(item) if archive else item, where)
        if progress is not None:
            progress(index + 1, len(entries))
    return ImageCollection(ids=ids, pixels=pixels)
