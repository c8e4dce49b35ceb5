"""Responses from Lab Streaming Layer: spike events or per-image counts, on the LSL clock.

``mode=events``: a stream with one sample per spike (channel 0 = unit id), time-stamped
when the spike happened; counts are the events of each unit in each onset's window,
after LSL time correction. A window is counted once ``latency_allowance_s`` has passed
after it closes (the time the data take to arrive).
``mode=counts``: a stream with one sample per shown image (channel k = unit k's count),
time-stamped with that image's onset; each onset takes the nearest sample within
``match_tolerance_s``, and a sample answers one onset only.
``words_stream`` (events mode): a second stream carrying the rig's event-code words as the recording
system stored them (channel 0 a word, stamped when it was recorded); each onset is matched to its onset
word by the identity the word carries (``onset_words``) and its window counted from the word's stamp:
exact whatever the lag between the flip and the recording, and a lost or extra word is named.

Whatever the stream carries is checked before it is used, and what is dropped is counted by reason
and told (``DropCounter``): in events mode a unit id must be a whole number >= 0 or a short text
(at most ``max_units`` units; more are refused, told once), a stamp finite and not in the future;
in counts mode every channel must be a finite number >= 0, or that image's response is missing
with the reason (its image is shown again). Held count samples are bounded (``MAX_COUNT_SAMPLES``)
and so are spikes (``SpikeBuffer``).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import pylsl

from compactrig.engine.errors import CompactRigError
from compactrig.plugins.event_codes import CodeTable
from compactrig.plugins.lsl_clock import ClockCorrection
from compactrig.plugins.sources.base import (
    SPIKE_OPTIONS,
    WINDOW_OPTIONS,
    Option,
    Presentation,
    Response,
    ResponseSource,
)
from compactrig.plugins.sources.dropped import DropCounter
from compactrig.plugins.sources.onset_words import Identities, OnsetWords
from compactrig.plugins.sources.spike_buffer import KEEP_S, MAX_UNITS, SpikeBuffer

MAX_COUNT_SAMPLES = 10_000
"""Count samples held for matching at most (one per shown image: far more than are ever pending)."""
MAX_UNIT_ID_CHARS = 64
FUTURE_S = 1.0
"""A sample stamped further ahead of the local clock than this cannot be real: dropped."""
WORD_GROUP_S = 0.005
"""Code words closer than this are one group (an abort's words leave the rig back to back)."""


def unit_id(value: Any) -> str | None:
    """A spike sample's unit id as text, or None when it is not one (NaN, negative, fractional, long)."""
    if isinstance(value, str):
        text = value.strip()
        return text if text and len(text) <= MAX_UNIT_ID_CHARS and text.isprintable() else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
            and value >= 0 and float(value).is_integer():
        return str(int(value))
    return None


def count_fault(values: list[Any], units: list[str]) -> str | None:
    """None when every channel is a finite count >= 0, else what is wrong with the first bad one."""
    for unit, value in zip(units, values):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"the count stream sent {str(value)[:20]!r} for unit {unit} (not a number)"
        if not math.isfinite(value) or value < 0:
            return f"the count stream sent {value:g} for unit {unit} (a count is finite and >= 0)"
    return None


class LslSource(ResponseSource):
    name = "lsl"
    description = "spike events or per-image counts from a Lab Streaming Layer stream"
    options = WINDOW_OPTIONS + SPIKE_OPTIONS + (
        Option("stream_name", str, "", "resolve the stream by this name (default: by type)"),
        Option("stream_type", str, "Spikes", "resolve by this type when no name is given"),
        Option("mode", str, "events", "events (one sample per spike) or counts (one sample per image)"),
        Option("units", str, "", "comma-separated unit ids (events mode; default: those seen)"),
        Option("resolve_timeout_s", float, 5.0, "how long to look for the stream, s", 0.1, 600.0),
        Option("latency_allowance_s", float, 0.1, "events mode: wait this long after a window for its spikes, s",
               0.0, 10.0),
        Option("match_tolerance_s", float, 0.01, "counts mode: largest onset/timestamp difference, s", 1e-6, 10.0),
        Option("max_units", int, MAX_UNITS, "events mode: most units the stream may introduce (more are refused)",
               1, 100_000),
        Option("words_stream", str, "", "events mode: the LSL stream of the rig's event-code words as recorded; "
                                        "onsets are matched to their words by identity and counted from them"),
        Option("code_tolerance_s", float, 0.5, "largest distance between an onset and its recorded code word, s",
               1e-6, 60.0),
    )

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        if self.settings["mode"] not in ("events", "counts"):
            raise CompactRigError(f"lsl: mode {self.settings['mode']!r}; use events or counts")
        if self.settings["max_units"] < max(1, len(self.declared_units)):
            raise CompactRigError(f"lsl: max_units = {self.settings['max_units']}; at least 1 and the declared units")
        self._spikes = SpikeBuffer(self.window, self.settings["latency_allowance_s"], self.declared_units,
                                   max_units=self.settings["max_units"], span=self.spike_span)
        self._inlet: Any = None  # a pylsl.StreamInlet once connected
        self._correction: ClockCorrection | None = None
        self._count_samples: deque[tuple[float, list[Any]]] = deque(maxlen=MAX_COUNT_SAMPLES)
        if self.settings["words_stream"] and self.settings["mode"] != "events":
            raise CompactRigError("lsl: words_stream matches spike windows to code words: use it with mode = events")
        self.dropped = DropCounter()
        self._pending: deque[Presentation] = deque()
        self._identities: Identities | None = None
        self._words: OnsetWords | None = None
        self._words_inlet: Any = None
        self._words_correction: ClockCorrection | None = None
        self._awaiting_word: list[Presentation] = []

    @property
    def units(self) -> list[str]:
        return list(self._spikes.units)

    @property
    def spike_span(self) -> tuple[float, float] | None:
        return super().spike_span if self.settings["mode"] == "events" else None  # counts mode: counts only

    @property
    def matches_codes(self) -> bool:
        return bool(self.settings["words_stream"])

    def use_codes(self, codes: CodeTable) -> None:
        if self.matches_codes:
            self._identities = Identities(codes)

    def prepare(self, image_ids: list[str], pixels: Any) -> None:
        if self._identities is not None:
            self._identities.learn(image_ids)

    def connect(self) -> None:
        self._inlet, self._correction, channels = self._open(*(
            ("name", self.settings["stream_name"]) if self.settings["stream_name"] else
            ("type", self.settings["stream_type"])))
        if self._identities is not None:
            self._words_inlet, self._words_correction, _ = self._open("name", self.settings["words_stream"])
            self._words = self._words or OnsetWords(self._identities.codes, WORD_GROUP_S)
        if self.settings["mode"] == "counts" and not self._spikes.units:
            self._spikes.units = [str(k) for k in range(channels)]
        elif self.settings["mode"] == "counts" and len(self._spikes.units) != channels:
            raise CompactRigError(f"lsl: {len(self._spikes.units)} units declared ({self.settings['units']}) but the "
                                  f"count stream {self.settings['stream_name']!r} has {channels} channels; declare "
                                  "one unit per channel, or none")

    def _open(self, key: str, value: str) -> tuple[Any, ClockCorrection, int]:
        """An open inlet on the stream whose ``key`` is ``value``, its clock correction, its channel count."""
        found = pylsl.resolve_byprop(key, value, 1, self.settings["resolve_timeout_s"])
        if not found:
            raise CompactRigError(f"no LSL stream with {key} {value!r} found within "
                                  f"{self.settings['resolve_timeout_s']:g} s")
        inlet = pylsl.StreamInlet(found[0], max_buflen=60, recover=False)
        inlet.open_stream(self.settings["resolve_timeout_s"])
        return inlet, ClockCorrection(inlet, pylsl.local_clock(), self.settings["resolve_timeout_s"]), \
            found[0].channel_count()

    def submit(self, presentation: Presentation) -> None:
        if self._words is not None:
            self._awaiting_word.append(presentation)
        elif self.settings["mode"] == "events":
            self._spikes.submit(presentation)
        else:
            self._pending.append(presentation)

    def cancel(self, order: int) -> None:
        self._spikes.cancel(order)
        if self._words is not None and self._identities is not None:
            for shown in [p for p in self._awaiting_word if p.order == order]:  # its word may come: no extra
                self._words.forgive(self._identities.of(shown), shown.onset_time, self.settings["code_tolerance_s"])
            self._awaiting_word = [p for p in self._awaiting_word if p.order != order]
        self._pending = deque(p for p in self._pending if p.order != order)

    def notices(self) -> list[str]:
        return self.dropped.notices()

    def _pull(self, now: float) -> None:
        assert self._correction is not None, "connect() first"
        self._correction.refresh(now)
        samples, stamps = self._inlet.pull_chunk(timeout=0.0)
        for sample, stamp in zip(samples, stamps):
            local = stamp + self._correction.value
            if not math.isfinite(local) or local > now + FUTURE_S:
                self.dropped.drop("sample with a time stamp that is not finite or lies in the future", f"{stamp!r}")
                continue
            if self.settings["mode"] == "counts":
                if len(self._count_samples) == MAX_COUNT_SAMPLES:
                    self.dropped.drop(f"count samples beyond the {MAX_COUNT_SAMPLES} held (oldest dropped)")
                self._count_samples.append((local, list(sample)))
                continue
            unit = unit_id(sample[0] if sample else None)
            if unit is None:
                self.dropped.drop("spike with a unit id that is not a whole number >= 0 or a short text",
                                  repr(sample[0] if sample else sample)[:40])
                continue
            refused = self._spikes.add(unit, local)
            if refused == "unit refused":
                self.dropped.drop(f"spikes of units beyond max_units = {self.settings['max_units']} (new units "
                                  "refused; raise max_units if the recording really has more)", once=True)
            elif refused:
                self.dropped.drop(refused, "windows it touches are missing")

    def _pull_words(self, now: float) -> list[Response]:
        """Recorded words in; presentations whose word came handed to the spike buffer at the word's stamp; those
        whose word can no longer come missing, with why."""
        assert self._words is not None and self._identities is not None and self._words_correction is not None
        self._words_correction.refresh(now)
        samples, stamps = self._words_inlet.pull_chunk(timeout=0.0)
        for sample, stamp in zip(samples, stamps):
            local = stamp + self._words_correction.value
            word = sample[0] if sample else None
            if not math.isfinite(local) or local > now + FUTURE_S:
                self.dropped.drop("code word with a time stamp that is not finite or lies in the future", f"{stamp!r}")
            elif isinstance(word, bool) or not isinstance(word, (int, float)) or not math.isfinite(word) \
                    or not float(word).is_integer() or word < 0:
                self.dropped.drop("code word that is not a whole number >= 0", repr(word)[:40])
            else:
                self._words.add(local, int(word))
        complete = now - self.settings["latency_allowance_s"]
        self._words.decode_until(complete)
        tolerance, missing, waiting = self.settings["code_tolerance_s"], [], []
        for shown in self._awaiting_word:
            start = self._words.claim(self._identities.of(shown), shown.onset_time, tolerance)
            if start is not None:
                self._spikes.submit(Presentation(shown.order, shown.trial_id, shown.image_id, start))
            elif self._words.past_hope(shown.onset_time, tolerance):
                missing.append(Response(shown.order, shown.image_id, None, self.window,
                                        f"no onset word ({self._identities.words_text(shown)}) recorded within "
                                        f"{tolerance:g} s of the onset in {self.settings['words_stream']!r}: the word "
                                        "was lost"))
            else:
                waiting.append(shown)
        self._awaiting_word = waiting
        for problem in self._words.take_problems():
            self.dropped.drop("event-code words that make no event", problem)
        for extra in self._words.extras(complete - 2 * tolerance):
            self.dropped.drop("onset words no presentation claimed", extra)
        return missing

    def collect(self, now: float) -> list[Response]:
        self._pull(now)
        if self._words is not None:
            return self._pull_words(now) + self._spikes.ready(now)
        if self.settings["mode"] == "events":
            return self._spikes.ready(now)
        ready = []
        tolerance = self.settings["match_tolerance_s"]
        for shown in list(self._pending):
            near = [(abs(stamp - shown.onset_time), k) for k, (stamp, _) in enumerate(self._count_samples)
                    if abs(stamp - shown.onset_time) <= tolerance]
            if near:
                k = min(near)[1]
                match = self._count_samples[k][1]
                del self._count_samples[k]  # one sample answers one image
                self._pending.remove(shown)
                fault = count_fault(match, self._spikes.units)
                if fault:
                    self.dropped.drop("count samples with a value that is not a count", fault)
                    ready.append(Response(shown.order, shown.image_id, None, self.window, fault))
                else:
                    ready.append(Response(shown.order, shown.image_id,
                                          {u: float(v) for u, v in zip(self._spikes.units, match)}, self.window))
        oldest = min((p.onset_time for p in self._pending), default=now)
        while self._count_samples and self._count_samples[0][0] < min(oldest, now - KEEP_S) - 1.0:
            self._count_samples.popleft()
        return ready

    def close(self) -> None:
        for inlet in (self._inlet, self._words_inlet):
            if inlet is not None:
                inlet.close_stream()
        self._inlet = self._words_inlet = None
