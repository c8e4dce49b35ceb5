"""Each unit's spike train over the whole session, from the spikes kept around each presentation.

The store keeps every presentation's spikes relative to its onset over a span (-0.1..0.4 s by default),
and presentations come faster than that: consecutive spans overlap, and a spike in the overlap was
kept by both. On the session's clock each spike is counted once: a presentation contributes only its
spikes at or after the end of the time already covered by the presentations before it. What was
observed is the union of the spans (overlapping spans merged).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class UnitTrains:
    times: list[np.ndarray]
    """Per unit (in the order given), its spike times on the session's clock (s), sorted, each once."""
    observed: list[tuple[float, float]]
    """The spans the spikes were kept over, on the session's clock, merged where they overlap, in order."""


def unit_trains(kept: dict[int, tuple[tuple[float, float], list[np.ndarray]]], onsets: dict[int, float],
                n_units: int) -> UnitTrains:
    """``kept`` (``TrialStore.spike_times``: presentation -> (span, each unit's times from the onset)) put on
    the session's clock by ``onsets`` (presentation -> its onset there, s); ``n_units`` trains."""
    pieces: list[list[np.ndarray]] = [[] for _ in range(n_units)]
    observed: list[tuple[float, float]] = []
    covered = -np.inf
    for order in sorted(kept, key=lambda o: (onsets[o] + kept[o][0][0], o)):
        (first, last), trains = kept[order]
        start, end = onsets[order] + first, onsets[order] + last
        for unit, times in enumerate(trains):
            absolute = onsets[order] + np.asarray(times, dtype=np.float64)
            pieces[unit].append(absolute[absolute >= covered])
        if observed and start <= observed[-1][1]:
            observed[-1] = (observed[-1][0], max(observed[-1][1], end))
        else:
            observed.append((start, end))
        covered = max(covered, end)
    return UnitTrains([np.sort(np.concatenate(unit)) if unit else np.zeros(0) for unit in pieces], observed)
