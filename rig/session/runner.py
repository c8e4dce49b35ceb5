"""The headless session runner: present through the presenter process, collect through a source, store.

Creating and extending the session folder is ``setup``; reading a stored session for a watcher is
``stored``; the per-image sums of the mapped units are ``fits``.

One trial (one fixation) at a time is sent to the presenter, so aborted presentations
(a source fault, a dropped-frame limit, Ctrl-C) go straight back into the plan. Every
presentation and response is written to the trial store the moment it arrives. A
session is resumed by running it again: presentations left without a response are
settled as aborted and their plan items shown again; complete ones never are.
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from pathlib import Path
from typing import Callable

import pylsl

from compactrig.engine import __version__
from compactrig.engine.errors import CompactRigError
from compactrig.engine.live_fit import UnitFit
from compactrig.engine.natural_order import natural_sorted
from compactrig.plugins.gates import Gate
from compactrig.plugins.registry import GATES, load_plugin, make_source
from compactrig.plugins.sources.base import Presentation
from compactrig.plugins.sources.guard import GuardedSource
from compactrig.rig.presenter import protocol as msg
from compactrig.rig.presenter.client import Presenter
from compactrig.rig.presenter.rig import parse_rig
from compactrig.rig.session.events import ImagesAdded, ResponseStored, SessionStatus, UnitsDiscovered
from compactrig.rig.session.fits import fits_from_store, mapped_predictions
from compactrig.rig.session.folder import STIMULI_DIR, STORE_FILE, SessionLock, read_snapshot
from compactrig.rig.session.setup import SessionPlan, add_images_to_session, check_unit_map
from compactrig.rig.session.store import MISSING, StoredPresentation, TrialStore
from compactrig.rig.session.stored import session_started
from compactrig.stimuli.stimulus_set import StimulusSet
from compactrig.stimuli.trial_plan import Trial

STATUS_EVERY_S = 0.2
"""While waiting for responses, the status (two store queries) is reported at most this often."""
RESPONSE_GRACE_S = 10.0
CLOSING_WAIT_S = 0.5
"""When the window closes: the longest wait for due responses, and for the presenter before it is killed."""
PRESENTER_STUCK_S = 5.0
"""A trial that has not ended this long after it should have (or after an abort) means the presenter hangs."""


class SessionRunner:
    """Runs (or resumes) the session in ``folder`` until its plan is complete or it is stopped."""

    def __init__(self, folder: Path, report: Callable[[str], None] = print,
                 on_event: Callable[[object], None] | None = None) -> None:
        self.folder = Path(folder)
        self.report = report
        self.on_event = on_event or (lambda event: None)
        self.snapshot = read_snapshot(self.folder)
        self.plan = SessionPlan(**self.snapshot["plan"])
        self.rig = parse_rig(self.snapshot["rig"], f"{self.folder}/session.json")
        self.stop_requested = False
        self.closing = False
        """Set with ``stop_requested`` when the window closes: wait at most a second for due responses
        and for the presenter (then it is killed), so closing never hangs."""
        self.pause_requested = False
        self.hold_open = False
        """Closed loop: when the plan is done, wait for queued images instead of ending (until stopped)."""
        self.refresh_hz: float | None = None
        self.dropped_frames = 0
        self._last_status = 0.0
        self._queued: queue.SimpleQueue[tuple[StimulusSet, int]] = queue.SimpleQueue()
        self._queue_lock = threading.Lock()
        self._queue_closed = False
        self.stimulus_set: StimulusSet | None = None
        self.waiting: dict[int, tuple[int, str]] = {}
        """Presentation -> (plan item, image id): shown, response due."""
        self._aborted: set[int] = set()
        self.units: list[str] = []
        """Every unit of the session (as in the store), kept here so a response needs no store query."""

    def queue_images(self, images: StimulusSet, repeats: int = 1) -> bool:
        """Add images to the running session's plan (any thread; taken in between trials).

        False once the runner has finished: then use ``append_to_session`` and resume.
        """
        with self._queue_lock:
            if self._queue_closed:
                return False
            self._queued.put((images, repeats))
            return True

    def _close_queue(self, store: TrialStore) -> None:
        """No more queueing; what was queued but not yet taken goes into the plan for the next resume."""
        with self._queue_lock:
            self._queue_closed = True
        while not self._queued.empty():
            images, repeats = self._queued.get_nowait()
            try:
                add_images_to_session(self.folder, store, StimulusSet.load(self.folder / STIMULI_DIR), images, repeats)
                self.report(f"queued {len(images)} image(s) x {repeats} saved into the plan; resume to show them")
            except CompactRigError as error:
                self.report(f"queued images not added: {error}")

    def _take_queued(self, store: TrialStore, guard: GuardedSource, presenter: Presenter,
                     fits: dict[str, UnitFit]) -> None:
        """Queued images into the folder, plan, presenter and source; mapped units get their predictions."""
        while True:
            try:
                images, repeats = self._queued.get_nowait()
            except queue.Empty:
                return
            try:
                new = add_images_to_session(self.folder, store, self.stimulus_set, images, repeats)
            except CompactRigError as error:
                self.report(f"queued images not added: {error}")
                continue
            if len(new):
                self.stimulus_set = self.stimulus_set.merged(new)
                presenter.send(msg.LoadStimuli(new.ids, new.pixels))
                presenter.wait_for(msg.StimuliLoaded, 60)
                for lost in guard.prepare(new.ids, new.pixels, pylsl.local_clock()):
                    self.report(f"source: {lost.missing}")
            mapping = {u: self.plan.unit_map[u] for u in fits}
            predictions = mapped_predictions(self.plan.bank, mapping, new) if len(new) else {}
            for unit, values in predictions.items():
                fits[unit].add_images(dict(zip(new.ids, values)))
            self.on_event(ImagesAdded(new.ids, predictions, len(store.plan())))
            self.report(f"queued {len(images)} image(s) x {repeats}: {len(new)} new to the session, "
                        f"{len(store.plan())} presentations planned")

    def _fits(self, store: TrialStore, stimulus_set: StimulusSet, units: list[str]) -> dict[str, UnitFit]:
        """Mapped units' fits from what is stored; watchers get the same start (``SessionStarted``)."""
        started, presentations, responses = session_started(self.folder, self.plan, store, stimulus_set, units)
        self.on_event(started)
        return fits_from_store(started.predictions, stimulus_set.ids, presentations, responses)

    def _status(self, store: TrialStore, guard: GuardedSource, presenter: Presenter | None,
                force: bool = True) -> None:
        """Tell the watcher where the session stands (unless ``force`` is off and it was told just now)."""
        now = time.monotonic()
        if not force and now - self._last_status < STATUS_EVERY_S:
            return
        self._last_status = now
        self.on_event(SessionStatus(len(store.completed_items()), len(store.plan()), self.pause_requested,
                                    presenter is not None and presenter.alive, self.refresh_hz,
                                    self.dropped_frames, guard.connected))

    def _remaining(self, store: TrialStore) -> list[tuple[int, str]]:
        return store.remaining(self.plan.max_missing)

    def run(self) -> bool:
        """True when the plan is complete; False when stopped (the session stays resumable)."""
        lock = SessionLock(self.folder).acquire()
        store = TrialStore(self.folder / STORE_FILE)
        presenter = guard = gate = None
        on_main_thread = threading.current_thread() is threading.main_thread()
        if on_main_thread:  # Ctrl-C stops cleanly at the command line; the window stops through stop_requested
            previous = signal.signal(signal.SIGINT, self._interrupted)
        try:
            settled = store.settle_unanswered("interrupted before its response was stored")
            if settled:
                self.report(f"{settled} presentation(s) without a stored response will be shown again")
            if not self._remaining(store) and not self.hold_open:
                self.report("the session's plan is already complete")
                self._summary(store)
                return True
            stimulus_set = self.stimulus_set = StimulusSet.load(self.folder / STIMULI_DIR)
            source = make_source(self.plan.source, self.plan.source_options)
            check_unit_map(source, self.plan.unit_map)
            guard = GuardedSource(source)
            now = pylsl.local_clock()
            for lost in guard.connect(now) + guard.prepare(stimulus_set.ids, stimulus_set.pixels, now):
                self.report(f"source: {lost.missing}")
            for line in guard.messages():
                self.report(line)
            store.add_units(list(guard.units) + [u for u in self.plan.unit_map if not guard.units], declared=True)
            self.units = natural_sorted(store.units())
            fits = self._fits(store, stimulus_set, self.units)
            gate = self._gate()
            presenter = Presenter(self.rig, self._described()).start()
            self.refresh_hz = presenter.wait_for(msg.Ready, 60).measured_refresh_hz
            presenter.send(msg.LoadStimuli(stimulus_set.ids, stimulus_set.pixels))
            presenter.wait_for(msg.StimuliLoaded, 60)
            self._status(store, guard, presenter)
            return self._loop(store, guard, presenter, fits, gate)
        finally:
            self._close_queue(store)
            if on_main_thread:
                signal.signal(signal.SIGINT, previous)
            if presenter is not None:
                presenter.shutdown(timeout=CLOSING_WAIT_S if self.closing else 5.0)
            if guard is not None:
                guard.close()
            if gate is not None:
                gate.close()
            store.close()
            lock.release()

    def _interrupted(self, *_: object) -> None:
        if not self.stop_requested:
            self.report("Ctrl-C: stopping after the image on screen (press again to leave at once)")
            self.stop_requested = True
        else:
            self.closing = True

    def _described(self) -> dict[str, str]:
        """What the marker stream says it belongs to."""
        return {"session": str(self.folder.resolve()), "session_created": self.snapshot.get("created", ""),
                "stimulus_set": self.plan.stimuli, "stimulus_count": str(len(self.snapshot["stimulus_ids"])),
                "software": f"CompactRig {__version__}"}

    def _gate(self) -> Gate:
        gate = load_plugin(GATES, self.rig.gate_name)(**self.rig.gate_options)
        gate.connect()
        return gate

    def _wait_for_gate(self, gate: Gate, store: TrialStore, guard: GuardedSource, presenter: Presenter,
                       fits: dict[str, UnitFit]) -> bool:
        """Keep collecting (and the presenter answering) while paused or until the gate lets a trial start."""
        reported_pause = False
        while self.pause_requested or not gate.may_start(pylsl.local_clock()):
            if self.stop_requested:
                return False
            if self.pause_requested != reported_pause:
                reported_pause = self.pause_requested
                self.report("paused; resume to go on" if reported_pause else "resumed")
                self._status(store, guard, presenter)
            _watch(presenter)
            self._take_queued(store, guard, presenter, fits)
            self._collect(store, guard, presenter, fits)
            self._status(store, guard, presenter, force=False)
            time.sleep(0.005)
        return True

    def _loop(self, store: TrialStore, guard: GuardedSource, presenter: Presenter,
              fits: dict[str, UnitFit], gate: Gate) -> bool:
        trial_id = int(store.meta("next_trial") or 0)
        last_shown = time.monotonic()
        while not self.stop_requested:
            self._take_queued(store, guard, presenter, fits)
            busy = {item for item, _ in self.waiting.values()}
            todo = [(item, image) for item, image in self._remaining(store) if item not in busy]
            if todo:
                if not self._wait_for_gate(gate, store, guard, presenter, fits):
                    break
                chosen = todo[:self.rig.images_per_trial]
                store.set_meta("next_trial", str(trial_id + 1))
                self._trial(store, guard, presenter, fits, gate, Trial(trial_id, tuple(i for _, i in chosen)),
                            [item for item, _ in chosen])
                trial_id += 1
                last_shown = time.monotonic()
                done = len(store.completed_items())
                rs = " ".join(f"{u} r={f.summary(n_boot=0).r:.2f}" for u, f in fits.items())
                self.report(f"trial {trial_id - 1}: {done}/{len(store.plan())} presentations complete, "
                            f"{len(self.waiting)} awaiting responses {rs}".rstrip())
                self._status(store, guard, presenter)
            elif not self.waiting and not self.hold_open:
                self._status(store, guard, presenter)  # the last word (the throttled ones may have been skipped)
                self._summary(store)
                return True
            elif not self.waiting:  # plan done, held open: the next queued batch is shown as soon as it comes
                self._idle(store, guard, presenter, fits)
            else:
                self._collect(store, guard, presenter, fits)
                self._status(store, guard, presenter, force=False)
                if time.monotonic() - last_shown > RESPONSE_GRACE_S + guard.source.settings["timeout_s"]:
                    for order in list(self.waiting):
                        self._abort(store, guard, presenter, order, "no response before the end of the session")
                time.sleep(0.01)
        self._finish_waiting(store, guard, presenter, fits)
        self._status(store, guard, presenter)
        self._summary(store)
        if not self._remaining(store):
            self.report("stopped with the plan complete")
            return True
        self.report(f"stopped; resume with `compactrig session resume {self.folder}`")
        return False

    def _summary(self, store: TrialStore) -> None:
        """Items left out after their response went missing ``max_missing`` times, named for the user."""
        left = store.left_out(self.plan.max_missing)
        if left:
            names = ", ".join(sorted({image for _, image in left})[:10])
            self.report(f"{len(left)} plan item(s) left out after {self.plan.max_missing} missing responses each "
                        f"(images: {names}); check the source, then raise max_missing and resume to show them again")

    def _idle(self, store: TrialStore, guard: GuardedSource, presenter: Presenter, fits: dict[str, UnitFit]) -> None:
        """One turn of waiting for queued images: watch the presenter, take the queue, report."""
        _watch(presenter)
        self._take_queued(store, guard, presenter, fits)
        self._status(store, guard, presenter, force=False)
        time.sleep(0.01)

    def _finish_waiting(self, store: TrialStore, guard: GuardedSource, presenter: Presenter,
                        fits: dict[str, UnitFit]) -> None:
        """After a stop, keep the responses still due for images already shown (up to the source's timeout;
        at most ``CLOSING_WAIT_S`` when the window is closing)."""
        source = guard.source
        deadline = time.monotonic() + source.window[1] + source.settings["timeout_s"]
        while self.waiting and time.monotonic() < deadline:
            if self.closing:
                deadline = min(deadline, time.monotonic() + CLOSING_WAIT_S)
            self._collect(store, guard, presenter, fits)
            time.sleep(0.01)

    def _abort(self, store: TrialStore, guard: GuardedSource, presenter: Presenter, order: int, reason: str,
               kind: str = MISSING) -> None:
        """Presentation ``order`` does not count: stored as aborted with why, an ``abort`` marker sent,
        the source told to forget it; its plan item is shown again."""
        if order in self._aborted:
            return
        self._aborted.add(order)
        store.mark_aborted(order, reason, kind)
        presenter.send(msg.MarkAborted(order, reason))
        guard.cancel(order)
        self.waiting.pop(order, None)

    def _trial(self, store: TrialStore, guard: GuardedSource, presenter: Presenter, fits: dict[str, UnitFit],
               gate: Gate, trial: Trial, items: list[int]) -> None:
        """Present one trial, storing each onset at its flip, until the presenter says it is done.

        A fixation break at time t (the gate's own time stamp) aborts every presentation whose image
        was up at t or whose counting window contains t, and every later one; earlier ones count.
        """
        first = store.reserve_orders(len(trial.image_ids))
        since = pylsl.local_clock()
        presenter.send(msg.RunTrials([trial], first_order=first))
        shown: dict[int, tuple[float, float | None]] = {}  # order -> (onset, offset) in this trial
        self.break_at: float | None = None
        abort_sent_at: float | None = None
        self.abort_reason, self.abort_kind = "stopped by the user", "stopped"
        frame_s = 1.0 / self.rig.refresh_hz
        expected = len(trial.image_ids) * (self.rig.frames_on + self.rig.frames_off) * frame_s + self.rig.inter_trial_s
        deadline = time.monotonic() + 2 * expected + PRESENTER_STUCK_S
        while True:
            now = pylsl.local_clock()
            if abort_sent_at is None:
                broke = gate.break_time(since, now)
                if broke is not None:
                    self.break_at, self.abort_reason, self.abort_kind = broke, gate.break_reason, "fixation"
                    for order, (onset, offset) in shown.items():
                        if self._charged(onset, offset, guard):
                            self._abort(store, guard, presenter, order, self.abort_reason, "fixation")
                if broke is not None or self.stop_requested:
                    presenter.send(msg.Abort())
                    abort_sent_at = time.monotonic()
                    deadline = min(deadline, abort_sent_at + (CLOSING_WAIT_S if self.closing else PRESENTER_STUCK_S))
            elif self.closing:
                deadline = min(deadline, abort_sent_at + CLOSING_WAIT_S)
            for event in presenter.poll():
                if isinstance(event, msg.Onset):
                    shown[event.order] = (event.onset_time, None)
                    self._store_onset(store, guard, presenter, event, items[event.order - first], trial.trial_id)
                elif isinstance(event, msg.ImageDone):
                    shown[event.order] = (event.onset_time, event.offset_time)
                    self._image_done(store, guard, presenter, event)
                elif isinstance(event, msg.TrialDone):
                    store.record_trial(trial.trial_id, event.start_time, event.end_time, event.images_shown,
                                       event.aborted, self.abort_reason if event.aborted else None)
                elif isinstance(event, msg.PresenterError):
                    self.report(f"presenter: {event.message}")
                elif isinstance(event, msg.PresenterDied):
                    raise CompactRigError(f"the presenter process died (exit code {event.exitcode}); "
                                          "the session is saved: resume it")
                elif isinstance(event, msg.RunDone):
                    return
            if time.monotonic() > deadline:
                raise CompactRigError(f"the presenter stopped responding during trial {trial.trial_id} (no end "
                                      f"after {2 * expected + PRESENTER_STUCK_S:.0f} s); it was shut down and the "
                                      "session is saved: resume it")
            self._collect(store, guard, presenter, fits)
            time.sleep(0.002)

    def _charged(self, onset: float, offset: float | None, guard: GuardedSource) -> bool:
        """Whether the fixation break (``break_at``) falls while this image was up or in its window, or before it."""
        if self.break_at is None:
            return False
        ends = max(offset if offset is not None else float("inf"), onset + guard.source.window[1])
        return ends > self.break_at

    def _store_onset(self, store: TrialStore, guard: GuardedSource, presenter: Presenter, event: msg.Onset,
                     item: int, trial_id: int) -> None:
        """The image is up: stored at once and the source told, so its window is counted however long it stays."""
        store.record_presentation(StoredPresentation(
            event.order, item, trial_id, event.image_id, event.onset_time, 0, 0, event.marker_sent, False, None))
        if self._charged(event.onset_time, None, guard):
            self._abort(store, guard, presenter, event.order, self.abort_reason, self.abort_kind)
            return
        self.waiting[event.order] = (item, event.image_id)
        for lost in guard.submit(Presentation(event.order, trial_id, event.image_id, event.onset_time),
                                 pylsl.local_clock()):
            self._abort(store, guard, presenter, lost.order, f"source: {lost.missing}")

    def _image_done(self, store: TrialStore, guard: GuardedSource, presenter: Presenter,
                    event: msg.ImageDone) -> None:
        store.finish_presentation(event.order, event.frames_shown, event.dropped_frames, event.offset_time)
        self.dropped_frames += event.dropped_frames
        limit = self.plan.max_dropped_frames
        if self._charged(event.onset_time, event.offset_time, guard):
            self._abort(store, guard, presenter, event.order, self.abort_reason, "fixation")
        elif event.aborted and self.break_at is None:
            self._abort(store, guard, presenter, event.order, self.abort_reason, self.abort_kind)
        elif limit is not None and event.dropped_frames > limit:
            self._abort(store, guard, presenter, event.order, "too many dropped frames", "dropped_frames")

    def _collect(self, store: TrialStore, guard: GuardedSource, presenter: Presenter,
                 fits: dict[str, UnitFit]) -> None:
        """Store what the source delivered; a missing response aborts its presentation (back in the plan).

        Every known unit gets a count (0 when it did not fire); a unit first heard from now is added to
        the session, with 0 for every response already stored.
        """
        for response in guard.collect(pylsl.local_clock()):
            entry = self.waiting.get(response.order)
            if entry is None:
                continue
            if response.counts is None:
                self._abort(store, guard, presenter, response.order, f"source: {response.missing}")
                continue
            del self.waiting[response.order]
            heard = [unit for unit in response.counts if unit not in self.units]  # rare: no store query otherwise
            if heard:
                new = store.add_units(heard)
                self.units = natural_sorted(self.units + new)
                self._units_discovered(store, heard, fits)
            counts = {unit: 0.0 for unit in self.units} | {u: float(c) for u, c in response.counts.items()}
            store.record_response(response.order, counts, response.window)
            self.on_event(ResponseStored(entry[1], dict(counts)))
            for unit, count in counts.items():
                if unit in fits:
                    fits[unit].add(entry[1], count)
        for line in guard.messages():
            self.report(line)

    def _units_discovered(self, store: TrialStore, units: list[str], fits: dict[str, UnitFit]) -> None:
        mapping = {u: self.plan.unit_map[u] for u in units if u in self.plan.unit_map}
        if mapping:
            predictions = mapped_predictions(self.plan.bank, mapping, self.stimulus_set)
            fits.update(fits_from_store(predictions, self.stimulus_set.ids, store.presentations(), store.responses()))
        self.report(f"new unit(s) heard from: {', '.join(units)} (0 counted for the responses already stored)")
        self.on_event(UnitsDiscovered(list(units)))


def _watch(presenter: Presenter) -> None:
    """Drain the presenter's events between trials; its death stops the session (which stays resumable)."""
    for event in presenter.poll():
        if isinstance(event, msg.PresenterDied):
            raise CompactRigError(f"the presenter process died (exit code {event.exitcode}); "
                                  "the session is saved: resume it")
