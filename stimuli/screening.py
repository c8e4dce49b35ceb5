"""Choosing images from a large collection: per neuron, the K images predicted to drive it most and least.

``TopImages`` keeps, as predictions stream in (in any order, from any worker), only the current K
best and K worst per neuron; ties go to the image listed first, so the choice never depends on the
order in which chunks arrive. ``screened_set`` turns one neuron's choice into a stimulus set whose
records say where each image came from, its rank and its predicted response.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from compactrig.stimuli.stimulus_set import WINDOWS_RESERVED, StimulusRecord, StimulusSet, now

DIRECTIONS = ("most", "least")


@dataclass(frozen=True)
class Ranked:
    """One neuron's chosen images, best first: positions in the collection and predicted responses."""

    indices: np.ndarray
    values: np.ndarray


class TopImages:
    """The K highest and K lowest predicted images per neuron, over everything added so far."""

    def __init__(self, n_neurons: int, k: int) -> None:
        self.k = k
        self._indices = {d: [np.zeros(0, np.int64) for _ in range(n_neurons)] for d in DIRECTIONS}
        self._values = {d: [np.zeros(0, np.float32) for _ in range(n_neurons)] for d in DIRECTIONS}

    def add(self, first_neuron: int, image_indices: np.ndarray, values: np.ndarray) -> None:
        """Predictions ``values[n, i]`` of neurons ``first_neuron + n`` for images ``image_indices[i]``."""
        for row, neuron_values in enumerate(np.asarray(values, dtype=np.float32)):
            neuron = first_neuron + row
            for direction in DIRECTIONS:
                indices = np.concatenate([self._indices[direction][neuron], image_indices])
                merged = np.concatenate([self._values[direction][neuron], neuron_values])
                key = -merged if direction == "most" else merged
                order = np.lexsort((indices, key))[:self.k]  # by response, then by position in the collection
                self._indices[direction][neuron] = indices[order]
                self._values[direction][neuron] = merged[order]

    def ranked(self, neuron: int, direction: str) -> Ranked:
        return Ranked(self._indices[direction][neuron].copy(), self._values[direction][neuron].copy())


def safe_image_id(image_id: str) -> str:
    """A collection's file stem as a stimulus id (letters, digits and ``._+-``; anything else becomes ``_``;
    ids that must not start a file name, or that Windows reserves, get an ``img`` prefix)."""
    cleaned = re.sub(r"[^A-Za-z0-9._+-]", "_", image_id)
    unusable = not re.match(r"^[A-Za-z0-9]", cleaned) or cleaned.split(".")[0].upper() in WINDOWS_RESERVED
    return f"img{cleaned}" if unusable else cleaned


def screened_set(neuron_id: str, chosen: dict[str, Ranked], pixels: dict[str, np.ndarray], ids: list[str],
                 where: list[str], bank: dict, predicted: np.ndarray, neuron_ids: list[str],
                 screen: dict) -> StimulusSet:
    """The set for one neuron: its ``most`` images (rank 1 first), then its ``least``. ``pixels`` and
    ``predicted`` (screened neurons x images) follow the same order; ``screen`` says how it was chosen."""
    records: list[StimulusRecord] = []
    created = now()
    for direction in DIRECTIONS:
        for rank, (index, value) in enumerate(zip(chosen[direction].indices, chosen[direction].values), start=1):
            row = len(records)
            records.append(StimulusRecord(
                image_id=safe_image_id(ids[index]), kind="natural", target_neuron=neuron_id,
                method={"screen": direction, "rank": rank, "predicted": float(value), "collection_index": int(index),
                        **screen},
                source_image=where[index], bank=bank, created=created,
                predicted={n: float(predicted[r, row]) for r, n in enumerate(neuron_ids)}))
    return StimulusSet(records, np.concatenate([pixels[d] for d in DIRECTIONS]))
