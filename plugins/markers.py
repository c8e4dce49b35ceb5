"""Marker outputs: tell the recording system when each image appeared.

A marker output is called by the presenter process right after the flip that showed
an image, with that flip's time on the LSL clock. Built-ins: ``none`` and ``lsl`` (an
irregular-rate string stream with a stable source id). Labs add others (Open Ephys
network events, a parallel port, MonkeyLogic-style codes) by registering a subclass
under the entry-point group ``compactrig.marker_outputs``.
"""

from __future__ import annotations

import json
from typing import Any

from compactrig.engine.errors import CompactRigError
from compactrig.plugins.sources.base import Option


class MarkerOutput:
    """The interface, and the ``none`` output: every event is ignored."""

    options: tuple[Option, ...] = ()
    """The keyword arguments the output takes, described for the window's form."""

    def __init__(self, **options: Any) -> None:
        if options:
            raise ValueError(f"unknown options {sorted(options)}")

    def describe(self, session: dict[str, str]) -> None:
        """Told what is being recorded (session folder, stimulus set, software) before ``open``."""

    def open(self) -> None:
        """Called once in the presenter process before the first trial."""

    def trial_start(self, trial_id: int, timestamp: float) -> None:
        """A trial (one fixation) begins at ``timestamp`` (LSL clock)."""

    def onset(self, order: int, trial_id: int, image_id: str, timestamp: float) -> None:
        """Image ``image_id`` appeared at ``timestamp``: presentation number ``order``."""

    def trial_end(self, trial_id: int, timestamp: float) -> None:
        """The trial's last image has gone: ``timestamp`` is the flip of the blank frame that ends it."""

    def abort(self, order: int, reason: str, timestamp: float) -> None:
        """Presentation ``order`` does not count (fixation break, missing response, stop...): recorders
        drop its spikes; it is shown again later under a new order number."""

    def close(self) -> None:
        """Called when the presenter shuts down."""


class LslMarkers(MarkerOutput):
    """One JSON string marker per event on an irregular-rate LSL stream.

    Samples: ``{"event": "onset", "order": 12, "trial": 3, "image": "image0007"}``,
    ``{"event": "trial_start", "trial": 3}``, ``{"event": "trial_end", "trial": 3}`` (each
    time-stamped with its flip), and ``{"event": "abort", "order": 12, "reason": "..."}`` (stamped
    when the abort was decided). Order numbers are never reused within a session, across crashes and
    resumes. The stream's description names the session and its stimulus set
    (``<desc><compactrig><session>...``).
    """

    options = (
        Option("name", str, "CompactRigMarkers", "LSL stream name the recorder subscribes to"),
        Option("source_id", str, "compactrig-markers", "stable LSL source id (recorders reconnect by it)"),
        Option("stream_type", str, "Markers", "LSL stream type"),
        Option("wait_for_recorder_s", float, 0.0, "before the first image, wait this long for a recorder to "
                                                  "subscribe (0: do not wait); none by then is an error"),
    )

    def __init__(self, name: str = "CompactRigMarkers", source_id: str = "compactrig-markers",
                 stream_type: str = "Markers", wait_for_recorder_s: float = 0.0) -> None:
        super().__init__()
        self.name, self.source_id, self.stream_type = name, source_id, stream_type
        self.wait_for_recorder_s = wait_for_recorder_s
        self._outlet: Any = None  # a pylsl.StreamOutlet while open
        self._session: dict[str, str] = {}

    def describe(self, session: dict[str, str]) -> None:
        self._session = dict(session)

    def open(self) -> None:
        import pylsl
        info = pylsl.StreamInfo(self.name, self.stream_type, 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, self.source_id)
        described = info.desc().append_child("compactrig")
        for key, value in self._session.items():
            described.append_child_value(key, str(value))
        self._outlet = pylsl.StreamOutlet(info)
        if self.wait_for_recorder_s > 0 and not self._outlet.wait_for_consumers(self.wait_for_recorder_s):
            raise CompactRigError(f"no recorder subscribed to the marker stream {self.name!r} within "
                                  f"{self.wait_for_recorder_s:g} s; start the recording system's LSL recorder, or "
                                  "set [markers.lsl] wait_for_recorder_s = 0")

    def _send(self, payload: dict, timestamp: float) -> None:
        self._outlet.push_sample([json.dumps(payload)], timestamp)

    def trial_start(self, trial_id: int, timestamp: float) -> None:
        self._send({"event": "trial_start", "trial": trial_id}, timestamp)

    def onset(self, order: int, trial_id: int, image_id: str, timestamp: float) -> None:
        self._send({"event": "onset", "order": order, "trial": trial_id, "image": image_id}, timestamp)

    def trial_end(self, trial_id: int, timestamp: float) -> None:
        self._send({"event": "trial_end", "trial": trial_id}, timestamp)

    def abort(self, order: int, reason: str, timestamp: float) -> None:
        self._send({"event": "abort", "order": order, "reason": reason}, timestamp)

    def close(self) -> None:
        self._outlet = None
