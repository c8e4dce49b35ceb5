"""The Live fits view: model prediction versus measured response, per unit and for the population.

The view draws the session controller's one accumulator (``compactrig.rig.session.live.LiveSession``,
whose ``PopulationFit`` computes every unit's r, affine fit and r2_ER at once): the Rig view's 25 Hz
timer hands on each tick's events once the live session has them (never one redraw per sample).
It draws the focused unit's scatter
(one point per image: its mean response) with the affine line, its running r (with the
Fisher-z 95% band) and r2_ER over presentations, and a sortable table of all units; beside those, on
the Spikes page (``compactrig.gui.raster_view``), its raster, PSTH and counting window.
Below, the closed-loop panel (``compactrig.gui.closed_loop_panel``) fits readouts for every unit,
mapped or not, and designs and queues images for them.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QPixmap
from PyQt6.QtWidgets import (
    QDialog,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from compactrig.engine.files.natural_order import natural_key
from compactrig.engine.models.bank import ModelBank
from compactrig.engine.stats.population_fit import PopulationFit, PopulationSummary
from compactrig.gui.closed_loop_panel import ClosedLoopPanel
from compactrig.gui.plots import plot_widget, set_title
from compactrig.gui.qt_parts import cell_text, horizontal_header, selected_rows
from compactrig.gui.raster_view import Adopt, RasterView
from compactrig.gui.worker import Job, JobList
from compactrig.rig.session.events import ImagesAdded, ResponseStored, SessionStarted, UnitsDiscovered
from compactrig.rig.session.live import LiveSession
from compactrig.rig.session.recent import sessions_root
from compactrig.rig.session.report import write_report

TABLE_COLUMNS = ("unit", "model", "shown", "images", "r", "r2_ER", "slope")
TABLE_WIDTH = 320
"""The units table's least width (px): narrower, its seven columns shrink to elided stubs."""


R_COLOUR, R2_COLOUR = (40, 90, 170), (30, 140, 60)
HISTORY_KEY = "&nbsp;&nbsp;&nbsp;".join(
    f"<span style='color:#{red:02x}{green:02x}{blue:02x}'>&#9473; {name}</span>"
    for (red, green, blue), name in ((R_COLOUR, "r (band: 95%)"), (R2_COLOUR, "r2_ER")))


class NameItem(QTableWidgetItem):
    """A table cell that sorts names as people count them (``unit2`` before ``unit10``)."""

    def __lt__(self, other: QTableWidgetItem) -> bool:
        return natural_key(self.text()) < natural_key(other.text())


class NumberItem(QTableWidgetItem):
    """A table cell that sorts by its number (NaN last), not by its text; updated in place."""

    def __init__(self, digits: int) -> None:
        super().__init__("")
        self.digits = digits
        self.value = float("inf")

    def show(self, value: float) -> None:
        finite = bool(np.isfinite(value))
        self.value = float(value) if finite else float("inf")
        self.setText(f"{value:.{self.digits}f}" if finite else "")

    def __lt__(self, other: QTableWidgetItem) -> bool:
        return self.value < getattr(other, "value", float("inf"))


NUMBER_DIGITS = (0, 0, 3, 3, 3)
"""Decimals of the table's number columns (presentations, images, r, r2_ER, slope)."""
NUMBER_WIDEST = ("000000", "000000", "-0.000", "-0.000", "-00.000")
"""The widest text each number column is sized for."""
CELL_PADDING = 14
"""Room (px) beside a cell's text; a header's also holds the sort arrow."""


