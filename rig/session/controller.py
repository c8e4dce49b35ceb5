"""One recording session at a time, for a window or a terminal, its runner on a thread of its own.

``SessionController`` starts a session (creates its folder from a plan, then runs it), resumes a
folder, pauses, aborts (after the image on screen), queues images, keeps a finished plan open for
queued images, and reads a stored session back to be looked at. Whatever the runner says comes as
typed events (``events``), its lines for the user as ``SessionMessage`` marked ``trouble`` by whoever
says them; they wait in a thread-safe buffer until the consumer takes them on its own thread with
``take_events`` (the window on its timer, a terminal in ``follow``). Taking them feeds the one
``LiveSession`` (every response once) and adds the summary line after each trial, so the consumer
reads the live session on its own thread, without locks. The methods are the consumer's to call,
from its one thread.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from compactrig.engine.crash_log import report_unexpected
from compactrig.engine.errors import CompactRigError
from compactrig.rig.presenter.rig import RigConfig
from compactrig.rig.session.controls import RunControls, ctrl_c_stops
from compactrig.rig.session.events import (
    SessionEnded,
    SessionMessage,
    SessionStatus,
    StoredSessionShown,
    TrialShown,
)
from compactrig.rig.session.folder import SESSION_FILE, read_snapshot
from compactrig.rig.session.image_queue import ImageQueue
from compactrig.rig.session.live import LiveSession
from compactrig.rig.session.runner import SessionRunner
from compactrig.rig.session.setup import SessionPlan, append_to_session, default_unit_map, start_session
from compactrig.rig.session.stored import stored_session
from compactrig.rig.session.windows import adopt_in_folder
from compactrig.stimuli.stimulus_set import StimulusSet

TICK_S = 0.04
"""How often a terminal takes the events (as the window's 25 Hz timer)."""


@dataclass(frozen=True)
class _StoredRead:
    """A stored session read on the reader's thread, shown only if nothing was started or opened since."""

    generation: int
    events: tuple[object, ...]


class SessionController:
    """The session being run or looked at, and the one live accumulator of its responses."""

    def __init__(self) -> None:
        self.live = LiveSession()
        self.folder: Path | None = None
        """The session running, or the last one run or opened (queued images and Resume go there)."""
        self.status: SessionStatus | None = None
        """The run's last status (None until its presenter is up)."""
        self.controls = RunControls()
        """The current run's flags (each run gets fresh ones)."""
        self._events: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._images: ImageQueue | None = None
        self._thread: threading.Thread | None = None
        self._reader: threading.Thread | None = None
        self._running = False
        self._complete = False
        self._failure: CompactRigError | None = None
        self._generation = 0

    # what the consumer asks ------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """From ``start`` or ``resume`` until the consumer has taken the run's ``SessionEnded``."""
        return self._running

    @property
    def paused(self) -> bool:
        return self._running and self.controls.pause_requested

    def start(self, folder: Path, plan: SessionPlan, rig: RigConfig, rig_path: Path | None = None,
              hold_open: bool = False, ask_refresh: bool = False) -> None:
        """Create the session in ``folder`` from ``plan`` and ``rig`` (on the run's thread: the stimuli are
        copied and hashed), then run it. A plan without a unit map maps the units a simulated source knows
        to their neurons. ``ask_refresh``: a measured refresh off the rig file's waits for ``answer_refresh``
        (a ``RefreshMeasured`` with ``question`` says so); without it the run warns and goes on."""
        plan = replace(plan, unit_map=dict(plan.unit_map))

        def create() -> None:
            if not plan.unit_map:
                plan.unit_map, plan.bank = default_unit_map(rig.source_name, rig.source_options)
                if plan.unit_map:
                    self._say("units mapped to their simulated neurons: "
                              f"{', '.join(f'{u}={n}' for u, n in plan.unit_map.items())}")
            start_session(folder, plan, rig_path, rig)
        self._run(Path(folder), create, hold_open, ask_refresh)

    def resume(self, folder: Path, hold_open: bool = False, ask_refresh: bool = False) -> None:
        """Continue a stopped or crashed session (its plan and rig are its own); ``ask_refresh`` as ``start``'s."""
        self._refuse_if_running()
        read_snapshot(Path(folder))  # not a session's folder: one line now
        self._run(Path(folder), None, hold_open, ask_refresh)

    def answer_refresh(self, go_on: bool) -> None:
        """The answer to a ``RefreshMeasured`` question: show the images at the measured refresh, or end the
        run before anything is shown."""
        self.controls.refresh_answers.put(go_on)

    def set_paused(self, paused: bool) -> None:
        """Pause after the trial on screen (responses still due keep arriving), or go on."""
        if self._running:
            self.controls.pause_requested = paused

    def set_hold_open(self, hold_open: bool) -> None:
        """Closed loop: when the plan is done, wait for queued images instead of ending (until aborted)."""
        self.controls.hold_open = hold_open

    def abort(self) -> None:
        """Stop after the image on screen: its trial is cut short and its images planned again; a session
        still being created is created, not run."""
        self.controls.stop_requested = True

    def queue_images(self, images: StimulusSet, repeats: int) -> str:
        """Into the running session's plan (taken between trials), or else into the last session's (shown
        when it is resumed); returns what was done, in one line."""
        if self._running and self._images is not None and self._images.put(images, repeats):
            return f"{len(images)} image(s) x {repeats} queued into the running session"
        if self.folder is None:
            raise CompactRigError("Start a session first; queued images go into its plan")
        append_to_session(self.folder, images, repeats)
        return f"{len(images)} image(s) x {repeats} added to the plan of {self.folder}; resume it to show them"

    def adopt_window(self, unit: str | None, window: tuple[float, float] | None) -> str:
        """Count ``unit`` (None: every unit) in ``window`` (s from the onset; None: the source's own) from the
        spikes kept: in the running session between trials, else in the session shown, which is read again;
        the live session then holds the recounts (``windows``). Returns what was done, in one line."""
        if self._running:
            self.controls.window_requests.put((unit, window))
            return "counting window asked for: adopted between trials"
        if self.folder is None:
            raise CompactRigError("Open or start a session first; a counting window counts its spikes")
        line = adopt_in_folder(self.folder, unit, window)
        self.open_stored(self.folder)
        return line

    def open_stored(self, folder: Path) -> None:
        """Read a session that is not running, to be looked at: on a thread (its mapped units' predictions
        take a moment), then its ``SessionStarted`` and a ``StoredSessionShown`` come through
        ``take_events``. Queued images and Resume then go to it."""
        folder = Path(folder)
        if self._running:
            raise CompactRigError("A session is running: stop it before looking at another")
        if not (folder / SESSION_FILE).is_file():
            raise CompactRigError(f"{folder}: not a session folder (no {SESSION_FILE}); choose a folder a "
                                  "session wrote")
        self.folder = folder
        self._generation += 1
        generation = self._generation

        def read() -> None:
            try:
                started = stored_session(folder)
                told: tuple[object, ...] = (started, StoredSessionShown(str(folder), len(started.stored)))
            except CompactRigError as error:
                told = (SessionMessage(str(error), trouble=True),)
            except Exception as error:  # noqa: BLE001 - a defect: one line for the user, the traceback logged
                told = (SessionMessage(report_unexpected(f"reading {folder}", error), trouble=True),)
            self._events.put(_StoredRead(generation, told))

        self._reader = threading.Thread(target=read, name="stored-session", daemon=True)
        self._reader.start()

    def busy(self) -> bool:
        """A run or a stored read is under way, or their events are still to be taken."""
        return self._running or (self._reader is not None and self._reader.is_alive()) or not self._events.empty()

    def take_events(self) -> list[object]:
        """Everything told since the last call, in order, after feeding it to the live session; a summary line
        (``SessionMessage``) follows each ``TrialShown``."""
        drained: list[object] = []
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            if isinstance(event, _StoredRead):
                if event.generation == self._generation:  # nothing started or opened since
                    drained += event.events
            else:
                drained.append(event)
        taken: list[object] = []
        pending: list[object] = []
        for event in drained:
            taken.append(event)
            pending.append(event)
            if isinstance(event, TrialShown):
                self.live.take_events(pending)
                pending = []
                taken.append(SessionMessage(self._trial_line(event)))
            elif isinstance(event, SessionStatus):
                self.status = event
            elif isinstance(event, SessionEnded):
                self._running = False
        self.live.take_events(pending)
        return taken

    def close(self) -> None:
        """Stop, and wait until the presenter is shut down and the store closed (the window is closing): waits
        for due responses and for the presenter are capped, a hung presenter is killed."""
        self.controls.closing = True
        self.controls.stop_requested = True
        for thread in (self._thread, self._reader):
            if thread is not None:
                thread.join()

    def follow(self, on_events: Callable[[list[object]], None]) -> bool:
        """A terminal's consumer: the events every ``TICK_S`` to ``on_events`` until the run ends; the first
        Ctrl-C stops after the image on screen, the second caps the waits. True when the plan is complete;
        a run that failed raises its error here, in one line."""
        try:
            with ctrl_c_stops(self.controls, self._say):
                while self._running:
                    time.sleep(TICK_S)
                    on_events(self.take_events())
        finally:
            if self._running:  # ``on_events`` failed: the session stops, nothing outlives the caller
                self.close()
        if self._failure is not None:
            raise self._failure
        return self._complete

    # the run's thread --------------------------------------------------------------------------
    def _refuse_if_running(self) -> None:
        if self._running:
            raise CompactRigError("A session is running: stop it first")

    def _run(self, folder: Path, create: Callable[[], None] | None, hold_open: bool, ask_refresh: bool) -> None:
        self._refuse_if_running()
        if self._thread is not None:
            self._thread.join()  # the last run has told its end: its thread is returning
        self.controls = controls = RunControls(hold_open=hold_open, ask_refresh=ask_refresh)
        self._images = images = ImageQueue()
        self.folder, self.status, self._complete, self._failure = folder, None, False, None
        self._generation += 1  # a stored read still under way is not shown over this session
        self._running = True

        def run() -> None:
            complete, problem = False, None
            try:
                if create is not None:
                    create()
                if not controls.stop_requested:  # aborted while the session was being created: it is there
                    complete = SessionRunner(folder, self._events.put, controls, images).run()
            except CompactRigError as error:
                problem, self._failure = str(error), error
            except Exception as error:  # noqa: BLE001 - a defect: one line for the user, the traceback logged
                problem = report_unexpected("the session", error)
                self._failure = CompactRigError(problem)
            finally:  # what no runner took (it saves its own leftovers when it gets that far) goes into the plan
                images.close(partial(append_to_session, folder), self._say)
                self._complete = complete
                self._events.put(SessionEnded(str(folder), complete, problem))

        self._thread = threading.Thread(target=run, name="session", daemon=True)
        self._thread.start()

    def _say(self, text: str, trouble: bool = False) -> None:
        self._events.put(SessionMessage(text, trouble))

    def _trial_line(self, shown: TrialShown) -> str:
        """After each trial: where the plan stands and every mapped unit's r, from the live session."""
        fit, summary = self.live.fit, self.live.summary
        rs = " ".join(f"{u} r={r:.2f}" for u, r in zip(fit.units, summary.r)) if fit and summary else ""
        return (f"trial {shown.trial_id}: {shown.done}/{shown.planned} presentations complete, "
                f"{shown.waiting} awaiting responses {rs}").rstrip()


def print_messages(events: list[object]) -> None:
    """A terminal's view of a session: its lines for the user."""
    for event in events:
        if isinstance(event, SessionMessage):
            print(event.text, flush=True)
