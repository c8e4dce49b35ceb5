"""Model-versus-neuron fits of recorded units, vectorized over units: the live fits, the summary
line after each trial and a stored session's report.

A lab watching a hundred units needs a whole batch of presentations added with a few array
operations and every unit's r, affine fit and r2_ER recomputed in one pass. The state is the
per-image sums of ``compactrig.engine.stats.response_sums.PerImageSums`` (the one accumulator, with
its one rule for missing data) beside each unit's predictions: the fit's own sums, or a whole
session's that someone else feeds (a live session's, where units without a model are columns too),
read through the fit's units. r2_ER is ``compactrig.engine.stats.r2_er``. The running history of r
and r2_ER (one entry per batch) is kept for the "fit over presentations" plot; r's confidence band
is the Fisher-z interval over the images seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from compactrig.engine.stats.correlation import pearson_r
from compactrig.engine.stats.r2_er import r2_er_interval, r2_er_rows
from compactrig.engine.stats.response_sums import PerImageSums

Z_95 = 1.959963984540054


@dataclass(frozen=True)
class PopulationSummary:
    """Every unit's fit as arrays of length ``n_units`` (NaN where not yet defined)."""

    n_images: np.ndarray
    n_presentations: np.ndarray
    r: np.ndarray
    r_low: np.ndarray
    r_high: np.ndarray
    slope: np.ndarray
    intercept: np.ndarray
    r2_er: np.ndarray


@dataclass
class FitHistory:
    """One row per batch: presentations so far (all units), and every unit's r, its band and r2_ER."""

    n_presentations: list[int]
    r: list[np.ndarray]
    r_low: list[np.ndarray]
    r_high: list[np.ndarray]
    r2_er: list[np.ndarray]

    def of_unit(self, unit: int) -> dict[str, np.ndarray]:
        """The history of one unit as arrays (for plotting); NaN in rows from before the unit was added."""
        return {"n_presentations": np.asarray(self.n_presentations, dtype=np.float64),
                **{name: np.array([row[unit] if unit < len(row) else np.nan for row in getattr(self, name)],
                                  dtype=np.float64)
                   for name in ("r", "r_low", "r_high", "r2_er")}}


