"""One acquisition run of a sample-clocked recording system: its spikes, sync pulses and clock.

Sample numbers become LSL times through the smallest observed lag between a sample's time and its
message's arrival (stamped on the receive thread), over the last ``LAG_WINDOW_S``: data blocks are
sent right after their last sample, so the minimum tracks the clock offset plus the system's
buffering latency. That latency is invisible from arrival times; sync pulses (the photodiode, or a
digital line the presenter drives, recorded as TTLs) remove it: an onset matched to its pulse is
counted in sample numbers from the pulse itself.

A window is complete once data blocks cover it: the plugin sends a block's spikes and TTLs before
the block's data, so nothing for those samples can still come.

A forged or corrupt sample number cannot move the clock: a lag counts towards the offset only
once the previous message of its kind (data block, or spike/TTL) agrees with it (within
``CONFIRM_S``; the data messages of one block, one per selected channel, and consecutive blocks
do), so one message alone never sets the offset while agreeing ones exist. With no channel
selected in the plugin (no data blocks) the plain minimum is used: spikes seldom agree. A message
more than ``AHEAD_S`` ahead of the clock, or a spike or TTL more than 1 s behind data already
complete, is refused (``plausible``), and a data block advances completeness no further than the
clock allows.
"""

from __future__ import annotations

import bisect
from collections import deque

import numpy as np

from compactrig.plugins.sources.onset_words import OnsetWords

LAG_WINDOW_S = 20.0
"""Arrival lags older than this no longer bound the clock offset (the two clocks drift apart)."""
CONFIRM_S = 0.005
"""Two successive lags this close confirm each other."""
AHEAD_S = 1.0
"""A sample further ahead of the clock than this cannot have been recorded yet: forged."""
COVER_SLACK_S = 0.05
"""How far ahead of the clock a data block may mark samples complete."""


class _SlidingMinimum:
    """The smallest lag of the last ``LAG_WINDOW_S`` (arrival, lag) pairs, kept in O(1) per pair."""

    def __init__(self) -> None:
        self._lags: deque[tuple[float, float]] = deque()  # lags increasing

    def add(self, arrival: float, lag: float) -> None:
        while self._lags and self._lags[-1][1] >= lag:
            self._lags.pop()
        self._lags.append((arrival, lag))
        while self._lags[0][0] < arrival - LAG_WINDOW_S and len(self._lags) > 1:
            self._lags.popleft()

    def __bool__(self) -> bool:
        return bool(self._lags)

    @property
    def value(self) -> float:
        return self._lags[0][1]


class Acquisition:
    """From one ``startAcquisition`` to the next: sample numbers are only comparable within it."""

    def __init__(self, sample_rate: float, first_arrival: float) -> None:
        self.rate = sample_rate
        self.first_arrival = first_arrival
        self.covered = -1
        """One past the last sample of the latest data block (-1: no data block yet)."""
        self.last_message = 0
        self.refused_since = 0
        """Messages refused since ``last_message`` (not lost in transit)."""
        self.last_sample = 0
        """The sample of the latest message taken (a data block's end): messages lost after it lie beyond."""
        self._holes: list[tuple[int, int]] = []
        """Sample ranges in which messages were lost in transit: windows touching them are not counted."""
        self.last_arrival = first_arrival
        self._confirmed, self._all = _SlidingMinimum(), _SlidingMinimum()
        self._last: dict[bool, tuple[float, float]] = {}
        """The latest (arrival, lag) of data blocks (True) and of events (False)."""
        self._spike_samples: list[int] = []
        self._spike_units: list[str] = []
        self._ttls: list[tuple[int, int]] = []  # (sample, line), in sample order
        self._used_ttls: set[int] = set()
        self.words: OnsetWords | None = None
        """The rig's event-code words recorded in this acquisition, when onsets are matched to them."""

    def set_rate(self, rate: float) -> None:
        """The stream's own rate, from its first data block: lags measured at another rate are dropped."""
        self.rate = rate
        self._confirmed, self._all, self._last = _SlidingMinimum(), _SlidingMinimum(), {}

    def observe(self, arrival: float, sample: int, data: bool) -> None:
        """A message about ``sample`` arrived at ``arrival`` (LSL clock); ``data``: a data block's end."""
        lag = arrival - sample / self.rate
        last = self._last.get(data)
        if last is not None and abs(lag - last[1]) <= CONFIRM_S:
            self._confirmed.add(*last)
            self._confirmed.add(arrival, lag)
        self._all.add(arrival, lag)
        self._last[data] = (arrival, lag)
        self.last_arrival = arrival

    @property
    def offset(self) -> float:
        """LSL time of sample 0 (upper bound: plus the system's buffering latency)."""
        return self._confirmed.value if self._confirmed and self.covered >= 0 else self._all.value

    def plausible(self, arrival: float, sample: int, event: bool) -> str | None:
        """None when a message about ``sample`` arriving at ``arrival`` can be true, else why not."""
        if not self._all:
            return None  # the first message sets the clock
        if arrival - sample / self.rate < self.offset - AHEAD_S:
            return "sample number ahead of the clock (forged or corrupt)"
        if event and self.covered >= 0 and sample < self.covered - self.rate:
            return "spike or TTL behind data already complete (forged or corrupt sample number)"
        return None

    def cover(self, arrival: float, end_sample: int) -> None:
        """A data block ending at ``end_sample`` arrived: samples before it are complete, up to the clock."""
        self.covered = max(self.covered, min(end_sample, int(self.to_sample(arrival + COVER_SLACK_S))))

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

    def lost(self, until: int) -> None:
        """Messages were lost between the last one taken and one about sample ``until``."""
        self._holes.append((self.last_sample, until))

    def has_hole(self, first: int, end: int) -> bool:
        """Whether messages about samples in ``[first, end)`` may have been lost in transit."""
        return any(low < end and high >= first for low, high in self._holes)

    def count(self, first: int, end: int, units: list[str]) -> dict[str, float]:
        """Spikes of every unit with peak samples in ``[first, end)``."""
        low, high = bisect.bisect_left(self._spike_samples, first), bisect.bisect_left(self._spike_samples, end)
        counts = {unit: 0.0 for unit in units}
        for unit in self._spike_units[low:high]:
            counts[unit] = counts.get(unit, 0.0) + 1
        return counts

    def spike_times(self, first: int, end: int, origin: float, units: list[str]) -> dict[str, np.ndarray]:
        """Every unit's spikes with peak samples in ``[first, end)``, in s from sample ``origin``."""
        low, high = bisect.bisect_left(self._spike_samples, first), bisect.bisect_left(self._spike_samples, end)
        times: dict[str, list[float]] = {unit: [] for unit in units}
        for unit, sample in zip(self._spike_units[low:high], self._spike_samples[low:high]):
            times.setdefault(unit, []).append((sample - origin) / self.rate)
        return {unit: np.array(values) for unit, values in times.items()}

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
        self._holes = [(low, high) for low, high in self._holes if high >= sample]
