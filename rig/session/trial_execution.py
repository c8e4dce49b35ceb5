"""One trial at a time through the presenter process, under the gate (fixation) and the user's controls.

Each onset is stored at its flip and handed to the response collector, so its counting window is
kept however long the image stays up. A fixation break at time t (the gate's own time stamp) aborts
every presentation whose image was up at t or whose counting window contains t, and every later one;
earlier ones count. A presenter that dies, or hangs past its trial's deadline, stops the session
(which stays resumable); so does a marker output that fails (a device unplugged): the presentations it
could not mark are aborted, the responses already due are collected, then the run ends in one line.
Every digital word the presenter reports sending is stored as it arrives.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pylsl

from compactrig.engine.errors import CompactRigError
from compactrig.plugins.gates import Gate
from compactrig.rig.presenter import protocol as msg
from compactrig.rig.presenter.client import Presenter
from compactrig.rig.presenter.rig import RigConfig
from compactrig.rig.session.collection import ResponseCollector
from compactrig.rig.session.controls import CLOSING_WAIT_S, RunControls
from compactrig.rig.session.events import Report
from compactrig.rig.session.trial_store import MARKERS_FAILED, StoredPresentation, TrialStore
from compactrig.stimuli.stimulus_set import StimulusSet
from compactrig.stimuli.trial_plan import Trial

WAITING_TOLD_S = 2.0
"""Waiting this long for the gate, the user is told why it stays closed."""
PRESENTER_STUCK_S = 5.0
"""A trial that has not ended this long after it should have (or after an abort) means the presenter hangs."""
LOAD_WAIT_S = 60.0


class TrialExecutor:
    """Runs trials on the presenter, checks the gate, and says what each shown image counts for."""

    def __init__(self, presenter: Presenter, gate: Gate, rig: RigConfig, max_dropped_frames: int | None,
                 store: TrialStore, collector: ResponseCollector, controls: RunControls,
                 report: Report) -> None:
        self.presenter, self.gate, self.rig, self.max_dropped_frames = presenter, gate, rig, max_dropped_frames
        self.store, self.collector, self.controls, self.report = store, collector, controls, report
        self.dropped_frames = 0
        self.timeouts = 0
        """Times fixation was not acquired within ``acquire_s``."""
        self.break_at: float | None = None
        self.abort_reason, self.abort_kind = "stopped by the user", "stopped"
        self.marker_failure: str | None = None
        """Why a marker output failed, once one did: the session stops."""

    def load(self, stimuli: StimulusSet) -> None:
        """Textures for these images on the presenter (returns when it has them)."""
        self.presenter.send(msg.LoadStimuli(stimuli.ids, stimuli.pixels))
        meanwhile: list[object] = []
        self.presenter.wait_for(msg.StimuliLoaded, LOAD_WAIT_S, meanwhile)
        for event in meanwhile:
            self._anytime(event)

    def watch(self) -> None:
        """Drain the presenter's events between trials; its death, or a marker output failing, stops the session."""
        for event in self.presenter.poll():
            self._anytime(event)
        if self.marker_failure is not None:
            self._stop_for_markers()

    def store_last_codes(self) -> None:
        """Once the presenter is shut down: the words it sent while closing (the last aborts) are stored too."""
        for event in self.presenter.poll():
            if isinstance(event, msg.CodesSent):
                self._anytime(event)

    def _anytime(self, event: object) -> None:
        """What the presenter may say between trials as during them: words sent, a marker output failed, died."""
        if isinstance(event, msg.CodesSent):
            self.store.record_codes(event.output, [(w.event, w.order, w.trial, w.word, w.time) for w in event.words])
        elif isinstance(event, msg.MarkerFailed):
            self.marker_failure = event.message
            if self.break_at is None:
                self.abort_reason, self.abort_kind = event.message, MARKERS_FAILED
        elif isinstance(event, msg.PresenterDied):
            raise _died(event)

    def _stop_for_markers(self) -> None:
        """The presenter shows nothing more; keep the responses due for what it showed, then stop in one line."""
        self.collector.finish_waiting(self.controls)
        raise CompactRigError(f"{self.marker_failure}; the session stopped and is saved: reconnect the device, then "
                              "resume the session")

    def wait_for_gate(self, meanwhile: Callable[[], None]) -> bool:
        """Wait while paused or until the gate lets a trial start, calling ``meanwhile`` (collecting,
        taking queued images, reporting) between checks; False when stopped meanwhile.

        While the gate is closed the fixation point is up, for the animal to take; with ``[timing] acquire_s``
        it is taken down for ``inter_trial_s`` after that long without fixation, then shown again. A wait of
        more than ``WAITING_TOLD_S``, and every time-out, is told with the gate's reason."""
        reported_pause = False
        controls = self.controls
        shown_at: float | None = None  # when the fixation point went up in this wait
        told = False
        while controls.pause_requested or not self.gate.may_start(pylsl.local_clock()):
            if controls.stop_requested:
                return False
            if controls.pause_requested != reported_pause:
                reported_pause = controls.pause_requested
                self.report("paused; resume to go on" if reported_pause else "resumed")
            now = time.monotonic()
            if not controls.pause_requested:
                if shown_at is None:
                    self.presenter.send(msg.ShowFixation(True))
                    shown_at = now
                elif self.rig.acquire_s > 0 and now - shown_at > self.rig.acquire_s:
                    self._time_out(meanwhile)
                    shown_at = None
                elif not told and now - shown_at > WAITING_TOLD_S:
                    told = True
                    self.report(f"waiting for fixation: {self.gate.break_reason}")
            self.watch()
            meanwhile()
            time.sleep(0.005)
        return True

    def _time_out(self, meanwhile: Callable[[], None]) -> None:
        """Fixation was not acquired within ``acquire_s``: the fixation point goes for ``inter_trial_s``."""
        self.timeouts += 1
        if self.timeouts in (1, 10, 100) or self.timeouts % 1000 == 0:
            self.report(f"no fixation acquired within {self.rig.acquire_s:g} s ({self.gate.break_reason}); the "
                        f"fixation point is taken down for {self.rig.inter_trial_s:g} s and shown again "
                        f"({self.timeouts} so far)")
        self.presenter.send(msg.ShowFixation(False))
        until = time.monotonic() + self.rig.inter_trial_s
        while time.monotonic() < until and not self.controls.stop_requested:
            self.watch()
            meanwhile()
            time.sleep(0.005)

    def run(self, trial: Trial, items: list[int]) -> None:
        """Present one trial (``items``: the plan items of its images) until the presenter says it is done."""
        store, presenter, controls = self.store, self.presenter, self.controls
        first = store.reserve_orders(len(trial.image_ids))
        since = pylsl.local_clock()
        presenter.send(msg.RunTrials([trial], first_order=first))
        shown: dict[int, tuple[float, float | None]] = {}  # order -> (onset, offset) in this trial
        self.break_at = None
        abort_sent_at: float | None = None
        self.abort_reason, self.abort_kind = "stopped by the user", "stopped"
        frame_s = 1.0 / self.rig.refresh_hz
        expected = len(trial.image_ids) * (self.rig.frames_on + self.rig.frames_off) * frame_s + self.rig.inter_trial_s
        deadline = time.monotonic() + 2 * expected + PRESENTER_STUCK_S
        while True:
            now = pylsl.local_clock()
            if abort_sent_at is None:
                broke = self.gate.break_time(since, now)
                if broke is not None or controls.stop_requested:
                    presenter.send(msg.Abort(fixation_break=broke is not None))  # the break's code before the aborts'
                    abort_sent_at = time.monotonic()
                    wait = CLOSING_WAIT_S if controls.closing else PRESENTER_STUCK_S
                    deadline = min(deadline, abort_sent_at + wait)
                if broke is not None:
                    self.break_at, self.abort_reason, self.abort_kind = broke, self.gate.break_reason, "fixation"
                    for order, (onset, offset) in shown.items():
                        if self._charged(onset, offset):
                            self.collector.abort(order, self.abort_reason, "fixation")
            elif controls.closing:
                deadline = min(deadline, abort_sent_at + CLOSING_WAIT_S)
            for event in presenter.poll():
                if isinstance(event, (msg.CodesSent, msg.MarkerFailed, msg.PresenterDied)):
                    self._anytime(event)
                elif isinstance(event, msg.Onset):
                    shown[event.order] = (event.onset_time, None)
                    self._onset(event, items[event.order - first], trial.trial_id)
                elif isinstance(event, msg.ImageDone):
                    shown[event.order] = (event.onset_time, event.offset_time)
                    self._image_done(event)
                elif isinstance(event, msg.TrialDone):
                    store.record_trial(trial.trial_id, event.start_time, event.end_time, event.images_shown,
                                       event.aborted, self.abort_reason if event.aborted else None)
                elif isinstance(event, msg.PresenterError):
                    self.report(f"presenter: {event.message}", trouble=True)
                elif isinstance(event, msg.RunDone):
                    if self.marker_failure is not None:
                        self._stop_for_markers()
                    return
            if time.monotonic() > deadline:
                presenter.kill()
                raise CompactRigError(f"the presenter stopped responding during trial {trial.trial_id} (no end "
                                      f"after {2 * expected + PRESENTER_STUCK_S:.0f} s); it was killed and the "
                                      "session is saved: resume it")
            self.collector.collect()
            time.sleep(0.002)

    def _charged(self, onset: float, offset: float | None) -> bool:
        """Whether the fixation break (``break_at``) falls while this image was up or in its window, or before it."""
        if self.break_at is None:
            return False
        ends = max(offset if offset is not None else float("inf"), onset + self.collector.guard.source.window[1])
        return ends > self.break_at

    def _onset(self, event: msg.Onset, item: int, trial_id: int) -> None:
        """The image is up: stored at once and the source told, so its window is counted however long it stays."""
        self.store.record_presentation(StoredPresentation(
            event.order, item, trial_id, event.image_id, event.onset_time, 0, 0, event.marker_sent, False, None))
        if self._charged(event.onset_time, None):
            self.collector.abort(event.order, self.abort_reason, self.abort_kind)
            return
        self.collector.expect(event.order, item, event.image_id, trial_id, event.onset_time)

    def _image_done(self, event: msg.ImageDone) -> None:
        self.store.finish_presentation(event.order, event.frames_shown, event.dropped_frames, event.offset_time)
        self.dropped_frames += event.dropped_frames
        limit = self.max_dropped_frames
        if self._charged(event.onset_time, event.offset_time):
            self.collector.abort(event.order, self.abort_reason, "fixation")
        elif event.aborted and self.break_at is None:
            self.collector.abort(event.order, self.abort_reason, self.abort_kind)
        elif limit is not None and event.dropped_frames > limit:
            self.collector.abort(event.order, "too many dropped frames", "dropped_frames")


def _died(event: msg.PresenterDied) -> CompactRigError:
    return CompactRigError(f"the presenter process died (exit code {event.exitcode}); the session is saved: resume it")
