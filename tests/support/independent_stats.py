"""Statistics computed directly from their definitions, independent of the app's code."""

from __future__ import annotations

import numpy as np


def pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of each row of ``a`` with the same row of ``b``."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    return (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))


def direct_r2_er(x: np.ndarray, trials: list[np.ndarray]) -> float:
    """Pospisil & Bair's r2_ER written out from the paper's formula, on trials per image."""
    y = np.array([t.mean() for t in trials])
    noise = np.mean([t.var(ddof=1) / len(t) for t in trials])
    xc, yc = x - x.mean(), y - y.mean()
    return ((xc @ yc) ** 2 - noise * (xc @ xc)) / ((xc @ xc) * ((yc @ yc) - (len(x) - 1) * noise))
