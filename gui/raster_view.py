"""The Live fits view's spikes: the focused unit's raster and PSTH with its counting window, and every
unit's PSTH at a glance.

It draws the live session's ``SpikeRasters`` (``compactrig.rig.session.rasters``): the raster's rows are
the presentations grouped by image, the images in the order of the unit's predicted response (lowest at
the bottom); the PSTH below it carries the counting window as a region the user drags or types in
(ms from the onset). The buttons hand that window to the session controller (``adopt``), which counts the
unit (or every unit) in it from the spikes kept, or goes back to the source's window; the line it returns
is shown. The latency is estimated off the GUI thread (a ``gui.worker.Job``) when the focus changes or
the presentations have grown by a quarter. A session counted only (a replay) says so instead of plots.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QRectF, pyqtSignal
from PyQt6.QtWidgets import (
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from compactrig.engine.errors import CompactRigError
from compactrig.engine.stats.latency import Latency
from compactrig.gui.plots import plot_widget, set_title
from compactrig.gui.worker import Job, JobList
from compactrig.plugins.sources.base import WINDOW_OPTIONS
from compactrig.rig.session.live import LiveSession
from compactrig.rig.session.rasters import SpikeRasters
from compactrig.rig.session.windows import adopted_for, window_for

PSTH_BIN_S = 0.01
SOURCE_DEFAULT = (float(WINDOW_OPTIONS[0].default), float(WINDOW_OPTIONS[1].default))
"""The window drawn for a unit counted in the source's own before the source has said which (the default)."""
TICK_ROWS = 0.8
"""A spike's tick in the raster: this much of its presentation's row."""
COUNTS_ONLY = "counts only: no spike times kept (replay)"
REESTIMATE_GROWTH = 1.25
"""The latency is estimated again once the presentations have grown by this factor."""

Adopt = Callable[[str | None, tuple[float, float] | None], str]
"""``SessionController.adopt_window``, as the window reaches it: returns its line, raises CompactRigError."""


