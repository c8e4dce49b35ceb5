"""A session run with its closed loop, headless: what ``compactrig loop run`` and ``session resume`` run.

The session runner keeps the main thread (so Ctrl-C stops it after the image on screen); the loop
lives on a thread of its own, which feeds the runner's events to the ``LoopController`` every
``TICK_S``, ends its jobs (``ThreadJobs``) and steps the ``Rounds``. Every readout fit is stored in
the session folder as it is made (by the controller); what happens is printed, one line each.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from compactrig.engine.errors import CompactRigError
from compactrig.engine.models.bank import load_bank
from compactrig.rig.loop.controller import LoopController
from compactrig.rig.loop.events import JobStarted, LoopMessage, ReadoutsFitted
from compactrig.rig.loop.jobs import LoopJob, ThreadJobs
from compactrig.rig.loop.loop_plan import LOOP_DIR, LOOP_FILE, read_loop_plan
from compactrig.rig.loop.rounds import Rounds
from compactrig.rig.session.runner import SessionRunner

TICK_S = 0.04
"""How often the loop thread takes the runner's events (as the window's 25 Hz timer)."""
ERROR_LOG = "errors.log"


class ProgressLines:
    """A job's progress as a line at each quarter of each phase, the phase named (the terminal is shared with
    the runner's lines)."""

    def __init__(self, report: Callable[[str], None]) -> None:
        self.report = report
        self._said: dict[int, tuple[str, int]] = {}

    def __call__(self, job: LoopJob, done: int, total: int | None, phase: str = "") -> None:
        if job.kind == "refit" or total is None or total <= 0:
            return
        quarter = 4 * done // total
        said_phase, said = self._said.get(id(job), (phase, 0))
        if phase != said_phase or quarter > said:
            self._said[id(job)] = (phase, quarter)
            self.report(f"{job.label} {phase + ' ' if phase else ''}{done}/{total}")


def run_session_loop(folder: Path, report: Callable[[str], None] = print) -> bool:
    """Run (or resume) the session in ``folder`` with the loop ``loop.json`` describes; True when every
    round is done and answered, False when stopped (resume it with ``compactrig session resume``)."""
    folder = Path(folder)
    plan = read_loop_plan(folder)
    if plan is None:
        raise CompactRigError(f"{folder}: no loop.json; this session has no closed loop (resume it with "
                              "`compactrig session resume`)")
    events: queue.SimpleQueue[object] = queue.SimpleQueue()
    runner = SessionRunner(folder, report=report, on_event=events.put)
    runner.controls.hold_open = True  # the plan done, the session waits for the next round

    def unexpected(what: str, text: str) -> None:
        (folder / LOOP_DIR).mkdir(exist_ok=True)
        with (folder / LOOP_DIR / ERROR_LOG).open("a") as log:
            log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {what}\n{text}\n")
        report(f"{what}: an unexpected error; the details are in {folder / LOOP_DIR / ERROR_LOG}")

    jobs = ThreadJobs(ProgressLines(report), lambda job, text: unexpected(job.label, text))
    controller = LoopController(jobs.start, runner.queue_images, plan.refit_every)
    controller.set_bank(load_bank(plan.bank))
    pool_problems: list[str] = []
    if plan.pool is not None:
        controller.subscribe(lambda event: pool_problems.append(event.text) if isinstance(event, LoopMessage) else None)
        if not controller.set_natural(plan.pool):
            raise CompactRigError(f"the loop's pool: {pool_problems[-1]}")
    controller.subscribe(lambda event: _tell(event, report))
    rounds = Rounds(controller, plan, folder, lambda: setattr(runner.controls, "stop_requested", True), report)
    rounds.requeue_unplanned()
    finished = threading.Event()

    def drive() -> None:
        try:
            while not finished.is_set():
                batch = []
                while True:
                    try:
                        batch.append(events.get_nowait())
                    except queue.Empty:
                        break
                if batch:
                    controller.take_events(batch)
                    rounds.take_runner_events(batch)
                jobs.pump()
                rounds.step()
                time.sleep(TICK_S)
        except Exception as error:  # noqa: BLE001 - the session stops cleanly; the traceback goes to the log
            unexpected("the closed loop", traceback.format_exc())
            report(f"the loop stopped ({type(error).__name__}: {error}); the session stops after the image on screen")
            runner.controls.stop_requested = True

    thread = threading.Thread(target=drive, name="closed-loop", daemon=True)
    thread.start()
    try:
        complete = runner.run()
    finally:
        finished.set()
        thread.join()
        controller.stop()
        jobs.join(timeout=60)
    if complete and rounds.finished:
        return True
    report(f"the loop stopped after {len(rounds.saved)} of {plan.batches} round(s); continue it with "
           f"`compactrig session resume {folder}`")
    return False


def _tell(event: object, report: Callable[[str], None]) -> None:
    """The controller's events as terminal lines."""
    if isinstance(event, LoopMessage):
        report(event.text)
    elif isinstance(event, JobStarted) and event.job.kind != "refit":
        report(event.job.label)
    elif isinstance(event, ReadoutsFitted):
        rs = " ".join(f"{unit} {r:.2f}" for unit, r in zip(event.units, event.fit.held_out_r))
        report(f"readouts fitted on {event.fit.n_images} images ({event.at} presentations): held-out r {rs}")


def is_loop_session(folder: Path) -> bool:
    """The session in ``folder`` was started with a closed loop (``loop run``): its resume resumes the loop."""
    return (Path(folder) / LOOP_FILE).is_file()
