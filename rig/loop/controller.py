"""The closed loop of a running session: readouts refitted on a schedule, next images chosen, images designed.

``LoopController`` is fed the session's events (``take_events``) and the user's requests (choose a
batch, synthesize for a unit, make compact models); it reads the responses from the session's one
accumulator (``compactrig.rig.session.live.LiveSession``, fed by its owner before the controller
takes the same events) and keeps the images' readout features, the current readout fit and the
candidate pool, decides when to refit (the first fit as soon as
enough images have responses, then every ``refit_every`` presentations, and once more whenever
every planned presentation has been answered), drops results that went stale while their job ran
(a new session, bank, feature choice or pool), stores every readout fit in the session folder
(``compactrig.rig.loop.fit_files``, from the refit's job), and hands images to the session through
``queue_images``. Long work runs as ``LoopJob``s through ``start_job``; the controller's state is
touched only on the thread that calls it. What happens is told to subscribers as typed events
(``compactrig.rig.loop.events``). The window draws them; ``compactrig loop run`` prints them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from compactrig.engine.errors import CompactRigError
from compactrig.engine.files.image_files import read_images
from compactrig.engine.models.bank import ModelBank
from compactrig.engine.models.fast_predict import Predictor
from compactrig.engine.progress import named
from compactrig.engine.readout.features import FeatureSpec, compute_features
from compactrig.engine.readout.ridge import MIN_IMAGES, RidgeFit, enough_responses
from compactrig.engine.training.distill import DistillSettings
from compactrig.rig.loop.events import (
    BatchChosen,
    CompactModelsMade,
    FitCleared,
    ImagesDesigned,
    JobEnded,
    JobStarted,
    LoopMessage,
    LoopStatus,
    PoolChosen,
    PoolReady,
    ReadoutsFitted,
)
from compactrig.rig.loop.fit_files import save_fit
from compactrig.rig.loop.jobs import LoopJob, Work
from compactrig.rig.session.compact_models import (
    COMPACT_MODELS_DIR,
    make_session_models,
)
from compactrig.rig.session.events import (
    ImagesAdded,
    ResponseStored,
    SessionStarted,
    SessionStatus,
    UnitsDiscovered,
)
from compactrig.rig.session.folder import STIMULI_DIR
from compactrig.rig.session.live import LiveSession
from compactrig.stimuli.closed_loop import (
    Batch,
    ReadoutData,
    ResponseLog,
    batch_strategy,
    design_for_unit,
    designed_units,
    next_batch,
    refit,
    synthesis_readout,
)
from compactrig.stimuli.new_neurons import MIN_IMAGES as MIN_COMPACT_IMAGES
from compactrig.stimuli.new_neurons import NewNeuronSettings
from compactrig.stimuli.next_images import (
    STRATEGIES,
    Strategy,
    candidate_pool,
    pool_kinds,
)
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet, annotate
from compactrig.stimuli.synthesis import Direction, SynthesisSettings

DEFAULT_REFIT_EVERY = 50
BUSY = "Wait for the running choice or synthesis to finish (or cancel it)"


class LoopController:
    """The closed loop's state and decisions for one window or one command-line run."""

    def __init__(self, start_job: Callable[[LoopJob], None], live: LiveSession,
                 queue_images: Callable[[StimulusSet, int], Any] = lambda images, repeats: None,
                 refit_every: int = DEFAULT_REFIT_EVERY) -> None:
        self._start_job = start_job
        self.live = live
        """The session's responses (its owner feeds them; the readouts are fitted on its sums)."""
        self._queue_images = queue_images
        self.refit_every = refit_every
        """Presentations between scheduled refits."""
        self.feature_stage: int | None = None
        """None: the bank neurons' outputs; K: stage K's channels pooled over space."""
        self.bank: ModelBank | None = None
        self.predictor: Predictor | None = None
        self.spec: FeatureSpec | None = None
        self.units: list[str] = []
        self.log: ResponseLog | None = None
        self.session_folder: Path | None = None
        self.session_ids: list[str] = []
        """Every image of the session (its stimulus set and what was queued): each needs features."""
        self.designed: dict[str, str] = {}
        """Image id -> the unit it was synthesized for, for the session's images whose provenance says so (read
        with their features, or made here)."""
        self.planned = 0
        self.done = 0
        self.left_out = 0
        self.fit: RidgeFit | None = None
        self.fit_data: ReadoutData | None = None
        self.fitted_at = 0
        self.natural: StimulusSet | None = None
        self.pool: StimulusSet | None = None
        self.pool_features: np.ndarray | None = None
        self.chosen = np.zeros(0, dtype=bool)
        """Per pool image: already in the session or chosen (never chosen again)."""
        self.next_seed = 0
        self.feature_job: LoopJob | None = None
        self.refit_job: LoopJob | None = None
        self.work_job: LoopJob | None = None
        """Choosing a batch or synthesizing (one at a time)."""
        self.compact_job: LoopJob | None = None
        """Making compact models: minutes long, so synthesis and choosing go on beside it."""
        self.stopped = False
        self._subscribers: list[Callable[[object], object]] = []

    # subscribers -----------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[object], object]) -> None:
        """``callback(event)`` for every event, on the controller's thread."""
        self._subscribers.append(callback)

    def _emit(self, event: object) -> None:
        for callback in list(self._subscribers):
            callback(event)

    def _say(self, text: str) -> None:
        self._emit(LoopMessage(text))

    @property
    def caught_up(self) -> bool:
        """Every planned presentation is answered or left out (as the runner last said)."""
        return self.planned > 0 and self.done + self.left_out >= self.planned

    @property
    def fitted_on_everything(self) -> bool:
        return self.fit is not None and self.log is not None and self.fitted_at == self.log.n_presentations

    def designed_for(self, unit: str, image_ids: list[str]) -> np.ndarray:
        """Per image of ``image_ids``: whether it was synthesized for ``unit`` (its provenance says so), so the
        view can show whether such images drive the unit."""
        return np.array([self.designed.get(i) == unit for i in image_ids], dtype=bool)

    def running_jobs(self) -> list[LoopJob]:
        return [j for j in (self.work_job, self.compact_job, self.feature_job, self.refit_job) if j is not None]

    # inputs ----------------------------------------------------------------------------------
    def set_bank(self, bank: ModelBank) -> None:
        """The bank whose neurons' features the readouts read."""
        self.bank = bank
        self.predictor = Predictor(bank)
        self._reset_features()

    def set_feature_stage(self, stage: int | None) -> None:
        """Read the bank's outputs (None) or one stage's channels pooled over space."""
        self.feature_stage = stage
        self._reset_features()

    def _reset_features(self) -> None:
        """New bank or feature choice: every image's features are computed again; the fit goes."""
        if self.bank is None:
            return
        self.spec = FeatureSpec(tuple(self.bank.neuron_ids), self.feature_stage)
        self.fit, self.fit_data, self.pool_features = None, None, None
        self._emit(FitCleared())
        if self.log is not None:
            self.log.forget_features()
            self._prepare()
        self._status()

    def set_natural(self, path: str | Path) -> bool:
        """Natural candidates from a folder or zip (their gaudy versions join the pool too)."""
        try:
            found = read_images(path)
            natural = StimulusSet([StimulusRecord(image_id=i, kind="natural", source_image=f"{path}:{i}")
                                   for i in found.ids], found.pixels)
        except CompactRigError as error:  # a bad folder or file name is a message, not a crash
            self._say(str(error))
            return False
        self.natural, self.pool, self.pool_features = natural, None, None
        self._emit(PoolChosen(len(natural), Path(path).name))
        if self.log is not None:
            self._prepare()
        return True

    def take_events(self, events: list[object]) -> None:
        """The session's events (in order, once the live session has them): a new session, queued images,
        units, responses, status; refit when due."""
        responded = False
        for event in events:
            if isinstance(event, SessionStarted):
                self._begin(event)
                responded = bool(event.stored)
            elif isinstance(event, ResponseStored):
                responded = True
            elif isinstance(event, UnitsDiscovered) and self.log is not None:
                self.units = list(self.log.units)
            elif isinstance(event, ImagesAdded) and self.log is not None:
                self.session_ids += event.image_ids
                self.planned = event.planned
                self._prepare()
            elif isinstance(event, SessionStatus):
                self.done, self.planned, self.left_out = event.done, event.planned, event.left_out
        if self.log is None:
            return
        self._refit_if_due()
        if responded:
            self._status()

    def _begin(self, started: SessionStarted) -> None:
        assert self.live.sums is not None  # the live session took this start before the controller
        self.log = ResponseLog(self.live.sums)
        self.units = list(self.log.units)
        self.session_folder = Path(started.folder) if started.folder else None
        self.session_ids = list(started.image_ids)
        self.designed = {}
        self.planned, self.done, self.left_out = started.planned, 0, 0
        if self.pool is not None:  # what this session already holds is not chosen again
            self.chosen = np.isin(self.pool.ids, self.session_ids)
        self.fit, self.fit_data, self.fitted_at = None, None, 0
        self._emit(FitCleared())
        self._prepare()
        self._status()

    # features --------------------------------------------------------------------------------
    def _prepare(self) -> None:
        """Features for the session's images and the candidate pool, in a job (one at a time)."""
        if self.bank is None or self.log is None or self.stopped or self.feature_job is not None:
            return
        predictor, spec, natural, pool, folder, log = (self.predictor, self.spec, self.natural, self.pool,
                                                       self.session_folder, self.log)
        missing = set(log.missing_features(self.session_ids))
        need_pool = pool is None or self.pool_features is None

        def work(progress, cancelled):
            new_ids, new_features, designed = [], np.zeros((0, 0)), {}
            if missing and folder is not None and (folder / STIMULI_DIR).is_dir():
                subset = StimulusSet.load(folder / STIMULI_DIR, only=missing)  # decodes just those PNGs
                if len(subset):
                    new_ids, designed = subset.ids, designed_units(subset.records)
                    new_features = compute_features(predictor, subset.pixels, spec, named(progress, "the session's "
                                                                                            "images"), cancelled)
            built, built_features = pool, None
            if need_pool:
                built = candidate_pool(natural)
                built_features = compute_features(predictor, built.pixels, spec,
                                                  named(progress, "the candidate pool"), cancelled)
            return new_ids, new_features, designed, built, built_features

        def done(result) -> None:
            ids, features, designed, built, built_features = result
            if spec != self.spec or log is not self.log or (need_pool and natural is not self.natural):
                self._prepare()  # the bank, the feature choice, the session or the pool changed meanwhile
                return
            if len(ids):
                log.add_features(ids, features)
                self.designed.update(designed)
            if built_features is not None:
                self.pool, self.pool_features = built, built_features
                self.chosen = np.isin(built.ids, self.session_ids + log.image_ids)
                self._emit(PoolReady(len(built), pool_kinds(built).count("gaudy")))
            if set(log.missing_features(self.session_ids)) - missing:
                self._prepare()  # images queued while this job ran
            self._refit_if_due()

        self._start("feature_job", "features", "Computing readout features…", work, done)

    # refits ----------------------------------------------------------------------------------
    def refit_now(self) -> None:
        """Refit at once; features a cancelled job left out are computed first. The user asked: what happens is
        told, a refit's start and end, or why there is none."""
        if self.log is None:
            self._say("No session yet: the readouts are fitted to a session's responses")
            return
        if self.pool_features is None or self.log.missing_features(self.session_ids):
            self._prepare()
        if self.refit_job is not None:
            self._say("A refit is already under way; its result is shown when it is done")
        elif not enough_responses(self.log.sums):
            self._say(f"Not enough responses to fit yet: every unit needs responses to {MIN_IMAGES} images")
        else:
            self._refit_if_due(force=True, asked=True)

    def refit_due(self) -> bool:
        """The schedule: a first fit as soon as possible, then every ``refit_every`` presentations, and
        whenever the plan is caught up with responses the fit has not seen."""
        if self.log is None:
            return False
        behind = self.log.n_presentations - self.fitted_at
        return self.fit is None or behind >= self.refit_every or (self.caught_up and behind > 0)

    def _refit_if_due(self, force: bool = False, asked: bool = False) -> None:
        if self.log is None or self.stopped or self.refit_job is not None:
            return
        if not force and not self.refit_due():
            return
        if not enough_responses(self.log.sums):  # cheap: no snapshot for nothing
            return
        data = self.log.snapshot()
        if not enough_responses(data.responses):
            return
        at, log, spec, bank, units = self.log.n_presentations, self.log, self.spec, self.bank, tuple(self.units)
        folder = self.session_folder

        def work(progress, cancelled) -> tuple[ReadoutsFitted, str | None]:
            fit = refit(data)
            fitted = ReadoutsFitted(fit, data, units[:len(fit.held_out_r)], at)
            return fitted, _store(folder, fitted, spec, bank)

        def done(result: tuple[ReadoutsFitted, str | None]) -> None:
            fitted, problem = result
            if problem is not None:
                self._say(problem)
            if log is not self.log or spec != self.spec or bank is not self.bank:
                self._refit_if_due(force=True, asked=asked)  # a new session, bank or features came meanwhile: stale
                return
            self.fit, self.fit_data, self.fitted_at = fitted.fit, data, at
            if asked:
                self._say(f"Readouts refitted on {at} presentations (median held-out r "
                          f"{float(np.nanmedian(fitted.fit.held_out_r)):.2f})")
            self._emit(fitted)
            self._status()
            self._refit_if_due()

        self._start("refit_job", "refit", "Refitting the readouts…", work, done)

    # actions ---------------------------------------------------------------------------------
    def choose_batch(self, strategy: Strategy, n: int, repeats: int, queue: bool = True) -> bool:
        """Choose the next ``n`` images from the pool (in a job); queue them with ``repeats`` when asked."""
        if strategy not in STRATEGIES:
            raise CompactRigError(f"selection strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
        if self.work_job is not None:
            self._say(BUSY)
            return False
        if self.pool is None or self.pool_features is None:  # set together, once the pool's features are computed
            self._say("The candidate pool is not ready yet (its features are being computed)")
            return False
        used = batch_strategy(strategy, self.fit is not None)
        if used != strategy:
            self._say(f"No readout fit yet (it needs responses to {MIN_IMAGES}+ images): this batch is "
                      "chosen at random; the committee chooses once the readouts are fitted")
        pool, kinds, exclude = self.pool, pool_kinds(self.pool), self.chosen.copy()
        data, fit, features, seed = self.fit_data, self.fit, self.pool_features, self.next_seed
        self.next_seed += 1

        def work(progress, cancelled) -> Batch:
            return next_batch(strategy, kinds, n, exclude, seed, data, fit, features)

        def done(batch: Batch) -> None:
            if pool is not self.pool:
                self._say("The candidate pool changed while the batch was chosen; choose again")
                return
            if len(batch.indices) == 0:
                self._say("Every image of the pool has been queued; choose more natural images")
                return
            self.chosen[batch.indices] = True
            images = pool.select(batch.indices.tolist())
            if self.log is not None:
                self.log.add_features(images.ids, features[batch.indices])
            self._emit(BatchChosen(images, batch.strategy, strategy, repeats, queue))
            if queue:
                self._queue_images(images, repeats)

        return self._start("work_job", "choose", f"Choosing {n} images ({used})…", work, done) is not None

    def synthesize(self, unit: str, direction: Direction = "max", n: int = 4, steps: int = 100,
                   hold_others: bool = False, repeats: int = 1, queue: bool = True) -> bool:
        """Images for ``unit`` through its readout, in a job (cancel keeps the best so far)."""
        if self.work_job is not None:
            self._say(BUSY)
            return False
        if self.fit is None or self.fit_data is None:
            self._say(f"No readout fit yet: the readouts need responses to {MIN_IMAGES}+ images first")
            return False
        if unit not in self.units[:len(self.fit.held_out_r)]:
            self._say(f"unit {unit!r} has no readout yet; units: {', '.join(self.units[:len(self.fit.held_out_r)])}")
            return False
        predictor, spec, data, fit, units, bank, log = (self.predictor, self.spec, self.fit_data, self.fit,
                                                        list(self.units), self.bank, self.log)
        index, seeds = units.index(unit), list(range(self.next_seed, self.next_seed + n))
        self.next_seed += len(seeds)
        settings = SynthesisSettings(direction=direction, steps=steps)
        weight = 1.0 if hold_others else None

        def work(progress, cancelled):
            readout = synthesis_readout(predictor, spec, data, fit, units, index)
            design = design_for_unit(readout, index, seeds, settings, data, weight,
                                     progress=progress, cancelled=cancelled)
            designed = annotate(bank, design.images, design.records, predictor)
            return designed, compute_features(predictor, designed.pixels, spec), design.responses

        def done(result) -> None:
            designed, features, responses = result
            if log is self.log and spec == self.spec and log is not None:
                log.add_features(designed.ids, features)
                self.designed.update(designed_units(designed.records))
            self._emit(ImagesDesigned(designed, unit, responses, repeats, queue))
            self._say(f"{len(designed)} image(s) for {unit}: predicted {', '.join(f'{r:.2f}' for r in responses)}")
            if queue:
                self._queue_images(designed, repeats)

        return self._start("work_job", "synthesize", f"Synthesizing for {unit}…", work, done) is not None

    def queue(self, images: StimulusSet, repeats: int) -> None:
        """Hand images to the session (its plan); their features come from the session's folder."""
        self._queue_images(images, repeats)

    def make_compact_models(self, epochs: int = DistillSettings().epochs) -> bool:
        """Compact models for every unit from the session's images and responses, in a job; a second call
        while they are being made stops them."""
        if self.compact_job is not None:
            self.compact_job.cancel()
            return False
        if self.log is None or self.session_folder is None or self.bank is None:
            self._say("Make compact models needs a running or reopened session with responses")
            return False
        answered = int(self.log.sums.answered_by_all().sum())
        if answered < MIN_COMPACT_IMAGES:
            self._say(f"Only {answered} images have responses from every unit; compact models need "
                      f"{MIN_COMPACT_IMAGES} or more (a few hundred for good ones)")
            return False
        bank, folder, units = self.bank, self.session_folder, list(self.units)
        responses = self.log.sums.copy()  # the session goes on
        settings = NewNeuronSettings(distill=DistillSettings(epochs=epochs))

        def work(progress, cancelled):
            return make_session_models(bank, folder, responses, settings, progress, cancelled)

        def done(result) -> None:
            out, made = result
            self._emit(CompactModelsMade(out, tuple(float(m.compact_r) for m in made)))
            self._say(f"{len(made)} compact models written to {out} (held-out r "
                      f"{', '.join(f'{m.compact_r:.2f}' for m in made)}); choose them in Models")

        def called_off() -> None:
            self._say(f"Making compact models stopped; models already finished stay in {folder / COMPACT_MODELS_DIR}")

        label = f"Making compact models for {len(units)} units…"
        return self._start("compact_job", "compact", label, work, done, called_off) is not None

    def cancel(self) -> None:
        """Stop choosing, synthesizing and computing features (compact models stop with their own call)."""
        for job in (self.work_job, self.feature_job):
            if job is not None:
                job.cancel()

    def stop(self) -> None:
        """Cancel every job and start no more (the window is closing, the run is over)."""
        self.stopped = True
        for job in self.running_jobs():
            job.cancel()

    # jobs ------------------------------------------------------------------------------------
    def _start(self, slot: str, kind: str, label: str, work: Work, done: Callable[[Any], None],
               called_off: Callable[[], None] | None = None) -> LoopJob | None:
        """Run ``work`` as the job in ``slot`` (``feature_job``...), which is freed when it ends."""
        if self.stopped:
            return None
        job: LoopJob

        def ended(outcome: str) -> None:
            if getattr(self, slot) is job:
                setattr(self, slot, None)
            self._emit(JobEnded(job, outcome))

        def finished(result: Any) -> None:
            ended("done")
            done(result)

        def failed(text: str) -> None:
            ended("failed")
            self._say(text)

        def cancelled() -> None:
            ended("cancelled")
            (called_off or (lambda: self._say("Cancelled; Refit now computes what is missing")))()

        job = LoopJob(kind, label, work, finished, failed, cancelled)
        setattr(self, slot, job)
        self._emit(JobStarted(job))
        self._start_job(job)
        return job

    def _status(self) -> None:
        if self.log is None or self.spec is None:
            return
        self._emit(LoopStatus(tuple(self.units), self.log.n_presentations, self.spec.describe(),
                              self.fit.n_images if self.fit is not None else None, self.fitted_at))


def _store(folder: Path | None, fitted: ReadoutsFitted, spec: FeatureSpec | None, bank: ModelBank | None) -> str | None:
    """Store a fit in the session folder (none without one); the line to tell when that failed (the fit stands)."""
    if folder is None or spec is None or bank is None:
        return None
    try:
        save_fit(folder, fitted, spec, bank)
    except (CompactRigError, OSError) as error:
        return f"The readout fit on {fitted.at} presentations could not be stored: {error}"
    return None
