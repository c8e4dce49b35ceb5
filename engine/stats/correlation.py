"""Pearson's r, the one implementation behind the readouts' held-out r, the compact models' r, the live
fits and the loop simulation, so they agree on one rule: r is NaN where either side has no spread."""

from __future__ import annotations

import numpy as np


def pearson_r(a: np.ndarray, b: np.ndarray, axis: int = -1, where: np.ndarray | None = None) -> np.ndarray:
    """Pearson r of ``a`` and ``b`` (broadcast together) along ``axis``, over the entries ``where`` is true
    (all if None); NaN where either side is constant. 1-D inputs give a 0-d array (``float()`` it)."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    mask = np.ones(a.shape, dtype=bool) if where is None else np.broadcast_to(np.asarray(where, dtype=bool), a.shape)
    n = mask.sum(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ac = np.where(mask, a - np.where(mask, a, 0.0).sum(axis=axis, keepdims=True) / n, 0.0)
        bc = np.where(mask, b - np.where(mask, b, 0.0).sum(axis=axis, keepdims=True) / n, 0.0)
    denominator = np.sqrt((ac * ac).sum(axis=axis) * (bc * bc).sum(axis=axis))
    return np.divide((ac * bc).sum(axis=axis), denominator, out=np.full(denominator.shape, np.nan),
                     where=denominator > 0)
