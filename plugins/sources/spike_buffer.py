"""Spike times per unit on the LSL clock, counted per onset window (shared by event-based sources).

Spikes are kept until every window that may still need them has been counted: from the oldest
pending onset's window, and in any case for ``keep_s`` back from now, because an onset reaches
the source a little after its flip (the presenter reports it, the runner stores it first).
"""

from __future__ import annotations

import bisect
from collections import deque

from compactrig.plugins.sources.base import Presentation, Response

KEEP_S = 30.0
"""Spikes younger than this are always kept, whatever is pending."""


class SpikeBuffer:
    """Keeps spikes sorted by time and turns pending onsets into counts once their window closed."""

    def __init__(self, window: tuple[float, float], allowance_s: float, units: list[str],
                 keep_s: float = KEEP_S) -> None:
        self.window, self.allowance, self.keep = window, allowance_s, keep_s
        self.units = list(units)
        self._times: list[float] = []
        self._units: list[str] = []
        self.pending: deque[Presentation] = deque()

    def add(self, unit: str, time: float) -> None:
        if unit not in self.units:
            self.units.append(unit)
        position = bisect.bisect(self._times, time)
        self._times.insert(position, time)
        self._units.insert(position, unit)

    def submit(self, shown: Presentation) -> None:
        self.pending.append(shown)

    def cancel(self, order: int) -> None:
        """Forget a presentation that no longer counts (aborted while its window was open)."""
        self.pending = deque(p for p in self.pending if p.order != order)

    def count(self, start: float, end: float) -> dict[str, float]:
        """Spikes of every known unit in ``[start, end)`` (0 for units that did not fire)."""
        first, last = bisect.bisect_left(self._times, start), bisect.bisect_left(self._times, end)
        counts = {unit: 0.0 for unit in self.units}
        for unit in self._units[first:last]:
            counts[unit] += 1
        return counts

    def ready(self, now: float) -> list[Response]:
        """Counts for the onsets whose window (plus the data's travel allowance) has passed."""
        done, waiting = [], deque()
        for shown in self.pending:
            if now >= shown.onset_time + self.window[1] + self.allowance:
                counts = self.count(shown.onset_time + self.window[0], shown.onset_time + self.window[1])
                done.append(Response(shown.order, shown.image_id, counts, self.window))
            else:
                waiting.append(shown)
        self.pending = waiting
        oldest = min((p.onset_time + self.window[0] for p in waiting), default=now)
        cut = bisect.bisect_left(self._times, min(oldest, now - self.keep))
        del self._times[:cut], self._units[:cut]
        return done
