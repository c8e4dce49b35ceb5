"""A unit's response latency from its spike times around the onsets, with a bootstrap interval.

The rule a physiologist applies by eye to a PSTH, written down: the PSTH in 1 ms bins, smoothed over
``SMOOTH_S`` (centred), is compared with its baseline before the onset; the latency is the first time
after the onset where it stays above the baseline mean plus three standard deviations for
``SUSTAIN_S``. The standard deviation has a Poisson floor (a silent baseline would otherwise make any
single spike a response). The interval resamples the presentations with replacement. The counting
window suggested from it is the paper's: ``WINDOW_S`` long, from the response onset.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BIN_S = 0.001
SMOOTH_S = 0.01
SUSTAIN_S = 0.02
WINDOW_S = 0.1
"""The suggested counting window's length (the paper's responses are 100 ms bins from response onset)."""
BASELINE_S = (-0.1, 0.0)
N_BOOT = 200


@dataclass(frozen=True)
class Latency:
    """A latency estimate; ``latency_s`` is NaN (and ``reason`` says why) when there is none."""

    latency_s: float
    low_s: float
    high_s: float
    """The 95% bootstrap interval (NaN when fewer than half the resamples found a latency)."""
    n_presentations: int
    reason: str | None = None

    def window(self, span_end: float) -> tuple[float, float] | None:
        """The counting window it suggests (``WINDOW_S`` from the latency, within the span), or None."""
        if not math.isfinite(self.latency_s):
            return None
        return self.latency_s, min(self.latency_s + WINDOW_S, span_end)


def binned(trains: Sequence[np.ndarray], span: tuple[float, float]) -> np.ndarray:
    """(presentations, bins) spike counts in ``BIN_S`` bins over ``span``."""
    n_bins = int(round((span[1] - span[0]) / BIN_S))
    counts = np.zeros((len(trains), n_bins), dtype=np.float32)
    for row, times in enumerate(trains):
        times = np.asarray(times, dtype=np.float64)
        times = times[(times >= span[0]) & (times < span[1])]
        # a time just inside the span's end can round onto the next bin's edge: it belongs to the last bin
        index = np.minimum(np.floor((times - span[0]) / BIN_S).astype(np.int64), n_bins - 1)
        np.add.at(counts[row], index, 1.0)
    return counts


def response_latency(trains: Sequence[np.ndarray], span: tuple[float, float], seed: int = 0) -> Latency:
    """The latency of the unit whose spike times (s from each onset, one array per presentation) were
    kept over ``span``; the baseline is ``BASELINE_S`` within the span."""
    n = len(trains)
    if n == 0:
        return Latency(math.nan, math.nan, math.nan, 0, "no presentation with spike times")
    if span[0] > BASELINE_S[0] + BIN_S / 2 or span[1] <= SUSTAIN_S:
        return Latency(math.nan, math.nan, math.nan, n, f"the spike times kept ({span[0]:g}..{span[1]:g} s) hold no "
                       f"baseline from {BASELINE_S[0]:g} s or nothing after the onset")
    counts = binned(trains, span)
    edges = span[0] + BIN_S * np.arange(counts.shape[1])
    found = _latency(counts.sum(axis=0), n, edges)
    if not math.isfinite(found):
        return Latency(math.nan, math.nan, math.nan, n, "no response above the baseline")
    weights = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=N_BOOT).astype(np.float32)
    resampled = np.array([_latency(pooled, n, edges) for pooled in weights @ counts])
    hit = resampled[np.isfinite(resampled)]
    low, high = (np.percentile(hit, [2.5, 97.5]) if len(hit) >= N_BOOT / 2 else (math.nan, math.nan))
    return Latency(found, float(low), float(high), n)


def _latency(pooled: np.ndarray, n: int, edges: np.ndarray) -> float:
    """The first bin edge after the onset where the smoothed pooled PSTH stays above threshold, or NaN."""
    width = int(round(SMOOTH_S / BIN_S))
    rate = np.convolve(pooled, np.ones(width) / (width * BIN_S * n), mode="same")
    centres = edges + BIN_S / 2
    baseline = rate[(centres >= BASELINE_S[0]) & (centres < BASELINE_S[1])]
    mean = float(baseline.mean())
    floor = math.sqrt(max(mean, 1.0 / SMOOTH_S / n) / (n * SMOOTH_S))  # Poisson sd of a smoothed bin's rate
    above = (rate > mean + 3 * max(float(baseline.std()), floor)) & (edges >= 0)
    sustain = int(round(SUSTAIN_S / BIN_S))
    runs = np.convolve(above.astype(np.int64), np.ones(sustain, dtype=np.int64), mode="valid") == sustain
    first = np.flatnonzero(runs)
    return float(edges[first[0]]) if len(first) else math.nan
