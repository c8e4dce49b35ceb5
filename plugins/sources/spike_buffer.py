"""Spike times per unit on the LSL clock, counted per onset window (shared by event-based sources).

With a ``span`` each response also carries every unit's spike times around its onset (``Response.spikes``),
and is due once the later of window and span has passed.

Spikes are kept until every window that may still need them has been counted: from the oldest
pending onset's window, and in any case for ``keep_s`` back from now, because an onset reaches
the source a little after its flip (the presenter reports it, the runner stores it first).

Bounded whatever the peer sends: at most ``max_units`` units (a peer announcing more has the rest
refused) and ``MAX_SPIKES`` spikes held; spikes refused because the buffer is full make the
windows they fall in missing (a count with spikes left out would be wrong, not missing).
"""

from __future__ import annotations

import bisect
from collections import deque

import numpy as np

from compactrig.plugins.sources.base import Presentation, Response

KEEP_S = 30.0
"""Spikes younger than this are always kept, whatever is pending."""
MAX_UNITS = 1024
"""Units a peer may introduce by default (declared ones included); more are refused."""
MAX_SPIKES = 2_000_000
"""Spikes held at most (about 150 MB); a peer sending more than this in ``KEEP_S`` is flooding."""


class SpikeBuffer:
    """Keeps spikes sorted by time and turns pending onsets into counts once their window closed."""

    def __init__(self, window: tuple[float, float], allowance_s: float, units: list[str],
                 keep_s: float = KEEP_S, max_units: int = MAX_UNITS, span: tuple[float, float] | None = None) -> None:
        self.window, self.allowance, self.keep, self.span = window, allowance_s, keep_s, span
        self._reach = (min(window[0], span[0]), max(window[1], span[1])) if span else window
        """From where before to where after an onset its response needs spikes."""
        self.units = list(units)
        self.max_units = max_units
        self._known = set(self.units)
        self._times: list[float] = []
        self._units: list[str] = []
        self._overflow: list[list[float]] = []
        """[first, last] times of spikes refused because the buffer was full."""
        self.pending: deque[Presentation] = deque()

    def add(self, unit: str, time: float) -> str | None:
        """Keep a spike; or, refused, why (a new unit over ``max_units``, or the buffer full)."""
        if unit not in self._known:
            if len(self.units) >= self.max_units:
                return "unit refused"
            self.units.append(unit)
            self._known.add(unit)
        if len(self._times) >= MAX_SPIKES:
            if self._overflow and time - self._overflow[-1][1] < 1.0:
                self._overflow[-1] = [min(self._overflow[-1][0], time), max(self._overflow[-1][1], time)]
            else:
                self._overflow.append([time, time])
            return "spike buffer full"
        position = bisect.bisect(self._times, time)
        self._times.insert(position, time)
        self._units.insert(position, unit)
        return None

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

    def times(self, onset: float, span: tuple[float, float]) -> dict[str, np.ndarray]:
        """Every known unit's spike times in ``[onset + span[0], onset + span[1])``, relative to ``onset``."""
        first, last = bisect.bisect_left(self._times, onset + span[0]), bisect.bisect_left(self._times, onset + span[1])
        times: dict[str, list[float]] = {unit: [] for unit in self.units}
        for unit, time in zip(self._units[first:last], self._times[first:last]):
            times[unit].append(time - onset)
        return {unit: np.array(values) for unit, values in times.items()}

    def ready(self, now: float) -> list[Response]:
        """Counts for the onsets whose window (plus the data's travel allowance) has passed."""
        done: list[Response] = []
        waiting: deque[Presentation] = deque()
        for shown in self.pending:
            if now >= shown.onset_time + self._reach[1] + self.allowance:
                start, end = shown.onset_time + self._reach[0], shown.onset_time + self._reach[1]
                if any(first < end and last >= start for first, last in self._overflow):
                    done.append(Response(shown.order, shown.image_id, None, self.window,
                                         f"spikes dropped during the window: more than {MAX_SPIKES} held"))
                else:
                    counts = self.count(shown.onset_time + self.window[0], shown.onset_time + self.window[1])
                    spikes = self.times(shown.onset_time, self.span) if self.span else None
                    done.append(Response(shown.order, shown.image_id, counts, self.window, spikes=spikes,
                                         span=self.span))
            else:
                waiting.append(shown)
        self.pending = waiting
        oldest = min((p.onset_time + self._reach[0] for p in waiting), default=now)
        cut_time = min(oldest, now - self.keep)
        cut = bisect.bisect_left(self._times, cut_time)
        del self._times[:cut], self._units[:cut]
        self._overflow = [span for span in self._overflow if span[1] >= cut_time]
        return done