class LiveFitsTab(QWidget):
    """Scatter and running fit of the focused unit; a table with one row per unit."""

    message = pyqtSignal(str)
    open_requested = pyqtSignal(object)
    """A past session's folder the user chose to look at (the Rig view reads it)."""

    def __init__(self, live: LiveSession, adopt: Adopt, parent: QWidget | None = None) -> None:
        """``adopt``: the session controller's ``adopt_window``, as the window reaches it."""
        super().__init__(parent)
        self.live = live
        """The session shown (running or past), fed by the session controller."""
        self.jobs = JobList()
        self.report_window: QDialog | None = None
        self.focus = 0
        """The row in ``fit.units`` the fit plots show: the focused unit, or the last one with a model."""
        self.focused: str | None = None
        """The one focused unit of the view: highlighted in both tables, its spikes and readout drawn."""
        self.cells: list[list[NumberItem]] = []
        """Per unit (in ``fit.units`` order): its number cells, wherever sorting has moved them."""

        self.heading = QLabel("No session yet: start one in the Rig view (the simulated source needs no rig).")
        self.heading.setWordWrap(True)
        self.table = QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels(TABLE_COLUMNS)
        # columns sized once per session to their widest text (``_fit_columns``): a narrow table scrolls sideways
        # rather than cut "-0.0…" (Qt's ResizeToContents measures every cell on each update: 10x the redraw)
        horizontal_header(self.table).setStretchLastSection(True)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.itemSelectionChanged.connect(self._focus_selected)
        self.table.setMinimumWidth(TABLE_WIDTH)

        self.scatter_plot = plot_widget(bottom="model prediction", left="mean count")
        self.scatter = pg.ScatterPlotItem(size=7, pen=pg.mkPen(None), brush=pg.mkBrush(40, 90, 170, 170))
        self.line = pg.PlotDataItem(pen=pg.mkPen((200, 60, 40), width=2))
        self.scatter_plot.addItem(self.scatter)
        self.scatter_plot.addItem(self.line)

        self.history_plot = plot_widget(bottom="presentations", left="r  /  r2_ER")
        # the key is the title, outside the data: wherever a legend sits inside, some r curve runs under it
        set_title(self.history_plot, HISTORY_KEY)
        self.r_low = pg.PlotDataItem(pen=pg.mkPen(None))
        self.r_high = pg.PlotDataItem(pen=pg.mkPen(None))
        self.band = pg.FillBetweenItem(self.r_low, self.r_high, brush=pg.mkBrush(40, 90, 170, 60))
        self.r_curve = pg.PlotDataItem(pen=pg.mkPen(R_COLOUR, width=2))
        self.r2_curve = pg.PlotDataItem(pen=pg.mkPen(R2_COLOUR, width=2))
        for item in (self.r_low, self.r_high, self.band, self.r_curve, self.r2_curve):
            self.history_plot.addItem(item)

        plots = QSplitter(Qt.Orientation.Horizontal)  # side by side: the closed-loop panel below keeps its room
        plots.setChildrenCollapsible(False)
        plots.addWidget(self.scatter_plot)
        plots.addWidget(self.history_plot)
        self.spikes = RasterView(live, adopt)
        self.spikes.message.connect(self.message)
        self.pages = QTabWidget()
        self.pages.addTab(plots, "Prediction vs response")
        self.pages.addTab(self.spikes, "Spikes")
        columns = self.columns = QSplitter(Qt.Orientation.Horizontal)
        columns.setChildrenCollapsible(False)
        columns.addWidget(self.table)
        columns.addWidget(self.pages)
        columns.setSizes([420, 680])
        self.loop = ClosedLoopPanel(live)
        self.loop.message.connect(self.message)
        self.loop.unit_chosen.connect(self.focus_unit)
        loop_box = QGroupBox("Closed loop: readouts of the bank for every recorded unit")
        QVBoxLayout(loop_box).addWidget(self.loop)
        rows = self.rows = QSplitter(Qt.Orientation.Vertical)
        rows.setChildrenCollapsible(False)  # no plot is squeezed below what it needs to be read
        rows.addWidget(columns)
        rows.addWidget(loop_box)
        rows.setSizes([380, 420])
        self.pages.currentChanged.connect(self._room_for_page)
        self.scroll_area = QScrollArea()
        """Below the plots' readable sizes (a small window) the view scrolls instead of squeezing them."""
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QScrollArea.Shape.NoFrame)
        self.scroll_area.setWidget(rows)
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(self.heading, 1)
        self.open_button = QPushButton("Open a past session…")
        self.open_button.clicked.connect(self._choose_session)
        self.report_button = QPushButton("Report")
        self.report_button.setToolTip("Draw the shown session's report (fits, dropped frames, timeline) as a PNG "
                                      "in its folder")
        self.report_button.setEnabled(False)
        self.report_button.clicked.connect(self._write_report)
        top.addWidget(self.open_button)
        top.addWidget(self.report_button)
        layout.addLayout(top)
        layout.addWidget(self.scroll_area, 1)

    @property
    def fit(self) -> PopulationFit | None:
        """The mapped units' fits of the shown session."""
        return self.live.fit

    @property
    def summary(self) -> PopulationSummary | None:
        return self.live.summary

    def set_bank(self, bank: ModelBank) -> None:
        """The loaded bank (what the closed-loop readouts read)."""
        self.loop.set_bank(bank)

    def stop_jobs(self) -> None:
        self.jobs.stop()
        self.spikes.stop_jobs()
        self.loop.stop_jobs()

    def _choose_session(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Session folder to look at (read-only)", str(sessions_root()))
        if folder:
            self.open_requested.emit(folder)

    def _write_report(self) -> None:
        """Draw the report in a job (Matplotlib takes a second or two) and show it when done."""
        folder = self.live.folder
        assert folder is not None  # the button is enabled once a session is shown
        self.report_button.setEnabled(False)
        job = self.jobs.add(Job(lambda progress, cancelled: write_report(folder, folder / "report.png")))
        job.finished.connect(self._show_report)
        job.failed.connect(self._report_failed)
        job.start(self)

    def _report_failed(self, text: str) -> None:
        self.report_button.setEnabled(True)
        self.message.emit(text)

    def _show_report(self, path) -> None:
        self.report_button.setEnabled(True)
        self.message.emit(f"Report written to {path}")
        view = QLabel()
        view.setPixmap(QPixmap(str(path)))
        scroll = QScrollArea()
        scroll.setWidget(view)
        self.report_window = QDialog(self)
        self.report_window.setWindowTitle(f"Report: {path.parent.name}")
        QVBoxLayout(self.report_window).addWidget(scroll)
        self.report_window.resize(min(view.pixmap().width() + 40, 1400), view.pixmap().height() + 60)
        self.report_window.show()

    def take_events(self, events: list) -> None:
        """A tick's worth of session events, already in the live session: a new session (or a unit mapped
        mid-session) gets its table rows; whatever changed is drawn once."""
        fit = self.live.fit
        if fit is not None:
            if any(isinstance(event, SessionStarted) for event in events) or len(self.cells) != len(fit.units):
                self._begin(fit)
            if any(isinstance(event, (SessionStarted, ResponseStored, UnitsDiscovered, ImagesAdded))
                   for event in events):
                self._redraw()
        self.loop.take_events(events)

    def _begin(self, fit: PopulationFit) -> None:
        """The session's units with a model: empty plots, one table row each; the unit focused stays so
        when it is still there (the same session recounted in a window just adopted)."""
        self.report_button.setEnabled(True)
        if self.focused not in fit.units and self.focused not in self.live.unmapped:
            self.focused = fit.units[0] if fit.units else None
        self.focus = fit.units.index(self.focused) if self.focused in fit.units else 0
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(fit.units))
        self.cells = []
        for row, unit in enumerate(fit.units):
            self.table.setItem(row, 0, NameItem(unit))
            self.table.setItem(row, 1, NameItem(self.live.unit_map.get(unit, "")))
            self.cells.append([NumberItem(digits) for digits in NUMBER_DIGITS])
            for column, item in enumerate(self.cells[-1], start=2):
                self.table.setItem(row, column, item)
        self.table.setSortingEnabled(True)
        self._fit_columns()
        self._select_focused()
        if self.focused is not None:
            self.loop.focus_unit(self.focused)
        self.spikes.begin()

    def _fit_columns(self) -> None:
        """Each column as wide as its header, its names or the widest number it shows."""
        cells, header = self.table.fontMetrics(), horizontal_header(self.table)
        for column, title in enumerate(TABLE_COLUMNS):
            texts = ([NUMBER_WIDEST[column - 2]] if column >= 2
                     else [cell_text(self.table, row, column) for row in range(self.table.rowCount())])
            widest = max([cells.horizontalAdvance(text) for text in texts]
                         + [header.fontMetrics().horizontalAdvance(title) + CELL_PADDING])
            self.table.setColumnWidth(column, widest + CELL_PADDING)

    def _redraw(self) -> None:
        fit, summary, unit_map = self.live.fit, self.live.summary, self.live.unit_map
        assert fit is not None and summary is not None  # drawn once a session's fit is made
        unmapped = f"; {len(self.live.unmapped)} unit(s) have no model" if self.live.unmapped else ""
        self.heading.setText(f"{len(fit.units)} unit(s) with a model, {fit.n_presentations} presentations of "
                             f"{len(fit.image_ids)} images{unmapped}. Click a unit to focus it.")
        self._fill_table(summary)
        if not fit.units:
            return
        unit = self.focus
        x, y, _ = fit.points(unit)
        self.scatter.setData(x, y)
        self.line.setData(*fit.fit_line(unit, summary))
        name = fit.units[unit]
        set_title(self.scatter_plot, f"{name} ({unit_map.get(name, '')}): r = {summary.r[unit]:.3f}, "
                                   f"{summary.n_images[unit]} images")
        history = fit.history.of_unit(unit)
        finite = np.isfinite(history["r"])
        n = history["n_presentations"][finite]
        self.r_low.setData(n, history["r_low"][finite])
        self.r_high.setData(n, history["r_high"][finite])
        self.r_curve.setData(n, history["r"][finite], symbol="o" if len(n) == 1 else None, symbolSize=6,
                             symbolBrush=R_COLOUR, symbolPen=None)  # a session reopened: its one point
        defined = np.isfinite(history["r2_er"])
        self.r2_curve.setData(history["n_presentations"][defined], history["r2_er"][defined],
                              symbol="o" if np.count_nonzero(defined) == 1 else None, symbolSize=6,
                              symbolBrush=R2_COLOUR, symbolPen=None)
        shown = self.focused or name
        if shown != self.spikes.unit:
            self.spikes.show_unit(shown)
        else:
            self.spikes.redraw()

    def _fill_table(self, summary: PopulationSummary) -> None:
        """Update the cells in place (new items or resizing to contents would cost ms per cell)."""
        sorting = self.table.isSortingEnabled()
        self.table.setSortingEnabled(False)
        self.table.setUpdatesEnabled(False)
        columns = (summary.n_presentations, summary.n_images, summary.r, summary.r2_er, summary.slope)
        for unit, cells in enumerate(self.cells):
            for item, values in zip(cells, columns):
                item.show(float(values[unit]))
        self.table.setUpdatesEnabled(True)
        self.table.setSortingEnabled(sorting)

    def _focus_selected(self) -> None:
        rows = selected_rows(self.table)
        if rows and self.fit is not None:
            self.focus_unit(cell_text(self.table, rows[0].row(), 0))

    def _room_for_page(self) -> None:
        """The Spikes page (raster above PSTH, then its window's controls) is taller than the fits: while it is
        shown, the row above the closed-loop panel is kept tall enough to show it whole (the view scrolls to
        the panel when the window is too small for both)."""
        spikes = self.pages.currentWidget() is self.spikes
        bar = self.pages.tabBar()
        need = self.spikes.pages.minimumSizeHint().height() + (bar.sizeHint().height() if bar else 0) + 24
        self.columns.setMinimumHeight(need if spikes else 0)

    def focus_unit(self, unit: str) -> None:
        """Focus ``unit`` in the whole view, whichever table it was chosen in: its row highlighted in both, its
        fit (if it has a model), spikes and readout drawn. A unit with no model has no row in the first table;
        the fit plots keep the last unit with one, named in their title."""
        self.focused = unit
        if self.fit is not None and unit in self.fit.units:
            self.focus = self.fit.units.index(unit)
        self._select_focused()
        if self.loop.focused != unit:
            self.loop.focus_unit(unit)
        if self.summary is not None and self.fit is not None and self.fit.units:
            self._redraw()
        else:
            self.spikes.show_unit(unit)

    def _select_focused(self) -> None:
        """Highlight the focused unit's row (none when it has no model), without it counting as a new choice."""
        self.table.blockSignals(True)
        self.table.clearSelection()
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0) is not None and cell_text(self.table, row, 0) == self.focused:
                self.table.selectRow(row)
        self.table.blockSignals(False)
