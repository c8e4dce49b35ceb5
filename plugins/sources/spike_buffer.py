"""Spike times per unit on the LSL clock, counted per onset window (shared by event-based sources)."""

from __future__ import annotations

import bisect
from collections import deque

from plugins.sources.base import Presentation, Response


class SpikeBuffer:
    """Keeps recent spikes sorted by time and turns pending onsets into counts once their window closed."""

    def __init__(self, window: tuple[float, float], allowance_s: float, units: list[str]) -> None:
        self.window, self.allowance = window, allowance_s
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

    def _count(self, shown: Presentation) -> dict[str, float]:
        start, end = shown.onset_time + self.window[0], shown.onset_time + self.window[1]
        first, last = bisect.bisect_left(self._times, start), bisect.bisect_left(self._times, end)
        counts = {unit: 0.0 for unit in self.units}
        for unit in self._units[first:last]:
            counts[unit] += 1
        return counts

    def ready(self, now: float) -> list[Response]:
        """Counts for the onsets whose window (plus the data's travel allowance) has passed."""
        done = []
        while self.pending and now >= self.pending[0].onset_time + self.window[1] + self.allowance:
            shown = self.pending.popleft()
            done.append(Response(shown.order, shown.image_id, self._count(shown), self.window))
        oldest = self.pending[0].onset_time if self.pending else now - self.window[1]
        cut = bisect.bisect_left(self._times, oldest - 1.0)
        del self._times[:cut], self._units[:cut]
        return done
