"""The headless session runner: one trial at a time until the plan is complete or the user stops.

The runner only orchestrates; each part has one job: ``trial_execution`` (the presenter and the
gate), ``collection`` (the source and the trial store), ``image_queue`` (images queued during the
session), ``controls`` (pause, stop). Creating and extending the session folder is ``setup``; reading
a stored session for a watcher is ``stored``; running the runner on a thread of its own for a window
or a terminal, and accumulating what it stores, is ``controller``. Everything the runner says, its
lines for the user included, is a typed event (``events``) handed to ``on_event`` on its thread.

One trial (one fixation) at a time is sent to the presenter, so aborted presentations
(a source fault, a dropped-frame limit, Ctrl-C) go straight back into the plan. Every
presentation and response is written to the trial store the moment it arrives. A
session is resumed by running it again: its stimuli and trial store are checked against
``session.json`` first (``integrity``), presentations left without a response are settled as
aborted and their plan items shown again (complete ones never are), and the source is told what
the store holds, so it carries on where it stopped (``ResponseSource.resume_from``).
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pylsl

from compactrig.engine import __version__
from compactrig.engine.errors import CompactRigError
from compactrig.engine.files.natural_order import natural_sorted
from compactrig.plugins.gates import Gate
from compactrig.plugins.registry import make_gate, make_source, resume_source, tell_codes
from compactrig.plugins.sources.guard import GuardedSource
from compactrig.rig.presenter import protocol as msg
from compactrig.rig.presenter.client import Presenter
from compactrig.rig.presenter.refresh import RefreshCheck
from compactrig.rig.session.collection import ResponseCollector
from compactrig.rig.session.controls import CLOSING_WAIT_S, RunControls
from compactrig.rig.session.events import ImagesAdded, RefreshMeasured, SessionMessage, SessionStatus, TrialShown
from compactrig.rig.session.folder import SESSION_FILE, STIMULI_DIR, SessionLock, read_snapshot, record_refresh
from compactrig.rig.session.image_queue import ImageQueue
from compactrig.rig.session.integrity import checked_stimuli, open_session_store
from compactrig.rig.session.setup import SessionPlan, add_images_to_session, check_unit_map, session_rig
from compactrig.rig.session.stored import session_started
from compactrig.rig.session.trial_execution import TrialExecutor
from compactrig.rig.session.trial_store import TrialStore
from compactrig.rig.session.windows import adopt_window
from compactrig.stimuli.stimulus_set import StimulusSet
from compactrig.stimuli.trial_plan import Trial

STATUS_EVERY_S = 0.2
"""While waiting for responses, the status (two store queries) is reported at most this often."""
RESPONSE_GRACE_S = 10.0


class SessionRunner:
    """Runs (or resumes) the session in ``folder`` until its plan is complete or it is stopped."""

    def __init__(self, folder: Path, on_event: Callable[[object], None] | None = None,
                 controls: RunControls | None = None, images: ImageQueue | None = None) -> None:
        """``controls`` and ``images`` may be made (and used) before the runner: a controller queues images
        and stops a run that is still starting."""
        self.folder = Path(folder)
        self.on_event = on_event or (lambda event: None)
        self.snapshot = read_snapshot(self.folder)
        self.plan = SessionPlan.from_snapshot(self.snapshot, str(self.folder / SESSION_FILE))
        self.rig = session_rig(self.snapshot, str(self.folder / SESSION_FILE))
        self.controls = controls or RunControls()
        self.refresh_hz: float | None = None
        self._last_status = 0.0
        self._queue = images or ImageQueue()
        self.collector: ResponseCollector | None = None
        self.trials: TrialExecutor | None = None

    def report(self, text: str, trouble: bool = False) -> None:
        """A line for the user (``events.Report``), as an event."""
        self.on_event(SessionMessage(text, trouble))

    def queue_images(self, images: StimulusSet, repeats: int = 1) -> bool:
        """Add images to the running session's plan (any thread; taken in between trials).

        False once the runner has finished: then use ``append_to_session`` and resume.
        """
        return self._queue.put(images, repeats)

    def run(self) -> bool:
        """True when the plan is complete; False when stopped (the session stays resumable)."""
        lock = SessionLock(self.folder).acquire()
        try:
            self.snapshot = read_snapshot(self.folder)  # what the lock holder sees now
            stimulus_set = checked_stimuli(self.folder, self.snapshot)
            store = open_session_store(self.folder, self.snapshot)
        except BaseException:
            lock.release()
            raise
        presenter = guard = gate = None
        try:
            settled = store.settle_unanswered("interrupted before its response was stored")
            if settled:
                self.report(f"{settled} presentation(s) without a stored response will be shown again")
            if not self._remaining(store) and not self.controls.hold_open:
                self.report("the session's plan is already complete")
                self._summary(store)
                return True
            source = make_source(self.rig.source_name, self.rig.source_options)
            tell_codes(source, self.rig.event_codes)
            check_unit_map(source, self.plan.unit_map)
            resume_source(source, store.responses_per_image())  # carries on where the store stopped
            guard = GuardedSource(source)
            now = pylsl.local_clock()
            for lost in guard.connect(now) + guard.prepare(stimulus_set.ids, stimulus_set.pixels, now):
                self.report(f"source: {lost.missing}", trouble=True)
            for line in guard.messages():
                self.report(line, trouble=True)
            store.add_units(list(guard.units) + [u for u in self.plan.unit_map if not guard.units], declared=True)
            units = natural_sorted(store.units())
            self.on_event(session_started(self.folder, self.plan, store, stimulus_set, units))
            gate = self._gate()
            presenter = Presenter(self.rig, self._described()).start()
            self.collector = ResponseCollector(store, guard, self.plan, stimulus_set, units, self.report,
                                               self.on_event,
                                               lambda order, why, kind: presenter.send(msg.MarkAborted(order, why,
                                                                                                       kind)))
            self.trials = TrialExecutor(presenter, gate, self.rig, self.plan.max_dropped_frames, store,
                                        self.collector, self.controls, self.report)
            self.refresh_hz = presenter.wait_for(msg.Ready, 60).measured_refresh_hz
            self._check_refresh(RefreshCheck(self.refresh_hz, self.rig.refresh_hz, self.rig.pace_frames))
            self.trials.load(stimulus_set)
            self._status(store)
            return self._loop(store)
        finally:
            self._queue.close(partial(self._save_queued, store), self.report)
            if presenter is not None:
                presenter.shutdown(timeout=CLOSING_WAIT_S if self.controls.closing else 5.0)
                if self.trials is not None:
                    self.trials.store_last_codes()
            if guard is not None:
                guard.close()
            if gate is not None:
                gate.close()
            store.close()
            lock.release()

    def _check_refresh(self, check: RefreshCheck) -> None:
        """Record the measured refresh in ``session.json`` and say it; one off the rig file's is a question
        when the consumer answers one (the window: nothing is shown before the answer), else a warning."""
        record_refresh(self.folder, check)
        self.report(f"warning: {check.line()}" if check.differs else check.line(), trouble=check.differs)
        ask = check.differs and self.controls.ask_refresh
        self.on_event(RefreshMeasured(check, question=ask))
        while ask and not self.controls.stop_requested:  # stopped while asked: the loop stops at once
            try:
                go_on = self.controls.refresh_answers.get(timeout=0.05)
            except queue.Empty:
                continue
            if go_on:
                self.report("showing the images at the measured refresh, as confirmed")
                return
            raise CompactRigError(f"nothing was shown: the measured refresh ({check.measured_hz:.1f} Hz) is not the "
                                  f"rig file's ({check.rig_hz:g} Hz); set refresh_hz in the rig file and start a "
                                  "new session")

    def _loop(self, store: TrialStore) -> bool:
        assert self.collector is not None and self.trials is not None  # set up by run() before any of this
        collector, trials, controls = self.collector, self.trials, self.controls
        trial_id = int(store.meta("next_trial") or 0)
        last_shown = time.monotonic()
        while not controls.stop_requested:
            self._take_queued(store)
            self._take_windows(store)
            busy = {item for item, _ in collector.waiting.values()}
            todo = [(item, image) for item, image in self._remaining(store) if item not in busy]
            if todo:
                if not trials.wait_for_gate(lambda: self._between(store)):
                    break
                chosen = todo[:self.rig.images_per_trial]
                store.set_meta("next_trial", str(trial_id + 1))
                trials.run(Trial(trial_id, tuple(i for _, i in chosen)), [item for item, _ in chosen])
                trial_id += 1
                last_shown = time.monotonic()
                self.on_event(TrialShown(trial_id - 1, len(store.completed_items()), len(store.plan()),
                                         len(collector.waiting)))
                self._status(store)
            elif not collector.waiting and not controls.hold_open:
                self._status(store)  # the last word (the throttled ones may have been skipped)
                self._summary(store)
                return True
            elif not collector.waiting:  # plan done, held open: the next queued batch is shown as soon as it comes
                trials.watch()
                self._between(store)
                time.sleep(0.01)
            else:
                collector.collect()
                self._status(store, force=False)
                if time.monotonic() - last_shown > RESPONSE_GRACE_S + collector.guard.source.settings["timeout_s"]:
                    collector.give_up("no response before the end of the session")
                time.sleep(0.01)
        collector.finish_waiting(controls)
        self._status(store)
        self._summary(store)
        if not self._remaining(store):
            self.report("stopped with the plan complete")
            return True
        self.report(f"stopped; resume with `compactrig session resume {self.folder}`")
        return False

    def _between(self, store: TrialStore) -> None:
        """What goes on while no trial runs: queued images taken, responses collected, status told."""
        assert self.collector is not None and self.trials is not None  # set up by run() before any of this
        self._take_queued(store)
        self.collector.collect()
        self._status(store, force=False)

    def _take_queued(self, store: TrialStore) -> None:
        """Queued images into the folder, plan, presenter and source; mapped units get their predictions."""
        assert self.collector is not None and self.trials is not None  # set up by run() before any of this
        while (batch := self._queue.take()) is not None:
            images, repeats = batch
            try:
                new = add_images_to_session(self.folder, store, self.collector.stimulus_set, images, repeats)
            except CompactRigError as error:
                self.report(f"queued images not added: {error}")
                continue
            predictions: dict[str, np.ndarray] = {}
            if len(new):
                self.trials.load(new)
                predictions = self.collector.add_images(new)
            self.on_event(ImagesAdded(new.ids, predictions, len(store.plan())))
            self.report(f"queued {len(images)} image(s) x {repeats}: {len(new)} new to the session, "
                        f"{len(store.plan())} presentations planned")

    def _take_windows(self, store: TrialStore) -> None:
        """Counting windows asked for: adopted in the store, the watchers restarted from its recounts."""
        assert self.collector is not None  # set up by run() before any of this
        adopted = False
        while True:
            try:
                unit, window = self.controls.window_requests.get_nowait()
            except queue.Empty:
                break
            try:
                self.report(adopt_window(store, unit, window))
                adopted = True
            except CompactRigError as error:
                self.report(f"counting window not adopted: {error}", trouble=True)
        if adopted:
            self.collector.adopted = store.count_windows()
            self.on_event(session_started(self.folder, self.plan, store, self.collector.stimulus_set,
                                          self.collector.units, recount=True))

    def _save_queued(self, store: TrialStore, images: StimulusSet, repeats: int) -> None:
        """Images queued but not taken before the end go into the plan (the next resume shows them)."""
        add_images_to_session(self.folder, store, StimulusSet.load(self.folder / STIMULI_DIR), images, repeats)

    def _status(self, store: TrialStore, force: bool = True) -> None:
        """Tell the watcher where the session stands (unless ``force`` is off and it was told just now)."""
        now = time.monotonic()
        if not force and now - self._last_status < STATUS_EVERY_S:
            return
        self._last_status = now
        assert self.collector is not None and self.trials is not None  # set up by run() before any of this
        presenter = self.trials.presenter
        self.on_event(SessionStatus(len(store.completed_items()), len(store.plan()), self.controls.pause_requested,
                                    presenter.alive, self.refresh_hz, self.trials.dropped_frames,
                                    self.collector.guard.connected, len(store.left_out(self.plan.max_missing))))

    def _remaining(self, store: TrialStore) -> list[tuple[int, str]]:
        return store.remaining(self.plan.max_missing)

    def _summary(self, store: TrialStore) -> None:
        """The run's closing lines: items left out after their response went missing ``max_missing`` times,
        named, then what the store holds and where (the last trial line was said before its responses came)."""
        left = store.left_out(self.plan.max_missing)
        if left:
            names = ", ".join(sorted({image for _, image in left})[:10])
            self.report(f"{len(left)} plan item(s) left out after {self.plan.max_missing} missing responses each "
                        f"(images: {names}); check the source, then raise max_missing and resume to show them again")
        shown = store.presentations()
        aborted = sum(1 for p in shown if p.aborted)
        complete, planned = len(store.completed_items()), len(store.plan())
        answered = len(store.response_windows())
        self.report(f"session {'complete' if complete == planned else 'not complete'}: {complete}/{planned} planned "
                    f"presentations complete, {aborted} aborted; {len(shown)} presentations and {answered} "
                    f"responses stored in {self.folder}")

    def _described(self) -> dict[str, str]:
        """What the marker stream says it belongs to."""
        return {"session": str(self.folder.resolve()), "session_created": self.snapshot.get("created", ""),
                "stimulus_set": self.plan.stimuli, "stimulus_count": str(len(self.snapshot["stimulus_ids"])),
                "software": f"CompactRig {__version__}"}

    def _gate(self) -> Gate:
        gate = make_gate(self.rig.gate_name, self.rig.gate_options)
        gate.use_screen(self.rig)
        gate.connect()
        return gate
