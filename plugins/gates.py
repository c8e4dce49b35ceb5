"""Gates: when may a trial start, and when must it abort (fixation control).

Built-ins: ``always`` (no eye tracking: every trial starts and none aborts) and ``lsl``
(a state stream from the eye tracker or behaviour system: a sample of 1 means the
animal fixates, 0 that fixation is broken). Labs add others under the entry-point group
``compactrig.gates``. Aborted presentations go back into the session's plan.
"""

from __future__ import annotations

from typing import Any

from engine.errors import CompactRigError
from plugins.sources.base import Option, parse_settings


class Gate:
    """The interface, and the ``always`` gate."""

    name = "always"
    options: tuple[Option, ...] = ()

    def __init__(self, **settings: Any) -> None:
        self.settings = parse_settings("gate", self.name, self.options, settings)

    def connect(self) -> None:
        """Open connections (called once before the first trial)."""

    def may_start(self, now: float) -> bool:
        return True

    def must_abort(self, now: float) -> bool:
        return False

    def close(self) -> None:
        """Release connections."""


class LslGate(Gate):
    """Fixation state from an LSL stream: the latest sample's channel 0 (1 fixating, 0 broken)."""

    name = "lsl"
    options = (
        Option("stream_name", str, "FixationState", "name of the state stream"),
        Option("resolve_timeout_s", float, 5.0, "how long to look for the stream, s"),
    )

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self._inlet = None
        self._fixating = False

    def connect(self) -> None:
        import pylsl
        found = pylsl.resolve_byprop("name", self.settings["stream_name"], 1, self.settings["resolve_timeout_s"])
        if not found:
            raise CompactRigError(f"gate: no LSL stream named {self.settings['stream_name']!r} found")
        self._inlet = pylsl.StreamInlet(found[0])
        self._inlet.open_stream(self.settings["resolve_timeout_s"])

    def _update(self) -> None:
        samples, _ = self._inlet.pull_chunk(timeout=0.0)
        if samples:
            self._fixating = bool(samples[-1][0])

    def may_start(self, now: float) -> bool:
        self._update()
        return self._fixating

    def must_abort(self, now: float) -> bool:
        self._update()
        return not self._fixating

    def close(self) -> None:
        if self._inlet is not None:
            self._inlet.close_stream()
        self._inlet = None
