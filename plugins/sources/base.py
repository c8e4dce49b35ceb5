"""The response-source interface, and the description of a source's options for forms.

A source connects, is told each onset (trial, image, onset time on the LSL clock) and
delivers, per shown image, a spike count for each recorded unit in a window after the
onset (default 50-150 ms: a 100 ms bin after the response latency). A source that sees the
spikes themselves (``SPIKE_OPTIONS``) also delivers each unit's spike times relative to the
onset over a span around it (default -100..+400 ms), from which rasters and PSTHs are drawn
and other windows counted again; its response is due once the later of window and span has
passed. Sources describe their own options (name, type, default, help) so the GUI can build
a form and the CLI can parse ``--source-opt KEY=VALUE``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from compactrig.engine.errors import CompactRigError
from compactrig.plugins.event_codes import CodeTable


@dataclass(frozen=True)
class Option:
    """One setting of a source, as a form field. A number must be finite and, where ``low`` or ``high`` is set,
    within them (inclusive): a rig file that passes ``rig check`` holds no value its plugin cannot work with."""

    name: str
    kind: type
    default: Any
    help: str
    low: float | None = None
    high: float | None = None

    def convert(self, value: Any) -> Any:
        converted = self._typed(value)
        if self.kind in (int, float):
            check_range(self.name, converted, self.low, self.high, f" ({self.help})")
        return converted

    def _typed(self, value: Any) -> Any:
        if isinstance(value, self.kind) and not (self.kind is int and isinstance(value, bool)):
            return value
        text = str(value).strip()
        try:
            if self.kind is bool:
                if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(text)
                return text.lower() in ("true", "1", "yes")
            return self.kind(text)
        except ValueError:
            raise CompactRigError(f"option {self.name} = {value!r}: expected {self.kind.__name__} "
                                  f"({self.help})") from None


def check_range(name: str, value: float, low: float | None, high: float | None, why: str = "") -> None:
    """``value`` finite and within ``low``..``high`` (inclusive; None: open), else one line naming ``name``."""
    if math.isfinite(value) and (low is None or value >= low) and (high is None or value <= high):
        return
    wanted = (f"from {low:g} to {high:g}" if low is not None and high is not None
              else f"{low:g} or more" if low is not None else f"{high:g} or less" if high is not None
              else "a finite number")
    raise CompactRigError(f"option {name} = {value!r}: give {wanted}{why}")


def parse_settings(kind: str, name: str, options: tuple[Option, ...], settings: dict[str, Any]) -> dict[str, Any]:
    """A plugin's settings: every option converted, defaults filled in, unknown names refused."""
    known = {option.name: option for option in options}
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise CompactRigError(f"{kind} {name!r} has no option {unknown[0]!r}; "
                              f"its options: {', '.join(known) or 'none'}")
    try:
        return {key: option.convert(settings.get(key, option.default)) for key, option in known.items()}
    except CompactRigError as error:
        raise CompactRigError(f"{kind} {name!r}: {error}") from None


@dataclass(frozen=True)
class Presentation:
    """An image that was shown: what a source needs to find its response."""

    order: int
    trial_id: int
    image_id: str
    onset_time: float


@dataclass(frozen=True)
class Response:
    """The counts of every unit for one presentation, or why there are none."""

    order: int
    image_id: str
    counts: dict[str, float] | None
    window: tuple[float, float]
    missing: str | None = None
    spikes: dict[str, np.ndarray] | None = None
    """Each unit's spike times in s relative to the onset, sorted, within ``span`` (a unit that did not fire
    may be left out); None from a source that delivers counts only."""
    span: tuple[float, float] | None = None
    """The span around the onset whose spikes ``spikes`` holds, s."""


WINDOW_OPTIONS = (
    Option("window_start_s", float, 0.05, "start of the counting window after onset, s", 0.0, 5.0),
    Option("window_end_s", float, 0.15, "end of the counting window after onset, s", 0.0, 5.0),
    Option("timeout_s", float, 2.0, "how long after the window ends a missing response is given up, s", 0.01, 600.0),
)

SPIKE_OPTIONS = (
    Option("spikes_from_s", float, -0.1, "spike times kept from this long around each onset, s (negative: before it)"),
    Option("spikes_to_s", float, 0.4, "spike times kept until this long after each onset, s"),
)
"""Options of a source that delivers spike times; the span must hold the counting window."""
MAX_SPAN_S = 5.0
"""Longest span of spike times kept around an onset."""


