"""Live model-versus-neuron fit statistics, updated one presentation at a time.

Per unit, the responses are kept as per-image sums (count, sum, sum of squares), so a
presentation updates them in O(1); Pearson r between the model's prediction and the
unit's mean response per image, and the affine fit (the compact models have an
arbitrary offset and scale), come from running sums over images, also O(1) per update.

``r2_er`` is the noise-corrected R^2 of Pospisil & Bair (2021, "The unbiased estimation
of the fraction of variance explained by a model"): with m images, model predictions x,
mean responses y and s^2/n the variance of each mean (trial-to-trial variance over the
image's repeats divided by its number of repeats, averaged over images),

    r2_ER = [ (x~ . y~)^2 - (s^2/n) |x~|^2 ] / ( |x~|^2 [ |y~|^2 - (m - 1) s^2/n ] )

(x~, y~ centred). It needs images with at least two repeats. Its confidence interval
is a bootstrap over images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FitSummary:
    """Where a unit's fit stands: what a live plot and a summary line show."""

    n_images: int
    n_presentations: int
    r: float
    slope: float
    intercept: float
    r2_er: float
    r2_er_ci: tuple[float, float]


def r2_er_rows(predictions: np.ndarray, trial_sums: np.ndarray, trial_sumsq: np.ndarray,
               counts: np.ndarray) -> np.ndarray:
    """Noise-corrected R^2 of every row (unit) from per-image sums, all ``(units, images)``: the one
    implementation behind the live fits, the population view and the readouts, so they agree on one rule
    for missing data: an image counts only with 2+ responses, and a unit with fewer than 3 such images
    (or no spread) is NaN."""
    predictions, counts = np.asarray(predictions, dtype=np.float64), np.asarray(counts)
    usable = counts >= 2
    m = usable.sum(axis=1).astype(np.float64)
    k = np.where(usable, counts, 1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.where(usable, trial_sums / k, 0.0)
        trial_variance = np.where(usable, (trial_sumsq - k * y * y) / np.maximum(k - 1, 1), 0.0)
        noise = (np.maximum(trial_variance, 0.0) / k * usable).sum(1) / m
        xc = np.where(usable, predictions - (predictions * usable).sum(1, keepdims=True) / m[:, None], 0.0)
        yc = np.where(usable, y - (y * usable).sum(1, keepdims=True) / m[:, None], 0.0)
        sxx, syy, sxy = (xc * xc).sum(1), (yc * yc).sum(1), (xc * yc).sum(1)
        denominator = sxx * (syy - (m - 1) * noise)
        value = (sxy * sxy - noise * sxx) / denominator
    return np.where((m >= 3) & (sxx > 0) & (denominator > 0), value, np.nan)


def r2_er(predictions: np.ndarray, trial_sums: np.ndarray, trial_sumsq: np.ndarray,
          counts: np.ndarray) -> float:
    """``r2_er_rows`` of one unit (1-D per-image arrays)."""
    return float(r2_er_rows(np.asarray(predictions)[None], np.asarray(trial_sums)[None],
                            np.asarray(trial_sumsq)[None], np.asarray(counts)[None])[0])


class UnitFit:
    """Running statistics of one recorded unit against one model's predictions."""

    def __init__(self, predictions: dict[str, float]) -> None:
        self.image_ids = list(predictions)
        self._index = {image_id: i for i, image_id in enumerate(self.image_ids)}
        self.predictions = np.array([predictions[i] for i in self.image_ids], dtype=np.float64)
        size = len(self.image_ids)
        self.counts = np.zeros(size, dtype=np.int64)
        self.sums = np.zeros(size)
        self.sumsq = np.zeros(size)
        self.n_presentations = 0
        # running sums over images that have at least one response: x, y (= image mean), x^2, y^2, xy
        self._moments = np.zeros(5)
        self._n_images = 0

    def add_images(self, predictions: dict[str, float]) -> None:
        """More images the unit may be shown (a closed loop adds them during a session)."""
        new = [i for i in predictions if i not in self._index]
        for image_id in new:
            self._index[image_id] = len(self.image_ids)
            self.image_ids.append(image_id)
        self.predictions = np.append(self.predictions, [predictions[i] for i in new])
        self.counts = np.append(self.counts, np.zeros(len(new), dtype=np.int64))
        self.sums = np.append(self.sums, np.zeros(len(new)))
        self.sumsq = np.append(self.sumsq, np.zeros(len(new)))

    def add(self, image_id: str, count: float) -> None:
        """One presentation's response of this unit to ``image_id``."""
        i = self._index[image_id]
        x = self.predictions[i]
        if self.counts[i]:
            old = self.sums[i] / self.counts[i]
            self._moments -= (x, old, x * x, old * old, x * old)
        else:
            self._n_images += 1
        self.counts[i] += 1
        self.sums[i] += count
        self.sumsq[i] += count * count
        new = self.sums[i] / self.counts[i]
        self._moments += (x, new, x * x, new * new, x * new)
        self.n_presentations += 1

    def mean_responses(self) -> tuple[np.ndarray, np.ndarray]:
        """(predictions, mean responses) of the images with at least one response."""
        seen = self.counts > 0
        return self.predictions[seen], self.sums[seen] / self.counts[seen]

    def _pearson_and_affine(self) -> tuple[float, float, float]:
        n = self._n_images
        if n < 2:
            return float("nan"), float("nan"), float("nan")
        sx, sy, sxx, syy, sxy = self._moments
        cov = sxy - sx * sy / n
        var_x, var_y = sxx - sx * sx / n, syy - sy * sy / n
        if var_x <= 1e-12 * max(sxx, 1.0):
            return float("nan"), float("nan"), float("nan")
        slope = cov / var_x
        intercept = (sy - slope * sx) / n
        r = cov / np.sqrt(var_x * var_y) if var_y > 1e-12 * max(syy, 1.0) else float("nan")
        return float(r), float(slope), float(intercept)

    def r2_er(self) -> float:
        return r2_er(self.predictions, self.sums, self.sumsq, self.counts)

    def r2_er_interval(self, n_boot: int = 200, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
        """Bootstrap (over images with 2+ repeats) percentile interval of r2_ER."""
        usable = np.flatnonzero(self.counts >= 2)
        if len(usable) < 3:
            return float("nan"), float("nan")
        rng = np.random.default_rng(seed)
        values = []
        for _ in range(n_boot):
            pick = usable[rng.integers(0, len(usable), len(usable))]
            values.append(r2_er(self.predictions[pick], self.sums[pick], self.sumsq[pick], self.counts[pick]))
        values = np.array(values)
        values = values[np.isfinite(values)]
        if len(values) == 0:
            return float("nan"), float("nan")
        tail = (1 - level) / 2 * 100
        return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))

    def summary(self, n_boot: int = 200) -> FitSummary:
        r, slope, intercept = self._pearson_and_affine()
        return FitSummary(self._n_images, self.n_presentations, r, slope, intercept, self.r2_er(),
                          self.r2_er_interval(n_boot) if n_boot else (float("nan"), float("nan")))
