"""Responses summed per image and unit: the one accumulator behind live fits, readouts and exports.

Every statistic CompactRig shows about recorded units (the live r and affine fit, r2_ER, the
closed-loop ridge readouts, a stored session's report) is a function of three numbers per image
and unit: how many responses, their sum and their sum of squares. Keeping them in one place gives
one rule for missing data: a NaN response is skipped for that unit only; the other units' counts
of the same presentation still go in. Where a unit has no response to an image its mean is NaN
(``means``), never a zero: a statistic of that unit leaves the image out (the ridge readouts fit each
unit on the images it answered, ``answered``); one that needs every unit on the same images takes
those every unit answered (``answered_by_all``). A copy of some rows (``take``) is what a job fits
on while the session goes on adding responses.

Rows (images) grow as a closed loop adds images during a session, in amortized O(1); columns
(units) grow when a unit is first heard from mid-session.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike


class PerImageSums:
    """Per image (rows) and unit (columns): number of responses, their sum and sum of squares."""

    def __init__(self, units: Sequence[str], image_ids: Sequence[str] = ()) -> None:
        self.units = list(units)
        self.image_ids: list[str] = []
        self.index: dict[str, int] = {}
        self._counts = np.zeros((0, len(self.units)), dtype=np.int64)
        self._sums = np.zeros((0, len(self.units)))
        self._sumsq = np.zeros((0, len(self.units)))
        self._presentations = np.zeros(0, dtype=np.int64)
        self.n_presentations = 0
        self.add_images(image_ids)

    @staticmethod
    def from_counts(units: Sequence[str], image_ids: Sequence[str], counts: ArrayLike, sums: ArrayLike,
                    sumsq: ArrayLike) -> PerImageSums:
        """Sums made elsewhere (a recording's arrays, a stored fit): ``(images, units)`` each. Every image is
        taken to have been presented as often as its most answered unit."""
        shape = (len(image_ids), len(units))
        arrays = [np.asarray(a, dtype=np.float64) for a in (counts, sums, sumsq)]
        if any(a.shape != shape for a in arrays):
            raise ValueError(f"counts, sums and sums of squares must be (images, units) = {shape}, not "
                             f"{', '.join(str(a.shape) for a in arrays)}")
        if not np.array_equal(arrays[0], np.round(arrays[0])) or (arrays[0] < 0).any():
            raise ValueError("counts must be whole numbers of at least 0")
        if not all(np.isfinite(a).all() for a in arrays[1:]):
            raise ValueError("sums and sums of squares must be finite (a missing response is a count of 0)")
        if len(set(image_ids)) != len(image_ids):
            raise ValueError("image ids must be distinct")
        made = PerImageSums(units, image_ids)
        made._counts = arrays[0].astype(np.int64)
        made._sums, made._sumsq = arrays[1].copy(), arrays[2].copy()
        made._presentations = made._counts.max(axis=1, initial=0)
        made.n_presentations = int(made._presentations.sum())
        return made

    def take(self, rows: ArrayLike) -> PerImageSums:
        """A copy holding only these rows (images), in this order: what a job fits on while this one grows."""
        picked = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(np.unique(picked)) != len(picked) or ((picked < 0) | (picked >= len(self.image_ids))).any():
            raise ValueError(f"rows must be distinct rows of the {len(self.image_ids)} images")
        taken = PerImageSums(self.units, [self.image_ids[r] for r in picked])
        taken._counts, taken._sums, taken._sumsq = self._counts[picked], self._sums[picked], self._sumsq[picked]
        taken._presentations = self._presentations[picked]
        taken.n_presentations = int(taken._presentations.sum())
        return taken

    def copy(self) -> PerImageSums:
        """Every row, copied."""
        return self.take(np.arange(len(self.image_ids)))

    @property
    def counts(self) -> np.ndarray:
        """(images, units) responses counted (a view: do not write)."""
        return self._counts[:len(self.image_ids)]

    @property
    def sums(self) -> np.ndarray:
        return self._sums[:len(self.image_ids)]

    @property
    def sumsq(self) -> np.ndarray:
        return self._sumsq[:len(self.image_ids)]

    @property
    def presentations(self) -> np.ndarray:
        """Per image: presentations added (with a response of at least one unit or not)."""
        return self._presentations[:len(self.image_ids)]

    def means(self) -> np.ndarray:
        """(images, units) mean response; NaN where a unit has none for the image."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.counts > 0, self.sums / self.counts, np.nan)

    def add_images(self, image_ids: Sequence[str]) -> np.ndarray:
        """Rows of ``image_ids``; ids not yet here get new, empty rows (in order of first appearance)."""
        for image_id in image_ids:
            if image_id not in self.index:
                self.index[image_id] = len(self.image_ids)
                self.image_ids.append(image_id)
        if len(self.image_ids) > len(self._presentations):
            capacity = max(len(self.image_ids), 2 * len(self._presentations), 16)
            self._counts = _grown(self._counts, capacity)
            self._sums = _grown(self._sums, capacity)
            self._sumsq = _grown(self._sumsq, capacity)
            self._presentations = _grown(self._presentations, capacity)
        return np.array([self.index[i] for i in image_ids], dtype=np.int64)

    def add_unit(self, unit: str, counted_before: float | None = 0.0) -> None:
        """A new column. ``counted_before``: the count it is taken to have given in every presentation
        already added (a session stores 0 for a unit first heard from mid-session); None: no responses."""
        if unit in self.units:
            return
        self.units.append(unit)
        column = np.zeros((len(self._presentations), 1), dtype=np.int64)
        if counted_before is not None:
            column[:, 0] = self._presentations
        self._counts = np.hstack([self._counts, column])
        self._sums = np.hstack([self._sums, column * (counted_before or 0.0)])
        self._sumsq = np.hstack([self._sumsq, column * (counted_before or 0.0) ** 2])

    def add(self, image_ids: Sequence[str], responses: ArrayLike) -> None:
        """Presentations: ``responses[p, u]`` is unit ``u``'s count for ``image_ids[p]`` (NaN: none)."""
        responses = np.asarray(responses, dtype=np.float64).reshape(len(image_ids), len(self.units))
        rows = self.add_images(image_ids)
        seen = np.isfinite(responses)
        values = np.where(seen, responses, 0.0)
        np.add.at(self._counts, rows, seen.astype(np.int64))
        np.add.at(self._sums, rows, values)
        np.add.at(self._sumsq, rows, values * values)
        np.add.at(self._presentations, rows, 1)
        self.n_presentations += len(image_ids)

    def answered(self) -> np.ndarray:
        """(images, units) boolean: the unit has at least one response to the image (its mean is not NaN)."""
        return np.asarray(self.counts > 0)

    def answered_by_all(self) -> np.ndarray:
        """Boolean per image: every unit has at least one response to it."""
        return np.asarray(self.answered().all(axis=1) if self.units else self.presentations > 0)


def _grown(array: np.ndarray, rows: int) -> np.ndarray:
    grown = np.zeros((rows,) + array.shape[1:], dtype=array.dtype)
    grown[:len(array)] = array
    return grown