class RasterView(QWidget):
    """The focused unit's raster, PSTH, counting window and latency; the population's PSTHs."""

    message = pyqtSignal(str)

    def __init__(self, live: LiveSession, adopt: Adopt, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.live = live
        self.adopt = adopt
        self.unit: str | None = None
        self.jobs = JobList()
        self._span_drawn: tuple[float, float] | None = None
        """The span the time axis was last set to (s from the onset)."""
        self._source_shown: tuple[float, float] | None = None
        """The source's window as ``live`` said it when the window was last drawn."""
        self._latency_for: tuple[int, str, int] | None = None
        """(rasters, unit, presentations) the latency shown or being estimated is of."""
        self.estimating = False
        """A latency job is under way."""

        self.empty = QLabel("No spike times yet.")
        self.empty.setWordWrap(True)
        self.raster_plot = plot_widget(left="trials")
        # each spike a tick, all in one path (a scatter item's per-point bookkeeping takes 50 ms per 20k spikes)
        self.raster = pg.PlotCurveItem(pen=pg.mkPen(20, 20, 20, 200), connect="pairs")
        self.raster_plot.addItem(self.raster)
        self.psth_plot = plot_widget(bottom="time from onset (ms)", left="rate (Hz)")
        self.psth_plot.setXLink(self.raster_plot)
        self.psth = pg.PlotDataItem(pen=pg.mkPen((40, 90, 170), width=2), stepMode="center")
        self.psth_plot.addItem(self.psth)
        self.region = pg.LinearRegionItem([v * 1000 for v in SOURCE_DEFAULT], brush=pg.mkBrush(200, 60, 40, 50))
        self.psth_plot.addItem(self.region)
        self.region.sigRegionChanged.connect(self._dragged)
        self.population_plot = plot_widget(bottom="time from onset (ms)", left="units")
        set_title(self.population_plot, "PSTHs, each to its peak")
        self.population = pg.ImageItem()
        self.population.setColorMap(pg.colormap.get("viridis"))
        self.population_plot.addItem(self.population)

        self.start_box, self.end_box = (self._ms_box(value) for value in SOURCE_DEFAULT)
        self.start_box.valueChanged.connect(self._typed)
        self.end_box.valueChanged.connect(self._typed)
        self.latency = QLabel("latency: not estimated yet")
        self.counted = QLabel("")
        self.result = QLabel("")
        self.result.setWordWrap(True)
        self.adopt_unit_button = QPushButton("Adopt for this unit")
        self.adopt_all_button = QPushButton("Adopt for all units")
        self.source_button = QPushButton("Source's window")
        self.adopt_unit_button.clicked.connect(lambda: self._adopt(self.unit, self.counting_window()))
        self.adopt_all_button.clicked.connect(lambda: self._adopt(None, self.counting_window()))
        self.source_button.clicked.connect(self._back_to_source)

        controls = QHBoxLayout()
        controls.addWidget(QLabel("window start (ms)"))
        controls.addWidget(self.start_box)
        controls.addWidget(QLabel("window end (ms)"))
        controls.addWidget(self.end_box)
        for button in (self.adopt_unit_button, self.adopt_all_button, self.source_button):
            controls.addWidget(button)
        controls.addStretch(1)
        plots = QWidget()
        grid = QGridLayout(plots)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.raster_plot, 0, 0)
        grid.addWidget(self.psth_plot, 1, 0)
        grid.addWidget(self.population_plot, 0, 1, 2, 1)
        grid.setColumnStretch(0, 3)
        grid.setColumnStretch(1, 2)
        spikes = QWidget()
        column = QVBoxLayout(spikes)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(plots, 1)
        info = QHBoxLayout()
        info.setSpacing(24)
        info.addWidget(self.counted)
        info.addWidget(self.latency, 1)
        column.addLayout(info)
        column.addLayout(controls)
        column.addWidget(self.result)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.empty)
        self.pages.addWidget(spikes)
        scroll_area = QScrollArea()  # the plots keep readable sizes in a small window: the page scrolls to them
        scroll_area.setWidgetResizable(True)
        scroll_area.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll_area.setWidget(self.pages)
        QVBoxLayout(self).addWidget(scroll_area)

    @staticmethod
    def _ms_box(value_s: float) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setDecimals(0)
        box.setSingleStep(5)
        box.setRange(-5000, 5000)
        box.setKeyboardTracking(False)  # typed digits count on Enter, not one by one
        box.setValue(value_s * 1000)
        return box

    def counting_window(self) -> tuple[float, float]:
        """The window shown (s from the onset)."""
        return self.start_box.value() / 1000, self.end_box.value() / 1000

    def stop_jobs(self) -> None:
        self.jobs.stop()

    def show_unit(self, unit: str | None) -> None:
        """Focus ``unit``: its counting window drawn, its latency estimated, its plots drawn."""
        if unit != self.unit:
            self.unit = unit
            self.result.setText("")
        self._show_window()
        self.redraw()

    def begin(self) -> None:
        """A session (or the same one recounted) was started: the focused unit's window as it now counts."""
        self._show_window()

    def redraw(self) -> None:
        """Draw the focused unit and the population from the live session's rasters."""
        rasters, unit = self.live.rasters, self.unit
        if not rasters.has_spikes or unit is None or unit not in rasters.units:
            shown = self.live.sums is not None and self.live.sums.n_presentations > 0
            self.empty.setText(COUNTS_ONLY if shown and not rasters.has_spikes else "No spike times yet.")
            self.pages.setCurrentWidget(self.empty)
            return
        self.pages.setCurrentIndex(1)
        if self.live.source_window != self._source_shown:  # the source's first response says its window
            self._show_window()
        low, high = rasters.span
        for box in (self.start_box, self.end_box):
            box.blockSignals(True)
            box.setRange(low * 1000, high * 1000)
            box.blockSignals(False)
        if rasters.span != self._span_drawn:  # the whole span, spikes in their time (then zoomed at will)
            self._span_drawn = rasters.span
            self.raster_plot.setXRange(low * 1000, high * 1000, padding=0.02)
        x, y = rasters.raster(unit, self.live.raster_order(unit))
        self.raster.setData(np.repeat(x * 1000, 2), np.stack([y, y + TICK_ROWS], axis=1).ravel(), connect="pairs")
        set_title(self.raster_plot, f"{unit}: {rasters.n_presentations} presentations of "
                                  f"{len(rasters.image_ids)} images")
        centres, rate = rasters.psth(unit, PSTH_BIN_S)
        edges_ms = np.append(centres - PSTH_BIN_S / 2, centres[-1:] + PSTH_BIN_S / 2) * 1000
        self.psth.setData(edges_ms, rate)
        self._draw_population(rasters)
        self._estimate_latency(rasters, unit)

    def _draw_population(self, rasters: SpikeRasters) -> None:
        centres, image = rasters.population_psth(PSTH_BIN_S)
        if image.size:
            self.population.setImage(image.T, levels=(0.0, 1.0))
            start = float(centres[0]) - PSTH_BIN_S / 2
            self.population.setRect(QRectF(start * 1000, 0.0, len(centres) * PSTH_BIN_S * 1000,
                                           float(image.shape[0])))

    def _show_window(self) -> None:
        """The focused unit's adopted window, or the source's for one counted in the source's."""
        source = self._source_shown = self.live.source_window
        adopted = window_for(self.live.windows, self.unit) if self.unit is not None else None
        self._set_window(adopted or source or SOURCE_DEFAULT)
        every = self.unit is not None and adopted_for(self.live.windows, self.unit) is None
        self.source_button.setText("Source's window for all units" if every else "Source's window")
        self.source_button.setEnabled(adopted is not None)
        if self.unit is None:
            self.counted.setText("")
        elif adopted is not None:
            scope = "every unit's window" if every else "adopted"
            self.counted.setText(f"{self.unit} counted in {_ms(adopted)} ({scope})")
        else:
            self.counted.setText(f"{self.unit} counted in the source's window"
                                 + (f" ({_ms(source)})" if source is not None else ""))

    def _set_window(self, window: tuple[float, float]) -> None:
        for box, value in zip((self.start_box, self.end_box), window):
            box.blockSignals(True)
            box.setValue(value * 1000)
            box.blockSignals(False)
        self.region.blockSignals(True)
        self.region.setRegion([value * 1000 for value in window])
        self.region.blockSignals(False)

    def _typed(self) -> None:
        self.region.blockSignals(True)
        self.region.setRegion([value * 1000 for value in self.counting_window()])
        self.region.blockSignals(False)

    def _dragged(self) -> None:
        start, end = self.region.getRegion()
        for box, value in ((self.start_box, start), (self.end_box, end)):
            box.blockSignals(True)
            box.setValue(float(value))  # the region is drawn in ms
            box.blockSignals(False)

    def _back_to_source(self) -> None:
        """The focused unit back to the source's counts: its own window dropped, or the one for every unit
        when that is what counts it."""
        if self.unit is not None:
            self._adopt(adopted_for(self.live.windows, self.unit), None)

    def _adopt(self, unit: str | None, window: tuple[float, float] | None) -> None:
        try:
            line = self.adopt(unit, window)
        except CompactRigError as error:
            line = str(error)
        self.result.setText(line)
        self.message.emit(line)

    def _estimate_latency(self, rasters: SpikeRasters, unit: str) -> None:
        """Estimate ``unit``'s latency in a job when it is not the one shown or the presentations grew."""
        n = rasters.n_presentations
        last = self._latency_for
        if self.estimating or self.jobs.stopped or (
                last is not None and last[:2] == (id(rasters), unit) and n < last[2] * REESTIMATE_GROWTH):
            return
        self._latency_for, self.estimating = (id(rasters), unit, n), True
        job = self.jobs.add(Job(lambda progress, cancelled: rasters.latency(unit)))
        job.finished.connect(lambda latency: self._show_latency(unit, latency))
        job.failed.connect(self._latency_failed)
        job.start(self)

    def _latency_failed(self, text: str) -> None:
        self.estimating = False
        self.latency.setText(f"latency: {text}")

    def _show_latency(self, unit: str, latency: Latency) -> None:
        self.estimating = False
        if unit != self.unit:  # focused elsewhere meanwhile: that one's is estimated on the next redraw
            self._latency_for = None
            self.redraw()
            return
        if math.isfinite(latency.latency_s):
            interval = (f" [{latency.low_s * 1000:.0f}, {latency.high_s * 1000:.0f}]"
                        if math.isfinite(latency.low_s) else "")
            self.latency.setText(f"latency {latency.latency_s * 1000:.0f} ms{interval} "
                                 f"from {latency.n_presentations} presentations")
        else:
            self.latency.setText(f"no latency: {latency.reason}")


def _ms(window: tuple[float, float]) -> str:
    return f"{window[0] * 1000:g}..{window[1] * 1000:g} ms"
