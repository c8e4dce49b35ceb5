"""A readout's bank features kept between runs: what ``neurons fit`` pays once per session, not once per run.

The bank's responses to a session's recorded images and to its distillation images
(``compactrig.engine.readout.features.outputs_and_grid``) are most of a session's shared cost: every
bank model on every image. A second ``neurons fit`` of the same session (other units, other epochs, the
window's "Make compact models" after the command, a benchmark run again) needs exactly the same numbers,
so they are kept in the user cache directory (``COMPACTRIG_CACHE_DIR`` when set), one ``.npz`` per key:
the bank's content hash, the feature neurons, the grid and the images' pixels (their SHA-256). Any
change to any of them is another key, so a changed model or image is never served from the cache.

The features are computed in float32 and kept as float32, so what is read back is exactly what a fresh
computation gives. A file that cannot be read, has another shape or holds a non-finite value is computed
afresh; one that cannot be written is skipped: the cache only saves time. The least recently used files
go once the folder holds more than ``LIMIT_BYTES``.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from compactrig.engine.errors import CompactRigError
from compactrig.engine.files.safe_output import write_atomically
from compactrig.engine.models.bank_cache import cache_root
from compactrig.engine.models.fast_predict import Predictor
from compactrig.engine.progress import Progress
from compactrig.engine.readout.features import outputs_and_grid

FORMAT = 1
"""Part of every key: a change to what the features are makes every earlier file another key."""
LIMIT_BYTES = 4 * 1024**3
"""The most the feature files may hold together (a session of the published bank: ~0.1 GB)."""


def cache_folder() -> Path:
    return cache_root() / "features"


def images_fingerprint(images: np.ndarray) -> str:
    """SHA-256 of the pixels, their shape and type: the images' part of a key."""
    pixels = np.ascontiguousarray(images)
    digest = hashlib.sha256(f"{pixels.shape} {pixels.dtype}\n".encode())
    digest.update(pixels.data.cast("B"))
    return digest.hexdigest()


def feature_key(bank_sha256: str, neuron_ids: list[str], grid: int, images: np.ndarray) -> str:
    what = json.dumps({"format": FORMAT, "bank": bank_sha256, "neurons": neuron_ids, "grid": grid,
                       "images": images_fingerprint(images)})
    return hashlib.sha256(what.encode()).hexdigest()


def cached_outputs_and_grid(predictor: Predictor, images: np.ndarray, neuron_ids: list[str], grid: int,
                            progress: Progress | None = None,
                            cancelled: Callable[[], bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``outputs_and_grid``'s float64 ``(outputs, blocks)``, read from the cache when it holds them, else
    computed and kept."""
    bank = predictor.bank
    neuron_ids = bank.resolve(neuron_ids)
    path = cache_folder() / f"{feature_key(str(bank.identity()['sha256']), neuron_ids, grid, images)}.npz"
    widths = (len(neuron_ids), sum(bank.info(n).filters[-1] for n in neuron_ids) * grid**2)
    kept = _read(path, len(images), widths)
    if kept is not None:
        if progress is not None:
            progress(len(neuron_ids), len(neuron_ids))
        return kept
    outputs, blocks = outputs_and_grid(predictor, images, neuron_ids, grid, progress, cancelled)
    _keep(path, outputs, blocks)
    return outputs, blocks


def _read(path: Path, n_images: int, widths: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as archive:
            outputs, blocks = archive["outputs"], archive["blocks"]
        os.utime(path)  # recently used: the last to go
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None
    if outputs.shape != (n_images, widths[0]) or blocks.shape != (n_images, widths[1]) \
            or outputs.dtype != np.float32 or blocks.dtype != np.float32 \
            or not (np.isfinite(outputs).all() and np.isfinite(blocks).all()):
        return None
    return outputs.astype(np.float64), blocks.astype(np.float64)


def _keep(path: Path, outputs: np.ndarray, blocks: np.ndarray) -> None:
    # exact: outputs_and_grid computes in float32 and only widens the result
    try:
        write_atomically(path, lambda partial: np.savez(partial, outputs=outputs.astype(np.float32),
                                                        blocks=blocks.astype(np.float32)))
        _trim(path.parent, LIMIT_BYTES)
    except (CompactRigError, OSError):
        pass  # the cache only saves time


def _trim(folder: Path, limit: int) -> None:
    """Remove the least recently used feature files until the folder holds at most ``limit`` bytes."""
    files = sorted(((p.stat().st_mtime, p.stat().st_size, p) for p in folder.glob("*.npz")), reverse=True)
    total = 0
    for _, size, path in files:
        total += size
        if total > limit:
            path.unlink(missing_ok=True)
