"""One acquisition run of a sample-clocked recording system: its spikes, sync pulses and clock.

Sample numbers become LSL times through the smallest observed lag between a sample's time and its
message's arrival (stamped on the receive thread), over the last ``LAG_WINDOW_S``: data blocks are
sent right after their last sample, so the minimum tracks the clock offset plus the system's
buffering latency. That latency is invisible from arrival times; sync pulses (the photodiode, or a
digital line the presenter drives, recorded as TTLs) remove it: an onset matched to its pulse is
counted in sample numbers from the pulse itself.

A window is complete once data blocks cover it: the plugin sends a block's spikes and TTLs before
the block's data, so nothing for those samples can still come.
"""

from __future__ import annotations

import bisect
from collections import deque

LAG_WINDOW_S = 20.0
"""Arrival lags older than this no longer bound the clock offset (the two clocks drift apart)."""


class Acquisition:
    """From one ``startAcquisition`` to the next: sample numbers are only comparable within it."""

    def __init__(self, sample_rate: float, first_arrival: float) -> None:
        self.rate = sample_rate
        self.first_arrival = first_arrival
        self.covered = -1
        """One past the last sample of the latest data block (-1: no data block yet)."""
        self.last_message = 0
        self.last_arrival = first_arrival
        self._lags: deque[tuple[float, float]] = deque()  # (arrival, lag), lags increasing: a sliding minimum
        self._spike_samples: list[int] = []
        self._spike_units: list[str] = []
        self._ttls: list[tuple[int, int]] = []  # (sample, line), in sample order
        self._used_ttls: set[int] = set()

    def observe(self, arrival: float, sample: int) -> None:
        """A message about ``sample`` arrived at ``arrival`` (LSL clock)."""
        lag = arrival - sample / self.rate
        while self._lags and self._lags[-1][1] >= lag:
            self._lags.pop()
        self._lags.append((arrival, lag))
        while self._lags[0][0] < arrival - LAG_WINDOW_S and len(self._lags) > 1:
            self._lags.popleft()
        self.last_arrival = arrival

    @property
    def offset(self) -> float:
        """LSL time of sample 0 (upper bound: plus the system's buffering latency)."""
        return self._lags[0][1]

    def to_time(self, sample: float) -> float:
        return sample / self.rate + self.offset

    def to_sample(self, time: float) -> float:
        return (time - self.offset) * self.rate

    def add_spike(self, sample: int, unit: str) -> None:
        position = bisect.bisect(self._spike_samples, sample)
        self._spike_samples.insert(position, sample)
        self._spike_units.insert(position, unit)

    def add_ttl(self, sample: int, line: int) -> None:
        bisect.insort(self._ttls, (sample, line))

    def count(self, first: int, end: int, units: list[str]) -> dict[str, float]:
        """Spikes of every unit with peak samples in ``[first, end)``."""
        low, high = bisect.bisect_left(self._spike_samples, first), bisect.bisect_left(self._spike_samples, end)
        counts = {unit: 0.0 for unit in units}
        for unit in self._spike_units[low:high]:
            counts[unit] = counts.get(unit, 0.0) + 1
        return counts

    def sync_pulse(self, line: int, near: float, tolerance: int) -> int | None:
        """The unused pulse on ``line`` nearest to sample ``near`` (within ``tolerance`` samples), claimed."""
        low = bisect.bisect_left(self._ttls, (int(near - tolerance), -1))
        best = None
        for sample, pulse_line in self._ttls[low:]:
            if sample > near + tolerance:
                break
            if pulse_line == line and sample not in self._used_ttls and \
                    (best is None or abs(sample - near) < abs(best - near)):
                best = sample
        if best is not None:
            self._used_ttls.add(best)
        return best

    def forget_before(self, sample: float) -> None:
        """Spikes and pulses no window will need any more."""
        cut = bisect.bisect_left(self._spike_samples, sample)
        del self._spike_samples[:cut], self._spike_units[:cut]
        cut = bisect.bisect_left(self._ttls, (int(sample), -1))
        for old, _ in self._ttls[:cut]:
            self._used_ttls.discard(old)
        del self._ttls[:cut]
