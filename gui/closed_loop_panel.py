"""The closed-loop panel of the Live fits view: readouts for every recorded unit, images for them.

During a session each recorded unit (mapped to a model or not) gets a ridge readout of the
loaded bank's features, refitted in a job every N presentations; the table shows held-out
r and r2_ER, the plots the focused unit's held-out fit and the bank neurons it reads.
"Synthesize for this unit" designs images through the readout (optionally holding the
other units at baseline) and hands them to the stimulus set and the session's plan;
"Queue next batch" picks images from the candidate pool by the chosen strategy. All the
computation is ``compactrig.stimuli.closed_loop`` and friends, run in jobs; this module only moves
data between them and the widgets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (QCheckBox, QHBoxLayout, QHeaderView, QLabel, QProgressBar, QPushButton,
                             QSpinBox, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from compactrig.engine.layout import N_STAGES
from compactrig.engine.bank import ModelBank
from compactrig.engine.errors import CompactRigError
from compactrig.engine.fast_predict import Predictor
from compactrig.engine.image_files import read_images
from compactrig.engine.readout_features import FeatureSpec, compute_features
from compactrig.engine.distill import DistillSettings
from compactrig.engine.ridge import MIN_IMAGES, RidgeFit, TrialSums
from compactrig.gui.image_dialog import ask_for_images
from compactrig.rig.session.compact_models import COMPACT_MODELS_DIR, make_session_models
from compactrig.rig.session.events import ImagesAdded, ResponseStored, SessionStarted, SessionStatus, UnitsDiscovered
from compactrig.rig.session.folder import STIMULI_DIR
from compactrig.gui.combo_box import ComboBox
from compactrig.gui.worker import Job, JobList
from compactrig.stimuli.closed_loop import (ReadoutData, ResponseLog, design_for_unit, next_batch, refit, strongest_weights,
                                 synthesis_readout)
from compactrig.stimuli.new_neurons import MIN_IMAGES as MIN_COMPACT_IMAGES
from compactrig.stimuli.new_neurons import NewNeuron, NewNeuronSettings
from compactrig.stimuli.next_images import STRATEGIES, candidate_pool, pool_kinds
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet, annotate
from compactrig.stimuli.synthesis import SynthesisSettings

READOUT_COLUMNS = ("unit", "images", "penalty", "held-out r", "r2_ER", "reads most from")
IDLE_TEXT = "no job running"
SHOWN_NEURONS = 12
"""Bank neurons drawn in the weights plot (the focused readout's strongest)."""


class ClosedLoopPanel(QWidget):
    """Readout fits, synthesis for a unit and next-batch selection for the running session."""

    message = pyqtSignal(str)
    add_to_set = pyqtSignal(object)
    """Designed images (``StimulusSet``) for the Stimulus set view."""
    queue_requested = pyqtSignal(object, int)
    """Images (``StimulusSet``) and repeats for the session's plan."""
    bank_made = pyqtSignal(str, str)
    """Folder and name of a bank of compact models just made for the session's units (for Models)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bank: ModelBank | None = None
        self.predictor: Predictor | None = None
        self.spec: FeatureSpec | None = None
        self.units: list[str] = []
        self.log: ResponseLog | None = None
        self.session_folder: Path | None = None
        self.session_ids: list[str] = []
        """Every image of the session (its stimulus set and what was queued): each needs features."""
        self.fit: RidgeFit | None = None
        self.fit_data: ReadoutData | None = None
        self.fitted_at = 0
        self.natural: StimulusSet | None = None
        self.pool: StimulusSet | None = None
        self.pool_features: np.ndarray | None = None
        self.chosen = np.zeros(0, dtype=bool)
        self.focus = 0
        self.next_seed = 0
        self.jobs = JobList()
        self.work_job: Job | None = None
        """Choosing a batch or synthesizing: set when started, cleared when its result is handled."""
        self.feature_job: Job | None = None
        self.refit_job: Job | None = None
        self.compact_job: Job | None = None
        """Making compact models: minutes long, so synthesis and choosing go on beside it."""
        self._shown: Job | None = None
        """The job whose progress the bar shows (the newest of the running ones)."""

        self.heading = QLabel("Readouts for the recorded units appear here once a session runs.")
        self.heading.setWordWrap(True)
        self.features = ComboBox()
        self.features.addItems(["bank outputs"] + [f"stage {k} channels, pooled" for k in range(N_STAGES)])
        self.features.currentIndexChanged.connect(self._features_changed)
        self.refit_every = QSpinBox(minimum=5, maximum=10000, value=50, suffix=" presentations")
        self.refit_button = QPushButton("Refit now")
        self.refit_button.clicked.connect(self.refit_now)
        settings_row = QHBoxLayout()
        for widget in (QLabel("features"), self.features, QLabel("refit every"), self.refit_every, self.refit_button):
            settings_row.addWidget(widget)
        settings_row.addStretch(1)

        self.table = QTableWidget(0, len(READOUT_COLUMNS))
        self.table.setHorizontalHeaderLabels(READOUT_COLUMNS)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.itemSelectionChanged.connect(self._focus_selected)

        self.fit_plot = pg.PlotWidget(background="w")
        self.fit_plot.setLabel("bottom", "readout prediction (held out)")
        self.fit_plot.setLabel("left", "mean response")
        self.fit_points = pg.ScatterPlotItem(size=6, pen=pg.mkPen(None), brush=pg.mkBrush(30, 140, 60, 170))
        self.fit_plot.addItem(self.fit_points)
        self.weight_plot = pg.PlotWidget(background="w")
        self.weight_plot.setLabel("left", "weight (per SD)")  # short: a long label is clipped in a short plot
        self.weight_bars = pg.BarGraphItem(x=[], height=[], width=0.7, brush=(40, 90, 170))
        self.weight_plot.addItem(self.weight_bars)
        middle = QSplitter(Qt.Orientation.Horizontal)
        for widget in (self.table, self.fit_plot, self.weight_plot):
            middle.addWidget(widget)
        middle.setSizes([460, 320, 320])

        self.direction = ComboBox()
        self.direction.addItems(["max", "min"])
        self.hold_others = QCheckBox("others at baseline")
        self.hold_others.setToolTip("population image: drive this unit while holding every other unit near its "
                                    "mean response")
        self.n_images = QSpinBox(minimum=1, maximum=64, value=4, suffix=" images")
        self.steps = QSpinBox(minimum=1, maximum=2000, value=100, suffix=" steps")
        self.queue_designed = QCheckBox("queue them")
        self.queue_designed.setChecked(True)
        self.synth_button = QPushButton("Synthesize for this unit")
        self.synth_button.clicked.connect(self.synthesize)
        synth_row = QHBoxLayout()
        for widget in (self.synth_button, self.direction, self.hold_others, self.n_images, self.steps,
                       self.queue_designed):
            synth_row.addWidget(widget)
        synth_row.addStretch(1)

        self.pool_label = QLabel("pool: generated textures + gaudy")
        pool_button = QPushButton("Natural images…")
        pool_button.clicked.connect(self._choose_natural)
        self.strategy = ComboBox()
        self.strategy.addItems(STRATEGIES)
        self.strategy.setCurrentText("committee")
        self.batch = QSpinBox(minimum=1, maximum=1000, value=20, suffix=" images")
        self.repeats = QSpinBox(minimum=1, maximum=100, value=2, prefix="x ")
        self.queue_button = QPushButton("Queue next batch")
        self.queue_button.clicked.connect(self.queue_next_batch)
        queue_row = QHBoxLayout()
        for widget in (self.queue_button, self.strategy, self.batch, self.repeats, self.pool_label, pool_button):
            queue_row.addWidget(widget)
        queue_row.addStretch(1)

        self.compact_button = QPushButton("Make compact models")
        self.compact_button.setToolTip("For every recorded unit: a readout of the bank, distilled and pruned into a "
                                       "model of the published architecture, written beside the session and "
                                       "offered in Models")
        self.compact_button.clicked.connect(self.make_compact_models)
        self.compact_epochs = QSpinBox(minimum=1, maximum=1000, value=DistillSettings().epochs, suffix=" epochs")
        self.compact_epochs.setToolTip("training passes over the distillation images (fewer: faster, less exact)")
        compact_row = QHBoxLayout()
        for widget in (self.compact_button, self.compact_epochs):
            compact_row.addWidget(widget)
        compact_row.addStretch(1)

        self.progress = QProgressBar()
        self.progress.setMaximumHeight(14)
        self.progress.setFormat(IDLE_TEXT)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.heading)
        layout.addLayout(settings_row)
        layout.addWidget(middle, 1)
        layout.addLayout(synth_row)
        layout.addLayout(queue_row)
        layout.addLayout(compact_row)
        layout.addLayout(progress_row)
        self._update_buttons()

    # inputs ----------------------------------------------------------------------------------
    def set_bank(self, bank: ModelBank) -> None:
        """The loaded bank: its neurons' features are what the readouts read."""
        self.bank = bank
        self.predictor = Predictor(bank)
        self._reset_features()

    def _features_changed(self) -> None:
        self._reset_features()

    def _feature_spec(self) -> FeatureSpec:
        index = self.features.currentIndex()
        return FeatureSpec(tuple(self.bank.neuron_ids), None if index == 0 else index - 1)

    def _reset_features(self) -> None:
        """New bank or feature choice: every image's features are computed again."""
        if self.bank is None:
            return
        self.spec = self._feature_spec()
        self.fit, self.fit_data, self.pool_features = None, None, None
        if self.log is not None:
            self.log.forget_features()
            self._prepare()
        self._show_fit()

    def take_events(self, events: list) -> None:
        """A tick's runner events: a new session, queued images, responses; refit when due."""
        responses: list[tuple[str, dict[str, float]]] = []
        caught_up = False
        for event in events:
            if isinstance(event, SessionStarted):
                self._begin(event)
                responses = list(event.stored)
            elif isinstance(event, ResponseStored):
                responses.append((event.image_id, event.counts))
            elif isinstance(event, UnitsDiscovered) and self.log is not None:
                self._add_responses(responses)  # those came before the unit, which counted 0 in them
                responses = []
                for unit in event.units:
                    self.log.add_unit(unit)
                self.units = list(self.log.units)
            elif isinstance(event, ImagesAdded) and self.log is not None:
                self.session_ids += event.image_ids
                self._prepare()
            elif isinstance(event, SessionStatus):
                caught_up = event.done >= event.planned
        if self.log is not None and responses:
            self._add_responses(responses)
            self._refit_if_due(force=self.fit is None)  # the first fit as soon as there is enough to fit
            self._show_heading()
        if caught_up and self.log is not None and self.fit is not None and self.log.n_presentations > self.fitted_at:
            self._refit_if_due(force=True)  # the plan is done: the readouts take every response before the next step

    def _add_responses(self, responses: list[tuple[str, dict[str, float]]]) -> None:
        if self.log is not None and responses:
            self.log.add([i for i, _ in responses],
                                   [[counts.get(u, np.nan) for u in self.units] for _, counts in responses])

    def _begin(self, started: SessionStarted) -> None:
        self.units = list(started.units)
        self.log = ResponseLog(self.units)
        self.session_folder = Path(started.folder) if started.folder else None
        self.session_ids = list(started.image_ids)
        if self.pool is not None:  # what this session already holds is not chosen again
            self.chosen = np.isin(self.pool.ids, self.session_ids)
        self.fit, self.fit_data, self.fitted_at, self.focus = None, None, 0, 0
        self.table.setRowCount(0)
        self._prepare()

    def _choose_natural(self) -> None:
        path = ask_for_images(self, "Natural images for the candidate pool")
        if path:
            self.set_natural(path)

    def set_natural(self, path: str | Path) -> bool:
        """Natural candidates from a folder or zip (their gaudy versions join the pool too)."""
        try:
            found = read_images(path)
            self.natural = StimulusSet([StimulusRecord(image_id=i, kind="natural", source_image=f"{path}:{i}")
                                        for i in found.ids], found.pixels)
        except CompactRigError as error:  # a bad folder or file name is a message, not a crash
            self.message.emit(str(error))
            return False
        self.pool, self.pool_features = None, None
        self.pool_label.setText(f"pool: {len(found)} natural ({Path(path).name}) + gaudy")
        if self.log is not None:
            self._prepare()
        return True

    # features --------------------------------------------------------------------------------
    def _prepare(self) -> None:
        """Features for the session's images and the candidate pool, in a job (one at a time)."""
        if self.bank is None or self.jobs.stopped or self.feature_job is not None:
            return
        predictor, spec, natural, pool = self.predictor, self.spec, self.natural, self.pool
        missing = set(self.log.missing_features(self.session_ids))
        folder, log = self.session_folder, self.log
        need_pool = pool is None or self.pool_features is None

        def work(progress, cancelled):
            new_ids, new_features = [], np.zeros((0, 0))
            if missing and folder is not None and (folder / STIMULI_DIR).is_dir():
                subset = StimulusSet.load(folder / STIMULI_DIR, only=missing)  # decodes just those PNGs
                if len(subset):
                    new_ids = subset.ids
                    new_features = compute_features(predictor, subset.pixels, spec, progress, cancelled)
            built, built_features = pool, None
            if need_pool:
                built = candidate_pool(natural)
                built_features = compute_features(predictor, built.pixels, spec, progress, cancelled)
            return spec, log, missing, new_ids, new_features, built, built_features

        self.feature_job = self._start(work, self._features_ready, "Computing readout features…")
        self._update_buttons()

    def _features_ready(self, result) -> None:
        self._done(self.feature_job)
        spec, log, attempted, ids, features, pool, pool_features = result
        if spec != self.spec or log is not self.log:
            self._prepare()  # the bank, the feature choice or the session changed meanwhile
            return
        if len(ids):
            self.log.add_features(ids, features)
        if pool_features is not None:
            self.pool, self.pool_features = pool, pool_features
            self.chosen = np.isin(pool.ids, self.session_ids + self.log.image_ids)
            self.pool_label.setText(f"pool: {len(pool)} images ({pool_kinds(pool).count('gaudy')} gaudy)")
        if set(self.log.missing_features(self.session_ids)) - attempted:
            self._prepare()  # images queued while this job ran
        self._refit_if_due(force=self.fit is None)
        self._update_buttons()

    # refits ----------------------------------------------------------------------------------
    def refit_now(self) -> None:
        """Refit at once; features a cancelled job left out are computed first."""
        if self.log is not None and (self.pool_features is None or self.log.missing_features(self.session_ids)):
            self._prepare()
        self._refit_if_due(force=True)

    def _refit_if_due(self, force: bool = False) -> None:
        if self.log is None or self.jobs.stopped or self._running(self.refit_job):
            return
        if not force and self.log.n_presentations - self.fitted_at < self.refit_every.value():
            return
        data = self.log.snapshot()
        if int(data.trials.answered.sum()) < MIN_IMAGES:
            return
        at, log, spec = self.log.n_presentations, self.log, self.spec
        self.refit_job = Job(lambda progress, cancelled: (refit(data), data, at, log, spec))
        self.jobs.add(self.refit_job)
        self.refit_job.finished.connect(self._fitted)
        self.refit_job.failed.connect(self._failed)
        self.refit_job.start(self)

    def _fitted(self, result: tuple[RidgeFit, ReadoutData, int, ResponseLog, FeatureSpec]) -> None:
        fit, data, at, log, spec = result
        if log is not self.log or spec != self.spec:
            self._refit_if_due(force=True)  # a new session or feature choice started meanwhile
            return
        self.fit, self.fit_data, self.fitted_at = fit, data, at
        self._show_fit()
        self._update_buttons()
        if self.log is not None and self.log.n_presentations - self.fitted_at >= self.refit_every.value():
            self._refit_if_due()

    # actions ---------------------------------------------------------------------------------
    def queue_next_batch(self) -> bool:
        """Choose the next images from the pool (in a job) and hand them to the session's plan."""
        if self.work_job is not None:
            self.message.emit("Wait for the running choice or synthesis to finish (or cancel it)")
            return False
        if self.pool_features is None:
            self.message.emit("The candidate pool is not ready yet (its features are being computed)")
            return False
        strategy = self.strategy.currentText()
        if strategy == "committee" and self.fit is None:
            strategy = "random"
            self.message.emit(f"No readout fit yet (it needs responses to {MIN_IMAGES}+ images): this batch is "
                              "chosen at random; the committee chooses once the readouts are fitted")
        kinds, n, exclude = pool_kinds(self.pool), self.batch.value(), self.chosen.copy()
        data, fit, features, seed = self.fit_data, self.fit, self.pool_features, self.next_seed
        self.next_seed += 1

        def work(progress, cancelled):
            return next_batch(strategy, kinds, n, exclude, seed, data, fit, features)

        self.work_job = self._start(work, self._batch_chosen, f"Choosing {n} images ({strategy})…")
        self._update_buttons()
        return True

    def _batch_chosen(self, indices: np.ndarray) -> None:
        self._done(self.work_job)
        if len(indices) == 0:
            self.message.emit("Every image of the pool has been queued; choose more natural images")
            return
        self.chosen[indices] = True
        batch = self.pool.select(indices.tolist())
        self.log.add_features(batch.ids, self.pool_features[indices])
        self.queue_requested.emit(batch, self.repeats.value())

    def synthesize(self) -> bool:
        """Images for the focused unit through its readout, in a job (cancel keeps the best so far)."""
        if self.work_job is not None:
            self.message.emit("Wait for the running choice or synthesis to finish (or cancel it)")
            return False
        if self.fit is None or self.fit_data is None:
            self.message.emit("No readout fit yet: the readouts need responses to "
                              f"{MIN_IMAGES}+ images first")
            return False
        predictor, spec, data, fit, units = self.predictor, self.spec, self.fit_data, self.fit, list(self.units)
        unit, seeds = self.focus, list(range(self.next_seed, self.next_seed + self.n_images.value()))
        self.next_seed += len(seeds)
        settings = SynthesisSettings(direction=self.direction.currentText(), steps=self.steps.value())
        weight = 1.0 if self.hold_others.isChecked() else None
        bank = self.bank

        def work(progress, cancelled):
            readout = synthesis_readout(predictor, spec, data, fit, units, unit)
            design = design_for_unit(readout, unit, seeds, settings, data, weight,
                                     progress=lambda p: progress(p.step, p.steps), cancelled=cancelled)
            designed = annotate(bank, design.images, design.records, predictor)
            return designed, compute_features(predictor, designed.pixels, spec), design.responses

        self.work_job = self._start(work, self._designed, f"Synthesizing for {units[unit]}…")
        self._update_buttons()
        return True

    def _designed(self, result: tuple[StimulusSet, np.ndarray, np.ndarray]) -> None:
        self._done(self.work_job)
        designed, features, responses = result
        if self.log is not None:
            self.log.add_features(designed.ids, features)
        self.add_to_set.emit(designed)
        self.message.emit(f"{len(designed)} image(s) for {self.units[self.focus]}: predicted "
                          f"{', '.join(f'{r:.2f}' for r in responses)}")
        if self.queue_designed.isChecked():
            self.queue_requested.emit(designed, self.repeats.value())

    def make_compact_models(self) -> bool:
        """Compact models for every unit from the session's images and responses, in a job."""
        if self.compact_job is not None:  # the button reads "Stop making compact models" meanwhile
            self.compact_job.cancel()
            return False
        if self.log is None or self.session_folder is None or self.bank is None:
            self.message.emit("Make compact models needs a running or reopened session with responses")
            return False
        answered = int(self.log.answered_by_all().sum())
        if answered < MIN_COMPACT_IMAGES:
            self.message.emit(f"Only {answered} images have responses from every unit; compact models need "
                              f"{MIN_COMPACT_IMAGES} or more (a few hundred for good ones)")
            return False
        bank, folder, ids, units = self.bank, self.session_folder, list(self.log.image_ids), list(self.units)
        trials = TrialSums(self.log.counts.copy(), self.log.sums.copy(), self.log.sumsq.copy())  # the session goes on
        settings = NewNeuronSettings(distill=DistillSettings(epochs=self.compact_epochs.value()))

        def work(progress, cancelled):
            return make_session_models(bank, folder, ids, units, trials, settings,
                                       lambda what, fraction: progress(round(1000 * fraction), 1000), cancelled)

        self.compact_job = self._start(work, self._compact_made, f"Making compact models for {len(units)} units…")
        self.compact_job.called_off.connect(lambda: self.message.emit(
            f"Making compact models stopped; models already finished stay in {folder / COMPACT_MODELS_DIR}"))
        self._update_buttons()
        return True

    def _compact_made(self, result: tuple[Path, list[NewNeuron]]) -> None:
        self._done(self.compact_job)
        out, made = result
        self.bank_made.emit(str(out), out.parent.name)
        self.message.emit(f"{len(made)} compact models written to {out} (held-out r "
                          f"{', '.join(f'{m.compact_r:.2f}' for m in made)}); choose them in Models")

    # jobs ------------------------------------------------------------------------------------
    @staticmethod
    def _running(job: Job | None) -> bool:
        return job is not None and job.thread is not None and job.thread.isRunning()

    def _start(self, work, done, text: str) -> Job | None:
        """Run ``work`` in a job whose progress the bar shows (the newest job's, while several run)."""
        if self.jobs.stopped:
            return None
        job = Job(work)
        self.jobs.add(job)
        job.progress.connect(self._show_progress)
        job.finished.connect(done)
        job.failed.connect(self._failed)
        job.called_off.connect(self._called_off)
        job.label = text
        job.start(self)
        self._shown = job
        self.progress.setFormat(text + " %p%")
        self.progress.setMaximum(1)
        self.progress.setValue(0)
        return job  # the caller keeps it (work_job, feature_job), then updates the buttons

    def _show_progress(self, done: int, total: int) -> None:
        if self.sender() is not None and self.sender() is not self._shown:
            return  # another job's progress: the bar follows the job it names
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)

    def _failed(self, text: str) -> None:
        self._done(self.sender())
        self.message.emit(text)

    def _called_off(self) -> None:
        job = self.sender()
        compact = job is self.compact_job  # its own message says where the finished models are
        self._done(job)
        if not compact:
            self.message.emit("Cancelled; Refit now computes what is missing")

    def _done(self, job: Job | None) -> None:
        """``job`` is over (result, failure or cancel): its slot is freed, and the bar goes to the other
        job if one still runs, else says nothing runs."""
        if job is self.work_job:
            self.work_job = None
        elif job is self.feature_job:
            self.feature_job = None
        elif job is self.compact_job:
            self.compact_job = None
        if job is self._shown:
            self._shown = self.work_job or self.compact_job or self.feature_job
            if self._shown is None:
                self.progress.setFormat(IDLE_TEXT)
                self.progress.setMaximum(1)
                self.progress.setValue(0)
            else:
                self.progress.setFormat(self._shown.label + " %p%")
        self._update_buttons()

    def cancel(self) -> None:
        for job in (self.work_job, self.feature_job):  # compact models stop with their own button
            if job is not None:
                job.cancel()

    def stop_jobs(self) -> None:
        """Cancel and wait for every job and start no more (the window is closing)."""
        self.jobs.stop()

    def _update_buttons(self) -> None:
        """Buttons follow the jobs this panel started and has not yet heard back from."""
        busy = self.work_job is not None
        self.synth_button.setEnabled(self.fit is not None and not busy)
        self.queue_button.setEnabled(self.pool_features is not None and not busy)
        self.compact_button.setEnabled(self.log is not None)
        self.compact_button.setText("Make compact models" if self.compact_job is None else "Stop making compact models")
        self.cancel_button.setEnabled(busy or self.feature_job is not None)

    # drawing ---------------------------------------------------------------------------------
    def _show_heading(self) -> None:
        if self.log is None:
            return
        fitted = (f"fitted on {self.fit.n_images} images at {self.fitted_at} presentations"
                  if self.fit is not None else f"first fit after {MIN_IMAGES} images with responses")
        self.heading.setText(f"Readouts of {len(self.units)} recorded unit(s) on {self.spec.describe()}: "
                             f"{fitted}; {self.log.n_presentations} presentations so far.")

    def _show_fit(self) -> None:
        self._show_heading()
        fit = self.fit
        if fit is None or self.bank is None:
            self.table.setRowCount(0)
            self.fit_points.setData([], [])
            self.weight_bars.setOpts(x=[], height=[])
            return
        fitted_units = self.units[:len(fit.held_out_r)]  # units heard from after this fit wait for the next
        self.table.setRowCount(len(fitted_units))
        for row, unit in enumerate(fitted_units):
            strongest = ", ".join(f"{neuron} {weight:+.2f}"
                                  for neuron, weight in strongest_weights(fit, self.spec, self.bank, row, 3))
            cells = (unit, str(fit.n_images), f"{fit.alphas[row]:.2g}",
                     f"{fit.held_out_r[row]:.3f}", "" if not np.isfinite(fit.r2_er[row]) else f"{fit.r2_er[row]:.3f}",
                     strongest)
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(text))
        self._select_focus()
        self._show_focus()

    def _select_focus(self) -> None:
        """Highlight the focused unit's row: what is highlighted is what the plots show and synthesis uses."""
        self.table.blockSignals(True)
        self.table.clearSelection()
        if 0 <= self.focus < self.table.rowCount():
            self.table.selectRow(self.focus)
        self.table.blockSignals(False)

    def _focus_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows and self.table.item(rows[0].row(), 0) is not None:
            self.focus_unit(self.table.item(rows[0].row(), 0).text())

    def focus_unit(self, unit: str) -> None:
        """Show ``unit``'s readout in the plots; synthesis designs for it."""
        self.focus = self.units.index(unit)
        self._show_focus()

    def _show_focus(self) -> None:
        fit, data, unit = self.fit, self.fit_data, self.focus
        if fit is None or unit >= min(len(self.units), len(fit.held_out_r)):
            return
        seen = data.trials.answered
        self.fit_points.setData(fit.held_out[unit][seen], data.trials.means[seen, unit])
        self.fit_plot.setTitle(f"{self.units[unit]}: held-out r = {fit.held_out_r[unit]:.3f}")
        strongest = strongest_weights(fit, self.spec, self.bank, unit, SHOWN_NEURONS)
        self.weight_bars.setOpts(x=list(range(len(strongest))), height=[w for _, w in strongest])
        self.weight_plot.getAxis("bottom").setTicks([[(k, neuron) for k, (neuron, _) in enumerate(strongest)]])
        self.weight_plot.setTitle(f"bank neurons {self.units[unit]} reads most from")
