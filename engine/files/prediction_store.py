"""Predictions written as they are computed, to a chunked Zarr array that survives a crash.

``FILE.zarr`` holds ``responses`` (float32, neurons x images, NaN until computed), ``image_ids``,
``neuron_ids`` and a ``done`` flag per work unit (an image chunk x a neuron block), with the bank's
identity, the image collection's fingerprint (every file and its size, ``ImageListing.fingerprint``)
and the layout in its attributes. A unit's values are written first and its flag after,
and Zarr's local store writes each chunk to a temporary file and renames it, so after a kill at
any moment every flag that is set names values that are all there; ``--resume`` recomputes the
units whose flag is not set, with the same chunking, and so gives exactly the numbers of a run
that was never interrupted. It continues only on the same collection: the same image files with the
same sizes, not merely the same ids (another folder can hold other images under the same names).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from compactrig.engine.errors import CompactRigError

FORMAT = "compactrig-predictions-1"


@dataclass(frozen=True)
class Layout:
    """How the work is cut: images per chunk and neurons per block (a work unit is one of each)."""

    n_neurons: int
    n_images: int
    image_chunk: int = 1024
    neuron_block: int = 64

    @property
    def n_chunks(self) -> int:
        return -(-self.n_images // self.image_chunk)

    @property
    def n_blocks(self) -> int:
        return -(-self.n_neurons // self.neuron_block)

    def images(self, chunk: int) -> slice:
        return slice(chunk * self.image_chunk, min((chunk + 1) * self.image_chunk, self.n_images))

    def neurons(self, block: int) -> slice:
        return slice(block * self.neuron_block, min((block + 1) * self.neuron_block, self.n_neurons))

    def units(self) -> list[tuple[int, int]]:
        """Every (image chunk, neuron block), chunk by chunk."""
        return [(c, b) for c in range(self.n_chunks) for b in range(self.n_blocks)]


class PredictionStore:
    """A ``.zarr`` folder of predictions being written (``create``) or continued (``resume``)."""

    def __init__(self, group: zarr.Group, layout: Layout) -> None:
        self.group = group
        self.layout = layout
        self.responses = _array(group, "responses")
        self.done = _array(group, "done")

    @classmethod
    def create(cls, path: Path, neuron_ids: Sequence[str], image_ids: Sequence[str], layout: Layout,
               bank: dict, images: str, fingerprint: str) -> PredictionStore:
        """A new store; an existing one is refused (``resume`` continues it), so hours of results are never
        overwritten by accident."""
        path = Path(path)
        if path.exists():
            raise CompactRigError(f"{path}: already exists; add --resume to continue it, or remove it to start over")
        group = zarr.open_group(str(path), mode="w")
        group.attrs.update({"format": FORMAT, "bank": bank, "images": images, "images_fingerprint": fingerprint,
                            "image_chunk": layout.image_chunk, "neuron_block": layout.neuron_block})
        shape = (layout.n_neurons, layout.n_images)
        group.create_array("responses", shape=shape, dtype="float32", fill_value=np.nan,
                           chunks=(min(layout.neuron_block, layout.n_neurons),
                                   min(layout.image_chunk, layout.n_images)))
        ids = group.create_array("image_ids", shape=(layout.n_images,), dtype=str,
                                 chunks=(min(layout.n_images, 1 << 16),))
        ids[:] = np.asarray(image_ids, dtype=str)
        group.create_array("neuron_ids", shape=(layout.n_neurons,), dtype=str, chunks=(layout.n_neurons,))[:] = \
            np.asarray(neuron_ids, dtype=str)
        group.create_array("done", shape=(layout.n_chunks, layout.n_blocks), dtype="uint8", fill_value=0,
                           chunks=(1, 1), compressors=None)
        return cls(group, layout)

    @classmethod
    def resume(cls, path: Path, neuron_ids: Sequence[str], image_ids: Sequence[str], bank: dict,
               images: str, fingerprint: str) -> PredictionStore:
        """An interrupted store, checked to be for the same bank, neurons and images (ids, and the collection's
        fingerprint; a store written before fingerprints were kept is checked by the collection's path)."""
        path = Path(path)
        try:
            group = zarr.open_group(str(path), mode="r+")
            attrs: dict[str, Any] = dict(group.attrs)
            stored_neurons = list(np.asarray(_array(group, "neuron_ids")[:]))
            stored_images = _array(group, "image_ids")
        except Exception as error:  # noqa: BLE001 - zarr raises many kinds for a missing or foreign folder
            raise CompactRigError(f"{path}: not a CompactRig prediction store ({type(error).__name__}); give the "
                                  "--out of the interrupted run, or drop --resume to start a new one") from None
        if attrs.get("format") != FORMAT:
            raise CompactRigError(f"{path}: not a CompactRig prediction store; drop --resume to start a new one")
        if attrs["bank"].get("sha256") != bank.get("sha256"):
            raise CompactRigError(f"{path}: was computed with another bank ({attrs['bank'].get('source')}); resume "
                                  "with the same --bank, or write to a new --out")
        if stored_neurons != list(neuron_ids):
            raise CompactRigError(f"{path}: holds other neurons ({len(stored_neurons)}); resume with the same "
                                  "--neurons, or write to a new --out")
        if stored_images.shape != (len(image_ids),) or list(np.asarray(stored_images[:])) != list(image_ids):
            raise CompactRigError(f"{path}: was computed on other images ({stored_images.shape[0]}); resume with "
                                  "the same --images, or write to a new --out")
        if attrs.get("images_fingerprint", fingerprint) != fingerprint or (
                "images_fingerprint" not in attrs and attrs.get("images") != images):
            raise CompactRigError(f"{path}: was computed on another collection ({attrs.get('images')}) whose image "
                                  f"files or their sizes differ from those in {images}, though the ids match; "
                                  "resume with the same --images, or write to a new --out")
        layout = Layout(len(neuron_ids), len(image_ids), attrs["image_chunk"], attrs["neuron_block"])
        return cls(group, layout)

    def pending(self) -> list[tuple[int, int]]:
        """Work units not yet written, chunk by chunk."""
        done = np.asarray(self.done[:])
        return [(c, b) for c, b in self.layout.units() if not done[c, b]]

    def write(self, unit: tuple[int, int], values: np.ndarray) -> None:
        """A unit's values, then its flag (in that order: a set flag always has its values)."""
        chunk, block = unit
        self.responses[self.layout.neurons(block), self.layout.images(chunk)] = values
        self.done[chunk, block] = 1


def read_predictions(path: Path) -> tuple[np.ndarray, list[str], list[str], dict]:
    """(responses, neuron ids, image ids, attributes) of a finished or partial store."""
    group = zarr.open_group(str(path), mode="r")
    return (np.asarray(_array(group, "responses")[:]), list(np.asarray(_array(group, "neuron_ids")[:])),
            list(np.asarray(_array(group, "image_ids")[:])), dict(group.attrs))


def _array(group: zarr.Group, name: str) -> zarr.Array:
    """The array ``name`` of a store (a group of that name is not one: refused as a foreign folder)."""
    node = group[name]
    if not isinstance(node, zarr.Array):
        raise CompactRigError(f"{group.store}: {name} is not an array; not a CompactRig prediction store")
    return node
