"""The closed-loop panel of the Live fits view: readouts for every recorded unit, images for them.

The loop itself is ``compactrig.rig.loop.controller.LoopController``: it reads the session's live
responses (the one accumulator, given to the panel), holds the readout fits and candidate pool,
decides when to refit and what comes next, and tells what happened as events. This panel draws
those events (the table of held-out r and r2_ER, the focused unit's held-out fit and the bank
neurons it reads), passes the buttons' requests on with the values of their widgets, and runs the
controller's jobs in ``gui.worker.Job`` threads so nothing long runs on the GUI thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from compactrig.engine.models.bank import ModelBank
from compactrig.engine.models.layout import N_STAGES
from compactrig.engine.readout.ridge import MIN_IMAGES
from compactrig.engine.training.distill import DistillSettings
from compactrig.gui.combo_box import ComboBox
from compactrig.gui.image_dialog import ask_for_images
from compactrig.gui.listing_table import ListingTable
from compactrig.gui.plots import AXIS_ROOM, FOREGROUND, plot_widget, set_title
from compactrig.gui.qt_parts import cell_text, selected_rows
from compactrig.gui.worker import Job, JobList
from compactrig.rig.loop.controller import DEFAULT_REFIT_EVERY, LoopController
from compactrig.rig.loop.events import (
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
from compactrig.rig.loop.jobs import LoopJob
from compactrig.rig.loop.readout_table import READOUT_COLUMNS, readout_rows
from compactrig.rig.session.live import LiveSession
from compactrig.stimuli.closed_loop import strongest_weights
from compactrig.stimuli.next_images import STRATEGIES, Strategy

if TYPE_CHECKING:
    from compactrig.stimuli.synthesis import Direction

IDLE_TEXT = "no job running"
SHOWN_NEURONS = 10
"""Bank neurons drawn in the weights plot (the focused readout's strongest)."""
DESIGNED_COLOUR = (230, 120, 0)
NEURON_ROW_SPACING = 1.2
"""Line heights of the tick font per bank neuron in the weights plot, so that its names never touch."""


def neuron_rows_height(plot: pg.PlotWidget, rows: int) -> int:
    """The least height (px) of a plot that names ``rows`` neurons down its left axis, one clear of the next."""
    return int(rows * NEURON_ROW_SPACING * plot.fontMetrics().height()) + AXIS_ROOM


class _LoopWorkerJob(Job):
    """A worker thread's job that runs one of the controller's jobs (its ending is handed back to it)."""

    def __init__(self, loop_job: LoopJob) -> None:
        super().__init__(loop_job.run)
        self.loop_job = loop_job


class ClosedLoopPanel(QWidget):
    """Readout fits, synthesis for a unit and next-batch selection for the running session."""

    message = pyqtSignal(str)
    add_to_set = pyqtSignal(object)
    """Designed images (``StimulusSet``) for the Stimulus set view."""
    queue_requested = pyqtSignal(object, int)
    """Images (``StimulusSet``) and repeats for the session's plan."""
    bank_made = pyqtSignal(str, str)
    """Folder and name of a bank of compact models just made for the session's units (for Models)."""
    unit_chosen = pyqtSignal(str)
    """A unit the user chose in the table (the Live fits view focuses it everywhere)."""

    def __init__(self, live: LiveSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = LoopController(self._run_job, live, self.queue_requested.emit, DEFAULT_REFIT_EVERY)
        self.controller.subscribe(self._on_event)
        self.jobs = JobList()
        self.focus = 0
        """The focused unit (its row in the controller's units): the plots show it, synthesis designs for it."""
        self.focused: str | None = None
        """The unit asked to be focused, by name: focused as soon as the readouts have it."""
        self._shown: LoopJob | None = None
        """The job whose progress the bar shows (the newest of the running ones)."""

        self.heading = QLabel("Readouts for the recorded units appear here once a session runs.")
        self.heading.setWordWrap(True)
        self.features = ComboBox()
        self.features.addItems(["bank outputs"] + [f"stage {k} channels, pooled" for k in range(N_STAGES)])
        self.features.currentIndexChanged.connect(self._features_changed)
        self.refit_every = QSpinBox(  # type: ignore[call-arg]
            minimum=5, maximum=10000, value=DEFAULT_REFIT_EVERY, suffix=" presentations")
        self.refit_button = QPushButton("Refit now")
        self.refit_button.clicked.connect(self.refit_now)
        settings_row = QHBoxLayout()
        widget: QWidget
        for widget in (QLabel("features"), self.features, QLabel("refit every"), self.refit_every, self.refit_button):
            settings_row.addWidget(widget)
        settings_row.addStretch(1)

        self.table = ListingTable(READOUT_COLUMNS)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.itemSelectionChanged.connect(self._focus_selected)

        self.fit_plot = plot_widget(bottom="readout prediction (held out)", left="mean count")
        self.fit_points = pg.ScatterPlotItem(size=6, pen=pg.mkPen(None), brush=pg.mkBrush(30, 140, 60, 170))
        self.fit_plot.addItem(self.fit_points)
        self.designed_points = pg.ScatterPlotItem(symbol="star", size=14, pen=pg.mkPen(FOREGROUND),
                                                  brush=pg.mkBrush(*DESIGNED_COLOUR))
        """The focused unit's images synthesized for it (their provenance says so), over its other points."""
        self.fit_plot.addItem(self.designed_points)
        self.legend = self.fit_plot.addLegend(offset=(8, 8), labelTextColor=FOREGROUND)
        # bars across, the neurons down the left axis: names side by side under upright bars overlap
        self.weight_plot = plot_widget(bottom="weight (per SD)")
        self.weight_plot.getPlotItem().invertY(True)  # the strongest on top
        self.weight_plot.setMinimumHeight(neuron_rows_height(self.weight_plot, SHOWN_NEURONS))
        self.weight_bars = pg.BarGraphItem(x0=[], y=[], width=[], height=0.7, brush=(40, 90, 170))
        self.weight_plot.addItem(self.weight_bars)
        middle = QSplitter(Qt.Orientation.Horizontal)
        middle.setChildrenCollapsible(False)
        for widget in (self.table, self.fit_plot, self.weight_plot):
            middle.addWidget(widget)
        middle.setSizes([460, 320, 320])

        self.direction = ComboBox()
        self.direction.addItems(["max", "min"])
        self.hold_others = QCheckBox("others at baseline")
        self.hold_others.setToolTip("population image: drive this unit while holding every other unit near its "
                                    "mean response")
        self.n_images = QSpinBox(minimum=1, maximum=64, value=4, suffix=" images")  # type: ignore[call-arg]
        self.steps = QSpinBox(minimum=1, maximum=2000, value=100, suffix=" steps")  # type: ignore[call-arg]
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
        self.batch = QSpinBox(minimum=1, maximum=1000, value=20, suffix=" images")  # type: ignore[call-arg]
        self.repeats = QSpinBox(minimum=1, maximum=100, value=2, prefix="x ")  # type: ignore[call-arg]
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
        self.compact_epochs = QSpinBox(  # type: ignore[call-arg]
            minimum=1, maximum=1000, value=DistillSettings().epochs, suffix=" epochs")
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

        self.refit_every.valueChanged.connect(self._refit_every_changed)

    # requests --------------------------------------------------------------------------------
    def set_bank(self, bank: ModelBank) -> None:
        """The loaded bank: its neurons' features are what the readouts read."""
        self.controller.set_bank(bank)

    def _features_changed(self) -> None:
        index = self.features.currentIndex()
        self.controller.set_feature_stage(None if index == 0 else index - 1)

    def _refit_every_changed(self, value: int) -> None:
        self.controller.refit_every = value

    def take_events(self, events: list) -> None:
        """A tick's runner events, for the controller (which refits when due)."""
        self.controller.take_events(events)

    def _choose_natural(self) -> None:
        path = ask_for_images(self, "Natural images for the candidate pool")
        if path:
            self.set_natural(path)

    def set_natural(self, path: str | Path) -> bool:
        """Natural candidates from a folder or zip (their gaudy versions join the pool too)."""
        return self.controller.set_natural(path)

    def refit_now(self) -> None:
        self.controller.refit_now()

    def queue_next_batch(self) -> bool:
        """Choose the next images from the pool (in a job) and hand them to the session's plan."""
        strategy = cast("Strategy", self.strategy.currentText())  # the box lists STRATEGIES; the controller checks
        return self.controller.choose_batch(strategy, self.batch.value(), self.repeats.value())

    def synthesize(self) -> bool:
        """Images for the focused unit through its readout, in a job (cancel keeps the best so far)."""
        units = self.controller.units
        unit = units[self.focus] if self.focus < len(units) else ""
        direction = cast("Direction", self.direction.currentText())  # the box lists max and min
        return self.controller.synthesize(unit, direction, self.n_images.value(),
                                          self.steps.value(), self.hold_others.isChecked(), self.repeats.value(),
                                          self.queue_designed.isChecked())

    def make_compact_models(self) -> bool:
        """Compact models for every unit (in a job); pressed again while they are made, it stops them."""
        return self.controller.make_compact_models(self.compact_epochs.value())

    def cancel(self) -> None:
        self.controller.cancel()

    def stop_jobs(self) -> None:
        """Cancel and wait for every job and start no more (the window is closing)."""
        self.controller.stop()
        self.jobs.stop()

    # jobs ------------------------------------------------------------------------------------
    def _run_job(self, loop_job: LoopJob) -> None:
        """The controller's job in a ``gui.worker.Job`` thread; its ending goes back on the GUI thread."""
        if self.jobs.stopped:
            return
        job = _LoopWorkerJob(loop_job)
        self.jobs.add(job)
        job.progress.connect(self._job_progress)
        job.finished.connect(self._job_finished)
        job.failed.connect(self._job_failed)
        job.called_off.connect(self._job_called_off)
        job.start(self)

    def _job_finished(self, result: object) -> None:
        if (loop_job := self._sending_job()) is not None:
            loop_job.finish(result)

    def _job_failed(self, text: str) -> None:
        if (loop_job := self._sending_job()) is not None:
            loop_job.fail(text)

    def _job_called_off(self) -> None:
        if (loop_job := self._sending_job()) is not None:
            loop_job.call_off()

    def _job_progress(self, done: int, total: int, phase: str = "") -> None:
        if self._sending_job() is not self._shown:
            return  # another job's progress: the bar follows the job it names
        if self._shown is not None:  # the phase named, so a bar that starts again says why
            self.progress.setFormat(f"{self._shown.label}: {phase} %p%" if phase else self._shown.label + " %p%")
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)

    def _sending_job(self) -> LoopJob | None:
        """The controller's job behind the signal being handled (None once the window has let it go)."""
        return getattr(self.sender(), "loop_job", None)

    # drawing ---------------------------------------------------------------------------------
    def _on_event(self, event: object) -> None:
        if isinstance(event, LoopStatus):
            self._show_heading(event)
        elif isinstance(event, ReadoutsFitted):
            self._show_fit()
        elif isinstance(event, FitCleared):
            self._show_fit()
        elif isinstance(event, PoolChosen):
            self.pool_label.setText(f"pool: {event.natural} natural ({event.name}) + gaudy")
        elif isinstance(event, PoolReady):
            self.pool_label.setText(f"pool: {event.size} images ({event.gaudy} gaudy)")
        elif isinstance(event, ImagesDesigned):
            self.add_to_set.emit(event.images)
        elif isinstance(event, CompactModelsMade):
            self.bank_made.emit(str(event.folder), event.folder.parent.name)
        elif isinstance(event, LoopMessage):
            self.message.emit(event.text)
        elif isinstance(event, JobStarted) and event.job.kind != "refit":
            self._show_job(event.job)
        elif isinstance(event, JobEnded) and event.job is self._shown:
            controller = self.controller
            self._show_job(controller.work_job or controller.compact_job or controller.feature_job)
        self._update_buttons()

    def _show_job(self, job: LoopJob | None) -> None:
        """The bar follows ``job`` (None: nothing runs)."""
        self._shown = job
        self.progress.setFormat(IDLE_TEXT if job is None else job.label + " %p%")
        self.progress.setMaximum(1)
        self.progress.setValue(0)

    def _update_buttons(self) -> None:
        """Buttons follow the controller's jobs."""
        controller = self.controller
        busy = controller.work_job is not None
        self.synth_button.setEnabled(controller.fit is not None and not busy)
        self.queue_button.setEnabled(controller.pool_features is not None and not busy)
        self.compact_button.setEnabled(controller.log is not None)
        self.compact_button.setText("Make compact models" if controller.compact_job is None
                                    else "Stop making compact models")
        self.cancel_button.setEnabled(busy or controller.feature_job is not None)

    def _show_heading(self, status: LoopStatus) -> None:
        fitted = (f"fitted on {status.fitted_images} images at {status.fitted_at} presentations"
                  if status.fitted_images is not None else f"first fit after {MIN_IMAGES} images with responses")
        self.heading.setText(f"Readouts of {len(status.units)} recorded unit(s) on {status.features}: "
                             f"{fitted}; {status.presentations} presentations so far.")

    def _show_fit(self) -> None:
        controller = self.controller
        fit, spec, bank = controller.fit, controller.spec, controller.bank
        units = controller.units
        self.focus = (units.index(self.focused) if self.focused in units
                      else min(self.focus, max(len(units) - 1, 0)))
        if fit is None or bank is None:
            self.table.setRowCount(0)
            self.fit_points.setData([], [])
            self.designed_points.setData([], [])
            self.legend.clear()
            self.weight_bars.setOpts(x0=[], y=[], width=[])
            set_title(self.fit_plot, "")  # no fit (a new session or bank): nothing of the last one stays
            set_title(self.weight_plot, "")
            self.weight_plot.getAxis("left").setTicks([[]])
            return
        assert spec is not None  # a fit is made on the spec's features
        rows = readout_rows(fit, controller.units, spec.neuron_ids, spec.owners(bank))
        self.table.show_rows(rows)  # units heard from after this fit wait for the next
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
        rows = selected_rows(self.table)
        if rows and self.table.item(rows[0].row(), 0) is not None:
            unit = cell_text(self.table, rows[0].row(), 0)
            self.focus_unit(unit)
            self.unit_chosen.emit(unit)

    def focus_unit(self, unit: str) -> None:
        """Show ``unit``'s readout in the plots with its row highlighted; synthesis designs for it. A unit the
        readouts do not have yet is focused once they do."""
        self.focused = unit
        if unit in self.controller.units:
            self.focus = self.controller.units.index(unit)
            self._select_focus()
            self._show_focus()

    def _show_focus(self) -> None:
        controller = self.controller
        fit, data, unit, units = controller.fit, controller.fit_data, self.focus, controller.units
        if fit is None or unit >= min(len(units), len(fit.held_out_r)):
            return
        assert data is not None and controller.spec is not None and controller.bank is not None  # as for the fit
        seen = data.responses.answered()[:, unit]  # the images this unit's readout was fitted on
        predicted, measured = fit.held_out[unit], data.responses.means()[:, unit]
        self.fit_points.setData(predicted[seen], measured[seen])
        designed = seen & controller.designed_for(units[unit], data.image_ids)
        self.designed_points.setData(predicted[designed], measured[designed])
        self.legend.clear()
        if designed.any():
            self.legend.addItem(self.designed_points, f"synthesized for {units[unit]}")
        set_title(self.fit_plot, f"{units[unit]}: held-out r = {fit.held_out_r[unit]:.3f}")
        strongest = strongest_weights(fit, controller.spec, controller.bank, unit, SHOWN_NEURONS)
        weights = np.array([w for _, w in strongest])
        self.weight_bars.setOpts(x0=np.minimum(weights, 0), y=np.arange(len(weights)), width=np.abs(weights))
        self.weight_plot.getAxis("left").setTicks([[(k, neuron) for k, (neuron, _) in enumerate(strongest)]])
        set_title(self.weight_plot, f"{units[unit]} reads most from")  # the neurons are named beside
