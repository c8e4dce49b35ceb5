"""A session run with its closed loop, headless: what ``compactrig loop run`` and ``session resume`` run.

The session runs through a ``SessionController`` (its runner on a thread of its own); the main thread
follows it (so Ctrl-C stops it after the image on screen) and, every tick, hands the session's events
to the ``LoopController``, ends its jobs (``ThreadJobs``) and steps the ``Rounds``. Every readout fit
is stored in the session folder as it is made (by the controller); what happens is printed, one line each.
"""

from __future__ import annotations

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
from compactrig.rig.session.controller import SessionController
from compactrig.rig.session.events import SessionMessage
from compactrig.rig.session.folder import read_snapshot

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
    round is done and answered, False when stopped (resume it with ``compactrig session resume``). A loop
    that cannot go on (``Rounds.blocked``: no readout can be fitted on the answered plan) is a
    ``CompactRigError`` saying why, once the session has stopped."""
    folder = Path(folder)
    plan = read_loop_plan(folder)
    if plan is None:
        raise CompactRigError(f"{folder}: no loop.json; this session has no closed loop (resume it with "
                              "`compactrig session resume`)")
    read_snapshot(folder)  # a session's folder, before its trial store is opened
    session = SessionController()

    def unexpected(what: str, text: str) -> None:
        (folder / LOOP_DIR).mkdir(exist_ok=True)
        with (folder / LOOP_DIR / ERROR_LOG).open("a") as log:
            log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {what}\n{text}\n")
        report(f"{what}: an unexpected error; the details are in {folder / LOOP_DIR / ERROR_LOG}")

    jobs = ThreadJobs(ProgressLines(report), lambda job, text: unexpected(job.label, text))
    controller = LoopController(jobs.start, session.live, session.queue_images, plan.refit_every)
    controller.set_bank(load_bank(plan.bank))
    pool_problems: list[str] = []
    if plan.pool is not None:
        controller.subscribe(lambda event: pool_problems.append(event.text) if isinstance(event, LoopMessage) else None)
        if not controller.set_natural(plan.pool):
            raise CompactRigError(f"the loop's pool: {pool_problems[-1]}")
    controller.subscribe(lambda event: _tell(event, report))
    rounds = Rounds(controller, plan, folder, session.abort, report)  # reads the saved rounds the plan lacks
    loop_failed = False

    def tick(events: list[object]) -> None:
        nonlocal loop_failed
        for event in events:
            if isinstance(event, SessionMessage):
                report(event.text)
        if loop_failed:
            return
        try:
            controller.take_events(events)
            rounds.take_runner_events(events)
            jobs.pump()
            rounds.step()
        except Exception as error:  # noqa: BLE001 - the session stops cleanly; the traceback goes to the log
            loop_failed = True
            unexpected("the closed loop", traceback.format_exc())
            report(f"the loop stopped ({type(error).__name__}: {error}); the session stops after the image on screen")
            session.abort()

    session.resume(folder, hold_open=True)  # the plan done, the session waits for the next round
    try:
        rounds.requeue_unplanned()
        complete = session.follow(tick)
    finally:
        session.close()
        controller.stop()
        jobs.join(timeout=60)
    if complete and rounds.finished:
        return True
    if rounds.blocked is not None:
        raise CompactRigError(f"{folder}: the loop stopped after {len(rounds.saved)} of {plan.batches} round(s): "
                              f"{rounds.blocked} (the session's responses are kept in its folder)")
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