class PopulationFit:
    """Units (rows) against their models' predictions for a list of images (columns) that may grow."""

    def __init__(self, units: list[str], image_ids: list[str], predictions: np.ndarray,
                 responses: PerImageSums | None = None) -> None:
        """``responses``: sums fed elsewhere that hold ``units`` (and maybe others) for exactly ``image_ids``;
        by default the fit keeps sums of its own, fed by ``add``."""
        predictions = np.asarray(predictions, dtype=np.float64)
        if predictions.shape != (len(units), len(image_ids)):
            raise ValueError(f"predictions must be (units, images) = ({len(units)}, {len(image_ids)}), "
                             f"not {predictions.shape}")
        if responses is None:
            responses = PerImageSums(units, image_ids)
        elif responses.image_ids != list(image_ids) or not set(units) <= set(responses.units):
            raise ValueError("the shared sums must hold the fit's units for exactly its images")
        self.responses = responses
        self.units = list(units)
        self._columns = np.array([responses.units.index(u) for u in units], dtype=np.int64)
        self.predictions = predictions
        self.history = FitHistory([], [], [], [], [])

    @property
    def image_ids(self) -> list[str]:
        return self.responses.image_ids

    @property
    def n_presentations(self) -> int:
        return self.responses.n_presentations

    @property
    def counts(self) -> np.ndarray:
        """(units, images) responses counted."""
        return self.responses.counts[:, self._columns].T

    @property
    def sums(self) -> np.ndarray:
        return self.responses.sums[:, self._columns].T

    @property
    def sumsq(self) -> np.ndarray:
        return self.responses.sumsq[:, self._columns].T

    def add_images(self, image_ids: list[str], predictions: ArrayLike) -> None:
        """New image columns (``predictions`` is (units, new images)); ids already present are skipped."""
        predictions = np.asarray(predictions, dtype=np.float64).reshape(len(self.units), len(image_ids))
        known = self.predictions.shape[1]
        self.responses.add_images(image_ids)
        column = {image_id: k for k, image_id in enumerate(image_ids)}
        new = self.image_ids[known:]
        if any(i not in column for i in new):
            raise KeyError(f"images without predictions: {', '.join(i for i in new if i not in column)}")
        self.predictions = np.concatenate([self.predictions, predictions[:, [column[i] for i in new]]], axis=1)

    def add_unit(self, unit: str, predictions: np.ndarray, counted_before: float | None = 0.0) -> None:
        """A unit mapped mid-session (``predictions`` for every image so far); see ``PerImageSums.add_unit``
        (shared sums that already hold the unit keep what they hold)."""
        if unit in self.units:
            return
        self.responses.add_unit(unit, counted_before)
        self.units.append(unit)
        self._columns = np.append(self._columns, self.responses.units.index(unit))
        self.predictions = np.vstack([self.predictions, np.asarray(predictions, dtype=np.float64)[None]])

    def add(self, image_ids: list[str], responses: np.ndarray) -> None:
        """A batch into the sums: ``responses[p, u]`` is the count of the sums' unit ``u`` (the fit's units,
        unless the sums are shared) for image ``image_ids[p]`` (NaN: none)."""
        unknown = [i for i in image_ids if i not in self.responses.index]
        if unknown:
            raise KeyError(f"images without predictions: {', '.join(unknown[:5])}")
        self.responses.add(image_ids, responses)

    def summary(self) -> PopulationSummary:
        """Every unit's r (over images' mean responses), affine fit and r2_ER, computed together."""
        x = self.predictions
        shown = self.counts > 0
        n = shown.sum(axis=1).astype(np.float64)
        y = np.divide(self.sums, self.counts, out=np.zeros_like(self.sums), where=shown)
        with np.errstate(invalid="ignore", divide="ignore"):
            x_mean = (x * shown).sum(axis=1) / n
            y_mean = (y * shown).sum(axis=1) / n
            xc = np.where(shown, x - x_mean[:, None], 0.0)
            yc = np.where(shown, y - y_mean[:, None], 0.0)
            sxx, sxy = (xc * xc).sum(1), (xc * yc).sum(1)
            valid_x = (n >= 2) & (sxx > 1e-12 * np.maximum((x * x * shown).sum(1), 1.0))
            slope = np.where(valid_x, sxy / sxx, np.nan)
            intercept = np.where(valid_x, y_mean - slope * x_mean, np.nan)
            r = np.where(valid_x, pearson_r(x, y, where=shown), np.nan)
            z = np.arctanh(np.clip(r, -0.999999, 0.999999))
            half = np.where(n > 3, Z_95 / np.sqrt(np.maximum(n - 3, 1)), np.nan)
            r_low, r_high = np.tanh(z - half), np.tanh(z + half)
        return PopulationSummary(n.astype(np.int64), self.counts.sum(axis=1), r, r_low, r_high, slope, intercept,
                                 self._r2_er())

    def _r2_er(self) -> np.ndarray:
        return r2_er_rows(self.predictions, self.sums, self.sumsq, self.counts)

    def r2_er_interval(self, unit: int, n_boot: int = 200, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
        """Bootstrap interval of one unit's r2_ER (too slow to compute for every unit at every batch)."""
        return r2_er_interval(self.predictions[unit], self.sums[unit], self.sumsq[unit], self.counts[unit],
                              n_boot, seed, level)

    def record_history(self, summary: PopulationSummary | None = None) -> PopulationSummary:
        """Append the current fit to the history (call once per batch); returns the summary used."""
        summary = summary or self.summary()
        history = self.history
        history.n_presentations.append(self.n_presentations)
        history.r.append(summary.r)
        history.r_low.append(summary.r_low)
        history.r_high.append(summary.r_high)
        history.r2_er.append(summary.r2_er)
        return summary

    def points(self, unit: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(prediction, mean response, image id) of every image this unit has responded to."""
        shown = np.flatnonzero(self.counts[unit] > 0)
        return (self.predictions[unit, shown], self.sums[unit, shown] / self.counts[unit, shown],
                [self.image_ids[i] for i in shown])

    def fit_line(self, unit: int, summary: PopulationSummary) -> tuple[np.ndarray, np.ndarray]:
        """End points of the unit's affine fit over the range of its predictions (empty if undefined)."""
        x, _, _ = self.points(unit)
        if len(x) < 2 or not np.isfinite(summary.slope[unit]):
            return np.zeros(0), np.zeros(0)
        ends = np.array([x.min(), x.max()])
        return ends, summary.intercept[unit] + summary.slope[unit] * ends
