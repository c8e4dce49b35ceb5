"""The rounds of ``compactrig loop run``: K times, once the session is caught up, choose, design, queue.

A round starts when every planned presentation has been answered and the readouts are fitted on
every response: a batch from the candidate pool by the loop's strategy and, if asked, images
synthesized for each of ``for_units`` through its readout. The round's images are saved into the
session folder (``loop/rounds/round-KK``, atomically) before they are queued, so a resume after a
crash or Ctrl-C queues again any saved round the session's plan does not hold, and counts the
rounds already done. After the last round is answered (and fitted), the loop stops the session. When
every planned presentation is answered (or left out) and still no readout can be fitted (a unit has responses
to too few images, or no unit was heard at all), no round can ever start: the loop says why and stops the session
(``blocked``) rather than wait for responses that will not come.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from functools import reduce
from pathlib import Path

from compactrig.engine.readout.ridge import MIN_IMAGES, enough_responses
from compactrig.rig.loop.controller import LoopController
from compactrig.rig.loop.events import BatchChosen, ImagesDesigned
from compactrig.rig.loop.loop_plan import LOOP_DIR, LoopPlan
from compactrig.rig.session.events import ImagesAdded
from compactrig.rig.session.folder import read_snapshot
from compactrig.rig.session.integrity import open_session_store
from compactrig.stimuli.stimulus_set import StimulusSet

ROUNDS_DIR = "rounds"


def rounds_folder(session: Path) -> Path:
    return Path(session) / LOOP_DIR / ROUNDS_DIR


def saved_rounds(session: Path) -> list[StimulusSet]:
    """The images of every round saved so far, in order."""
    folder = rounds_folder(session)
    return [StimulusSet.load(path) for path in sorted(folder.glob("round-*"))] if folder.is_dir() else []


def save_round(session: Path, number: int, images: StimulusSet) -> Path:
    """``loop/rounds/round-KK``: written under a staging name, then renamed (whole or not at all)."""
    folder = rounds_folder(session)
    folder.mkdir(parents=True, exist_ok=True)
    final, staging = folder / f"round-{number:02d}", folder / f".round-{number:02d}.tmp"
    if staging.exists():
        shutil.rmtree(staging)  # ours: a crash left it half written
    images.save(staging)
    os.replace(staging, final)
    return final


class Rounds:
    """Drives ``plan.batches`` rounds through ``controller``; ``step`` is called on the controller's thread."""

    def __init__(self, controller: LoopController, plan: LoopPlan, session: Path, stop: Callable[[], None],
                 report: Callable[[str], None]) -> None:
        self.controller, self.plan, self.session, self.stop, self.report = controller, plan, Path(session), stop, report
        self.saved = saved_rounds(session)
        self.pending: list[StimulusSet] = []
        """Rounds queued whose images the runner has not yet taken into the plan."""
        self.collecting: list[StimulusSet] | None = None
        self.parts: list[str | None] = []
        """The current round's parts still to start: None for the batch, a unit name for its images."""
        self.finished = False
        self.blocked: str | None = None
        """Why no round can start, once that is known (the session is then stopped)."""
        seeds = [r.seed for images in self.saved for r in images.records if r.seed is not None]
        controller.next_seed = max(seeds, default=-1) + 1  # synthesized ids carry their seed: never reused
        controller.subscribe(self._collect)
        # the plan read through the session's checked store (its own, intact, planned): never a store made anew,
        # and read before the session runs (and writes it)
        store = open_session_store(self.session, read_snapshot(self.session))
        try:
            planned = {image for _, image in store.plan()}
        finally:
            store.close()
        self.unplanned = [(number, images) for number, images in enumerate(self.saved, start=1)
                          if not set(images.ids) <= planned]
        """Saved rounds the session's plan lacks (saved, then the run died)."""

    def requeue_unplanned(self) -> None:
        """Queue again every saved round the session's plan lacked (once the session runs: it takes them)."""
        for number, images in self.unplanned:
            self.report(f"round {number}: its {len(images)} image(s) were not in the plan yet; queued again")
            self._queue(images)
        self.unplanned = []

    def take_runner_events(self, events: list[object]) -> None:
        """The runner took a queued round into the plan (rounds are queued, and taken, in order)."""
        for event in events:
            if isinstance(event, ImagesAdded) and self.pending:
                self.pending.pop(0)

    def step(self) -> None:
        """Start, advance or close a round when the session and the readouts are ready for it."""
        controller = self.controller
        if self.finished or self.blocked or self.pending or controller.stopped:
            return
        if self.collecting is None:
            ready = (controller.caught_up and controller.fitted_on_everything and controller.pool_features is not None
                     and not controller.running_jobs())
            if not ready:
                self._stop_if_unfittable()
                return
            if len(self.saved) >= self.plan.batches:
                self._finish(f"all {self.plan.batches} round(s) answered and fitted; the loop is done")
                return
            self.collecting = []
            self.parts = [None] + (list(self.plan.for_units) if self.plan.synthesize else [])
        if controller.work_job is not None:
            return  # a part of the round is being made
        while self.parts:
            if self._start(self.parts.pop(0)):
                return
        self._close()

    def _stop_if_unfittable(self) -> None:
        """Every planned presentation answered, no job running, and the responses cannot be fitted: nothing
        that would change that is coming, so the loop stops the session and says which units lack responses."""
        controller, log = self.controller, self.controller.log
        if not controller.caught_up or controller.running_jobs() or log is None or enough_responses(log.sums):
            return
        answered = log.sums.answered().sum(axis=0)
        short = [f"{unit} ({int(n)})" for unit, n in zip(log.sums.units, answered) if n < MIN_IMAGES]
        heard = (f"unit(s) {', '.join(short)} answered fewer than {MIN_IMAGES} images" if short
                 else "no unit was heard (the plan's images were left out)")
        self.blocked = (f"no readout can be fitted with the plan settled: {heard}, and a readout needs responses "
                        f"to {MIN_IMAGES}; no round can start")
        self.report(f"the loop stops: {self.blocked}")
        self.stop()

    def _start(self, part: str | None) -> bool:
        plan, controller = self.plan, self.controller
        if part is None:
            return controller.choose_batch(plan.strategy, plan.batch, plan.repeats, queue=False)
        assert plan.synthesize is not None  # units are parts only when the plan synthesizes
        return controller.synthesize(part, plan.synthesize, plan.n, plan.steps, repeats=plan.repeats, queue=False)

    def _collect(self, event: object) -> None:
        if isinstance(event, (BatchChosen, ImagesDesigned)) and not event.queued and self.collecting is not None:
            self.collecting.append(event.images)

    def _close(self) -> None:
        parts, self.collecting = self.collecting or [], None
        if not any(len(p) for p in parts):
            self._finish("nothing left to queue (every pool image has been shown); the loop is done")
            return
        images = reduce(StimulusSet.merged, [p for p in parts if len(p)])
        number = len(self.saved) + 1
        save_round(self.session, number, images)
        self.saved.append(images)
        self.report(f"round {number}/{self.plan.batches}: {len(images)} image(s) x {self.plan.repeats} queued")
        self._queue(images)

    def _queue(self, images: StimulusSet) -> None:
        self.pending.append(images)
        self.controller.queue(images, self.plan.repeats)

    def _finish(self, text: str) -> None:
        self.finished = True
        self.report(text)
        self.stop()
