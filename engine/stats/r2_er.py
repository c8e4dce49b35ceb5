"""Noise-corrected R^2 (r2_ER) of model predictions against repeated responses, from per-image sums.

``r2_er`` is the noise-corrected R^2 of Pospisil & Bair (2021, "The unbiased estimation
of the fraction of variance explained by a model"): with m images, model predictions x,
mean responses y and s^2/n the variance of each mean (trial-to-trial variance over the
image's repeats divided by its number of repeats, averaged over images),

    r2_ER = [ (x~ . y~)^2 - (s^2/n) |x~|^2 ] / ( |x~|^2 [ |y~|^2 - (m - 1) s^2/n ] )

(x~, y~ centred). It needs images with at least two repeats. Its confidence interval
is a bootstrap over images. The sums come from ``compactrig.engine.stats.response_sums.PerImageSums``.
"""

from __future__ import annotations

import numpy as np


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


def r2_er_interval(predictions: np.ndarray, trial_sums: np.ndarray, trial_sumsq: np.ndarray, counts: np.ndarray,
                   n_boot: int = 200, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Bootstrap (over images with 2+ repeats) percentile interval of one unit's r2_ER (1-D per-image arrays)."""
    usable = np.flatnonzero(np.asarray(counts) >= 2)
    if len(usable) < 3:
        return float("nan"), float("nan")
    picks = usable[np.random.default_rng(seed).integers(0, len(usable), (n_boot, len(usable)))]
    values = r2_er_rows(np.asarray(predictions, dtype=np.float64)[picks], np.asarray(trial_sums)[picks],
                        np.asarray(trial_sumsq)[picks], np.asarray(counts)[picks])
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))
