"""Responses from Lab Streaming Layer: spike events or per-image counts, on the LSL clock.

``mode=events``: a stream with one sample per spike (channel 0 = unit id), time-stamped
when the spike happened; counts are the events of each unit in each onset's window,
after LSL time correction. A window is counted once ``latency_allowance_s`` has passed
after it closes (the time the data take to arrive).
``mode=counts``: a stream with one sample per shown image (channel k = unit k's count),
time-stamped with that image's onset; samples are matched to onsets within
``match_tolerance_s``.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import pylsl

from compactrig.engine.errors import CompactRigError
from compactrig.plugins.lsl_clock import ClockCorrection
from compactrig.plugins.sources.base import WINDOW_OPTIONS, Option, Presentation, Response, ResponseSource
from compactrig.plugins.sources.spike_buffer import KEEP_S, SpikeBuffer


class LslSource(ResponseSource):
    name = "lsl"
    description = "spike events or per-image counts from a Lab Streaming Layer stream"
    options = WINDOW_OPTIONS + (
        Option("stream_name", str, "", "resolve the stream by this name (default: by type)"),
        Option("stream_type", str, "Spikes", "resolve by this type when no name is given"),
        Option("mode", str, "events", "events (one sample per spike) or counts (one sample per image)"),
        Option("units", str, "", "comma-separated unit ids (events mode; default: those seen)"),
        Option("resolve_timeout_s", float, 5.0, "how long to look for the stream, s"),
        Option("latency_allowance_s", float, 0.1, "events mode: wait this long after a window for its spikes, s"),
        Option("match_tolerance_s", float, 0.01, "counts mode: largest onset/timestamp difference, s"),
    )

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        if self.settings["mode"] not in ("events", "counts"):
            raise CompactRigError(f"lsl: mode {self.settings['mode']!r}; use events or counts")
        self._spikes = SpikeBuffer(self.window, self.settings["latency_allowance_s"], self.declared_units)
        self._inlet = None
        self._correction: ClockCorrection | None = None
        self._count_samples: list[tuple[float, list[float]]] = []
        self._pending: deque[Presentation] = deque()

    @property
    def units(self) -> list[str]:
        return list(self._spikes.units)

    def connect(self) -> None:
        key, value = ("name", self.settings["stream_name"]) if self.settings["stream_name"] else \
            ("type", self.settings["stream_type"])
        found = pylsl.resolve_byprop(key, value, 1, self.settings["resolve_timeout_s"])
        if not found:
            raise CompactRigError(f"no LSL stream with {key} {value!r} found within "
                                  f"{self.settings['resolve_timeout_s']:g} s")
        self._inlet = pylsl.StreamInlet(found[0], max_buflen=60, recover=False)
        self._inlet.open_stream(self.settings["resolve_timeout_s"])
        self._correction = ClockCorrection(self._inlet, pylsl.local_clock(), self.settings["resolve_timeout_s"])
        channels = found[0].channel_count()
        if self.settings["mode"] == "counts" and not self._spikes.units:
            self._spikes.units = [str(k) for k in range(channels)]
        elif self.settings["mode"] == "counts" and len(self._spikes.units) != channels:
            raise CompactRigError(f"lsl: {len(self._spikes.units)} units declared ({self.settings['units']}) but the "
                                  f"count stream {found[0].name()!r} has {channels} channels; declare one unit per "
                                  "channel, or none")

    def submit(self, presentation: Presentation) -> None:
        if self.settings["mode"] == "events":
            self._spikes.submit(presentation)
        else:
            self._pending.append(presentation)

    def cancel(self, order: int) -> None:
        self._spikes.cancel(order)
        self._pending = deque(p for p in self._pending if p.order != order)

    def _pull(self, now: float) -> None:
        self._correction.refresh(now)
        samples, stamps = self._inlet.pull_chunk(timeout=0.0)
        for sample, stamp in zip(samples, stamps):
            local = stamp + self._correction.value
            if self.settings["mode"] == "counts":
                self._count_samples.append((local, list(sample)))
                continue
            unit = sample[0]
            self._spikes.add(str(int(unit)) if isinstance(unit, float) and unit.is_integer() else str(unit), local)

    def collect(self, now: float) -> list[Response]:
        self._pull(now)
        if self.settings["mode"] == "events":
            return self._spikes.ready(now)
        ready = []
        tolerance = self.settings["match_tolerance_s"]
        for shown in list(self._pending):
            match = next((values for stamp, values in self._count_samples
                          if abs(stamp - shown.onset_time) <= tolerance), None)
            if match is not None:
                self._pending.remove(shown)
                ready.append(Response(shown.order, shown.image_id,
                                      {u: float(v) for u, v in zip(self._spikes.units, match)}, self.window))
        oldest = min((p.onset_time for p in self._pending), default=now)
        self._count_samples = [s for s in self._count_samples if s[0] >= min(oldest, now - KEEP_S) - 1.0]
        return ready

    def close(self) -> None:
        if self._inlet is not None:
            self._inlet.close_stream()
        self._inlet = None
