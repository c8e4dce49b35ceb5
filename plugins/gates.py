"""Gates: when may a trial start, and when must it abort (fixation control).

Built-ins: ``always`` (no eye tracking: every trial starts and none aborts), ``lsl`` (a state
stream from the eye tracker or behaviour system: a sample of exactly 1 means the animal fixates;
anything else, 0, NaN on track loss, -1, other numbers or text, is a break) and ``iohub`` (gaze
from an eye tracker PsychoPy's ioHub drives, inside a fixation window: ``plugins.gaze_window``
decides, ``rig.presenter.iohub_gate`` reads the tracker). Labs add others under the entry-point
group ``compactrig.gates``. Aborted presentations go back into the session's plan.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from compactrig.engine.errors import CompactRigError
from compactrig.plugins.lsl_clock import ClockCorrection
from compactrig.plugins.sources.base import Option, parse_settings

if TYPE_CHECKING:
    from compactrig.rig.presenter.rig import RigConfig


class Gate:
    """The interface, and the ``always`` gate."""

    name = "always"
    options: tuple[Option, ...] = ()

    def __init__(self, **settings: Any) -> None:
        self.settings = parse_settings("gate", self.name, self.options, settings)
        self.break_reason = "fixation break"
        """Why the last ``break_time`` was not None, as a short phrase for the trial store and markers."""

    def use_screen(self, rig: RigConfig) -> None:
        """The rig's screen geometry, told before ``connect``: gates that read gaze positions place their
        fixation window with it (pixels per degree, where the fixation point is)."""

    def connect(self) -> None:
        """Open connections (called once before the first trial)."""

    def may_start(self, now: float) -> bool:
        return True

    def must_abort(self, now: float) -> bool:
        return False

    def break_time(self, since: float, now: float) -> float | None:
        """The earliest time in [since, now] (LSL clock) at which fixation was not held, or None.

        Gates that know when a break happened (from time-stamped samples) say so, so the image on
        screen at that moment is the one aborted; this default can only say "now".
        """
        return now if self.must_abort(now) else None

    def close(self) -> None:
        """Release connections."""


HISTORY_S = 30.0
"""Fixation samples kept for looking back over a trial."""


def fixation_fault(sample: object) -> str | None:
    """None when ``sample`` says "fixating" explicitly (one channel holding the number 1, or the
    text "1"); otherwise why it is a break. Fails closed: whatever is not understood is a break."""
    if not isinstance(sample, (list, tuple)) or len(sample) != 1:
        count = len(sample) if isinstance(sample, (list, tuple)) else "no"
        return f"fixation sample with {count} channels (the gate reads one)"
    value = sample[0]
    if isinstance(value, str):
        return None if value.strip() == "1" else f"fixation sample {value[:20]!r} (only 1 means fixating)"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value == 1:
            return None
        if value == 0:
            return "fixation break"
        if isinstance(value, float) and math.isnan(value):
            return "fixation sample NaN (eye tracker lost the eye)"
        return f"fixation sample {value:g} (only 1 means fixating)"
    return f"fixation sample of type {type(value).__name__} (only 1 means fixating)"


class SampledGate(Gate):
    """A gate over time-stamped samples, each "fixating" or a break with its reason: the one home of how a
    gate looks back over a trial and fails closed.

    Subclasses add samples (``_add``) in ``_update``, in time order on the LSL clock. A break is the first
    sample that is not fixating, or a gap of more than ``stale_after_s`` without any sample (a dead or
    stalled tracker), or no sample at all. A trial may start once fixation has been held for ``hold_s``,
    samples covering all of it (0: the latest sample decides).
    """

    hold_s = 0.0

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        stale = self.settings["stale_after_s"]
        if not stale > 0:
            raise CompactRigError(f"gate {self.name!r}: stale_after_s must be above 0 (the tracker's sample "
                                  "interval plus its jitter, e.g. 0.1)")
        self._times: list[float] = []
        self._states: list[str | None] = []
        """Per sample: None when fixating, else why not."""

    def _update(self, now: float) -> None:
        """Add the samples that arrived since the last call."""
        raise NotImplementedError

    def _add(self, stamp: float, fault: str | None, now: float) -> None:
        """One sample at ``stamp`` (LSL clock): a stamp that is not finite, or lies in the future, is dated
        ``now`` (a tracker cannot measure the future: such a stamp would hold the gate open), and time order
        is kept (a tracker restart can step its clock back)."""
        if not math.isfinite(stamp) or stamp > now:
            stamp = now
        if self._times and stamp < self._times[-1]:
            stamp = self._times[-1]
        self._times.append(stamp)
        self._states.append(fault)

    def _forget_old(self, now: float) -> None:
        cut = next((k for k, t in enumerate(self._times) if t >= now - HISTORY_S), len(self._times))
        if cut > 1:
            del self._times[:cut - 1], self._states[:cut - 1]

    def break_time(self, since: float, now: float) -> float | None:
        self._update(now)
        self._forget_old(now)
        stale = self.settings["stale_after_s"]
        times, states = self._times, self._states
        if not times:
            self.break_reason = "no fixation sample yet (eye tracker silent)"
            return since
        first = max(0, next((k for k, t in enumerate(times) if t > since), len(times)) - 1)
        for k in range(first, len(times)):
            start = max(times[k], since)
            state = states[k]
            if state is not None:
                self.break_reason = state
                return start
            following = times[k + 1] if k + 1 < len(times) else now
            if following - times[k] > stale:
                self.break_reason = f"no fixation sample for {stale:g} s (eye tracker silent)"
                return max(times[k] + stale, since)
        return None

    def may_start(self, now: float) -> bool:
        """Fixation held over the last ``hold_s``: no break in it, and a sample from its start on."""
        since = now - self.hold_s
        return self.break_time(since, now) is None and self._times[0] <= since

    def must_abort(self, now: float) -> bool:
        return self.break_time(now, now) is not None


class LslGate(SampledGate):
    """Fixation state from an LSL stream: one channel, 1 while the animal fixates, 0 when it does not.

    Fails closed: only a sample of exactly 1 means fixating (``fixation_fault``); NaN (what trackers
    send on track loss), negative or other values, text other than "1" and samples of more channels
    are breaks, each with its reason. The eye tracker must send a regular-rate stream; when no sample
    has come for ``stale_after_s`` the gate is closed (a dead or stalled tracker is a fixation break).
    Samples are used with their own time stamps, so a break between two polls is still seen, and is
    charged to the moment it happened; a stamp that is not finite, or lies in the future, is dated
    at the poll instead.
    """

    name = "lsl"
    options = (
        Option("stream_name", str, "FixationState", "name of the state stream"),
        Option("resolve_timeout_s", float, 5.0, "how long to look for the stream, s", 0.1, 600.0),
        Option("stale_after_s", float, 0.1, "no sample for this long closes the gate (fails closed), s"),
    )

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self._inlet: Any = None  # a pylsl.StreamInlet once connected
        self._correction: ClockCorrection | None = None

    def connect(self) -> None:
        import pylsl
        found = pylsl.resolve_byprop("name", self.settings["stream_name"], 1, self.settings["resolve_timeout_s"])
        if not found:
            raise CompactRigError(f"gate: no LSL stream named {self.settings['stream_name']!r} found within "
                                  f"{self.settings['resolve_timeout_s']:g} s; start the eye tracker's stream")
        # recover=True: a tracker that restarts under the same source id is picked up again by itself
        self._inlet = pylsl.StreamInlet(found[0], max_buflen=10, recover=True)
        self._inlet.open_stream(self.settings["resolve_timeout_s"])
        self._correction = ClockCorrection(self._inlet, pylsl.local_clock(), self.settings["resolve_timeout_s"])

    def _update(self, now: float) -> None:
        assert self._correction is not None, "connect() first"
        self._correction.refresh(now)
        samples, stamps = self._inlet.pull_chunk(timeout=0.0)
        for sample, stamp in zip(samples, stamps):
            local = stamp + self._correction.value if isinstance(stamp, float) else math.nan
            self._add(local, fixation_fault(sample), now)

    def close(self) -> None:
        if self._inlet is not None:
            self._inlet.close_stream()
        self._inlet = None
