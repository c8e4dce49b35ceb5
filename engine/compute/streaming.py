"""Predictions over image collections of any size: one chunk of images decoded and predicted at a time.

The work is cut into units (an image chunk x a neuron block, ``compactrig.engine.files.prediction_store.Layout``)
and every unit is computed by ``predict_unit``, here or on a cluster's worker
(``compactrig.engine.compute.cluster``), so where a unit runs never changes its numbers. Results go to a
sink as each unit finishes: a Zarr store that survives a crash, an array for a small run, or the
running top-K of ``compactrig screen``. Memory holds one chunk of pixels, whatever the collection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import groupby

import numpy as np

from compactrig.engine.files.image_files import ImageListing
from compactrig.engine.files.prediction_store import Layout
from compactrig.engine.models.fast_predict import Cancelled, Predictor
from compactrig.engine.progress import Progress

Unit = tuple[int, int]
Sink = Callable[[Unit, np.ndarray], None]
"""Called with each finished unit and its float32 values ``(neurons, images)``."""


def predict_unit(predictor: Predictor, pixels: np.ndarray, neuron_ids: Sequence[str], layout: Layout,
                 block: int) -> np.ndarray:
    """One unit's float32 ``(neurons, images)``: the block's neurons on the chunk's pixels."""
    return predictor.predict(pixels, list(neuron_ids[layout.neurons(block)]))


def stream_here(predictor: Predictor, listing: ImageListing, neuron_ids: Sequence[str], layout: Layout,
                units: list[Unit], sink: Sink, progress: Progress | None = None,
                cancelled: Callable[[], bool] | None = None) -> None:
    """Compute ``units`` on this machine, decoding each image chunk once for all its neuron blocks."""
    done = 0
    for chunk, members in groupby(units, key=lambda unit: unit[0]):
        if cancelled is not None and cancelled():
            raise Cancelled()
        blocks = [block for _, block in members]
        _predict_chunk(predictor, listing, neuron_ids, layout, chunk, blocks, sink)
        done += len(blocks)
        if progress is not None:
            progress(done, len(units))


def _predict_chunk(predictor: Predictor, listing: ImageListing, neuron_ids: Sequence[str], layout: Layout,
                   chunk: int, blocks: list[int], sink: Sink) -> None:
    """One chunk decoded once for its blocks (its own frame: the pixels are freed before the next chunk)."""
    rows = layout.images(chunk)
    pixels = listing.read(rows.start, rows.stop)
    for block in blocks:
        sink((chunk, block), predict_unit(predictor, pixels, neuron_ids, layout, block))


def into_array(values: np.ndarray, layout: Layout) -> Sink:
    """A sink filling an in-memory ``(neurons, images)`` array (runs small enough for ``.npy``)."""
    def sink(unit: Unit, unit_values: np.ndarray) -> None:
        values[layout.neurons(unit[1]), layout.images(unit[0])] = unit_values
    return sink