class ResponseSource:
    """Base class: subclasses set ``name``, ``description``, ``options`` and override the hooks."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    options: ClassVar[tuple[Option, ...]] = WINDOW_OPTIONS

    def __init__(self, **settings: Any) -> None:
        self.settings = parse_settings("source", self.name, self.options, settings)
        if not 0 <= self.settings["window_start_s"] < self.settings["window_end_s"]:
            raise CompactRigError("window_start_s must be >= 0 and below window_end_s")
        if "spikes_from_s" in self.settings:
            low, high = self.settings["spikes_from_s"], self.settings["spikes_to_s"]
            if not (-MAX_SPAN_S < low <= self.window[0] and self.window[1] <= high < MAX_SPAN_S
                    and high - low <= MAX_SPAN_S):
                raise CompactRigError(f"spikes_from_s = {low:g}, spikes_to_s = {high:g}: the span of spike times kept "
                                      f"must hold the counting window ({self.window[0]:g}..{self.window[1]:g} s) and "
                                      f"be at most {MAX_SPAN_S:g} s long")

    @property
    def window(self) -> tuple[float, float]:
        return self.settings["window_start_s"], self.settings["window_end_s"]

    @property
    def spike_span(self) -> tuple[float, float] | None:
        """The span of spike times delivered around each onset (s), or None for a source of counts only."""
        if "spikes_from_s" not in self.settings:
            return None
        return self.settings["spikes_from_s"], self.settings["spikes_to_s"]

    @property
    def due_s(self) -> float:
        """How long after an onset its response is complete: the end of the window, or of the spike span."""
        span = self.spike_span
        return max(self.window[1], span[1]) if span else self.window[1]

    @property
    def units(self) -> list[str]:
        """The recorded units' ids, in a stable order: declared ones from the start, discovered ones
        appended when first heard from."""
        raise NotImplementedError

    @property
    def declared_units(self) -> list[str]:
        """Units named before the session (options): known, and counted, from the first window."""
        return [u.strip() for u in str(self.settings.get("units", "")).split(",") if u.strip()]

    def connect(self) -> None:
        """Open connections; may raise (the guard retries with backoff)."""

    def prepare(self, image_ids: list[str], pixels: np.ndarray) -> None:
        """Told the stimulus set before a run, and again with images added during it (the simulated
        source predicts them)."""

    def resume_from(self, stored: Mapping[str, int]) -> None:
        """Told once, before a run's first presentation, what the session's store already holds: image id ->
        how many of its presentations have a stored response (empty for a new session).

        A source that serves fixed responses (a replayed recording) carries on after those, so a session
        resumed after any number of crashes never gets the same recorded response twice; a response it
        delivered that was lost in a crash is not counted, and is served again. Sources that count live
        data need nothing here (this default); presentation numbers are never reused, so a source that
        draws at random from (seed, presentation number) carries on its stream by itself.
        """

    def use_codes(self, codes: CodeTable) -> None:
        """Told the session's event-code table before ``connect``: a source that sees the words the recording
        system stored matches onsets to them (``onset_words``); others ignore it (this default)."""

    @property
    def matches_codes(self) -> bool:
        """Whether this source, as set, needs the rig to send event codes (it matches onsets to their words)."""
        return False

    def submit(self, presentation: Presentation) -> None:
        """An image was shown."""
        raise NotImplementedError

    def collect(self, now: float) -> list[Response]:
        """Responses whose windows have closed by ``now`` (LSL clock); a response whose window the
        source knows it cannot count (acquisition stopped) comes back with ``counts=None`` and why."""
        raise NotImplementedError

    def cancel(self, order: int) -> None:
        """Presentation ``order`` no longer counts (aborted while its window was open): forget it."""

    def notices(self) -> list[str]:
        """One-line messages for the user since the last call (acquisition restarted, bad message...)."""
        return []

    def close(self) -> None:
        """Release connections."""


def split_values(text: str, count: int, kind: type = float, name: str = "value", low: float | None = None,
                 high: float | None = None) -> list:
    """``'1.0'`` -> the same for all ``count`` units; ``'1,2,3'`` -> one per unit, each finite and within
    ``low``..``high``. Errors name ``name``."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if len(parts) == 1:
        parts = parts * count
    if len(parts) != count:
        raise CompactRigError(f"{name} = {text!r}: give one value, or one per unit ({count})")
    try:
        values = [kind(p) for p in parts]
    except ValueError:
        raise CompactRigError(f"{name} = {text!r}: not a number, nor a list of {kind.__name__} values "
                              "separated by commas") from None
    for value in values:
        check_range(name, value, low, high)
    return values
