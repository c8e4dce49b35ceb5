"""Marker outputs: tell the recording system when each image appeared.

A marker output is called by the presenter process at the flip that showed an image (from
PsychoPy's ``callOnFlip``, right after the flip), with that flip's time on the LSL clock. Built-ins:
``none``, ``lsl`` (an irregular-rate string stream with a stable source id) and the event-code
outputs of ``code_outputs`` (``serial``, ``nidaq``, ``labjack``; ``parallel`` in the presenter
package), which send the rig's code table as strobed digital words. Labs add others by registering a
subclass under the entry-point group ``compactrig.marker_outputs``. An output that raises is told
nothing more: the presentation it failed on is aborted and the session stops (resumable).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from compactrig.engine.errors import CompactRigError
from compactrig.plugins.event_codes import CodeTable, SentWord
from compactrig.plugins.sources.base import Option


class MarkerOutput:
    """The interface, and the ``none`` output: every event is ignored."""

    options: tuple[Option, ...] = ()
    """The keyword arguments the output takes, described for the window's form."""
    sends_codes = False
    """Whether it sends the code table's words (which a source matching onsets to their words needs)."""

    def __init__(self, **options: Any) -> None:
        if options:
            raise ValueError(f"unknown options {sorted(options)}")

    def describe(self, session: dict[str, str]) -> None:
        """Told what is being recorded (session folder, stimulus set, software) before ``open``."""

    def use_codes(self, codes: CodeTable, image_index: Mapping[str, int]) -> None:
        """Told the rig's event-code table and each loaded image's index in the session's stimulus set (a
        live mapping: images added later appear in it) before ``open``; outputs that send no codes ignore it."""

    def open(self) -> None:
        """Called once in the presenter process before the first trial."""

    def check_images(self, image_ids: list[str]) -> None:
        """Raise when one of these images (the next run's) could not be marked; nothing of the run is shown then."""

    def trial_start(self, trial_id: int, timestamp: float) -> None:
        """A trial (one fixation) begins at ``timestamp`` (LSL clock)."""

    def onset(self, order: int, trial_id: int, image_id: str, timestamp: float) -> None:
        """Image ``image_id`` appeared at ``timestamp``: presentation number ``order``."""

    def image_offset(self, order: int, trial_id: int, image_id: str, timestamp: float) -> None:
        """Presentation ``order``'s image was taken down at the flip at ``timestamp``."""

    def trial_end(self, trial_id: int, timestamp: float) -> None:
        """The trial's last image has gone: ``timestamp`` is the flip of the blank frame that ends it."""

    def fixation_break(self, timestamp: float) -> None:
        """The gate saw fixation break; the trial is being aborted (its presentations' aborts follow)."""

    def abort(self, order: int, reason: str, timestamp: float, kind: str = "missing") -> None:
        """Presentation ``order`` does not count (fixation break, missing response, stop...): recorders
        drop its spikes; it is shown again later under a new order number. ``kind`` is the trial store's
        abort kind (``fixation``, ``stopped``, ``dropped_frames``, ``missing``, ``markers``)."""

    def sent_words(self) -> list[SentWord]:
        """The digital words sent since last asked (the presenter stores them beside the presentations)."""
        return []

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
                                                  "subscribe (0: do not wait); none by then is an error", 0.0, 600.0),
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

    def abort(self, order: int, reason: str, timestamp: float, kind: str = "missing") -> None:
        self._send({"event": "abort", "order": order, "reason": reason}, timestamp)

    def close(self) -> None:
        self._outlet = None
