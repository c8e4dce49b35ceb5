"""The Models tab: choose a bank, find a neuron, see its facts and its predicted-response distribution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from compactrig.engine.errors import CompactRigError
from compactrig.engine.files.image_files import ImageCollection, read_images
from compactrig.engine.models.bank import ModelBank, load_bank
from compactrig.engine.models.fast_predict import Cancelled, Predictor
from compactrig.engine.models.fetch import fetch_models
from compactrig.engine.stats.summaries import ResponseDistribution, response_distribution
from compactrig.gui.combo_box import ComboBox
from compactrig.gui.image_dialog import ask_for_images
from compactrig.gui.plots import plot_widget
from compactrig.gui.qt_parts import cell_text, horizontal_header, selected_rows
from compactrig.gui.worker import Job, JobList
from compactrig.stimuli.probes import standard_probes

ASK_FOR_FOLDER = "folder…"
"""The choice that opens a folder dialog; banks made or opened in this window are listed above it."""
BANK_CHOICES = ("demo", "published", ASK_FOR_FOLDER)


def probe_collection() -> ImageCollection:
    probes = standard_probes()
    return ImageCollection([p.probe_id for p in probes], np.stack([p.pixels for p in probes]))


class ModelsTab(QWidget):
    """Bank, neuron list with search, per-neuron facts and predicted-response histogram."""

    message = pyqtSignal(str)
    bank_changed = pyqtSignal(object)
    images_changed = pyqtSignal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bank: ModelBank | None = None
        self.bank_spec: str | None = None
        """How the bank was named (demo, published or a folder): what settings remember."""
        self.added_banks: list[tuple[str, str]] = []
        """Bank folders offered in the choice (compact models made from a session, folders opened), as
        (folder, name): the settings keep them for the next start."""
        self.images = probe_collection()
        self.images_name = "generated probes"
        self.job: Job | None = None
        self.jobs = JobList()
        self.distribution: ResponseDistribution | None = None

        self.bank_choice = ComboBox()
        self.bank_choice.setSizeAdjustPolicy(ComboBox.SizeAdjustPolicy.AdjustToContents)
        for choice in BANK_CHOICES:
            self.bank_choice.addItem(choice, choice)
        self.bank_choice.activated.connect(self._bank_chosen)
        self.bank_choice.setMinimumWidth(self.bank_choice.sizeHint().width())
        self._shown_choice = 0
        """Index of the bank choice that is loaded (the combo returns to it when a choice fails)."""
        self.fetch_button = QPushButton("Fetch published models")
        self.fetch_button.setToolTip("Download the 219 published models (as `compactrig models fetch`)")
        self.fetch_button.clicked.connect(self.fetch)
        self.images_button = QPushButton("Images for the distribution…")
        self.images_button.clicked.connect(self._choose_images)
        self.images_label = QLabel()
        top = QHBoxLayout()
        for widget in (QLabel("Bank:"), self.bank_choice, self.fetch_button, self.images_button, self.images_label):
            top.addWidget(widget)
        top.addStretch(1)

        self.search = QLineEdit(placeholderText="search neurons (id or description)")  # type: ignore[call-overload]
        self.search.textChanged.connect(self._filter)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["id", "description", "parameters", "filters per stage"])
        horizontal_header(self.table).setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.itemSelectionChanged.connect(self._neuron_chosen)
        left = QVBoxLayout()
        left.addWidget(self.search)
        left.addWidget(self.table)

        self.facts = QLabel("Choose a neuron.")
        self.facts.setWordWrap(True)
        self.facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.plot = plot_widget(bottom="predicted response", left="images")
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        right = QVBoxLayout()
        right.addWidget(self.facts)
        right.addWidget(self.plot, 1)
        right.addWidget(self.progress)

        columns = QHBoxLayout()
        columns.addLayout(left, 3)
        columns.addLayout(right, 4)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(columns, 1)
        self._update_images_label()

    def set_bank(self, spec: str | Path | None) -> bool:
        """Load a bank (demo, published or a folder); a bad one leaves the current bank and says why."""
        try:
            bank = load_bank(spec)
        except CompactRigError as error:
            self.message.emit(str(error))
            return False
        self.bank = bank
        self.bank_spec = None if spec is None else str(spec)
        self._show_choice(self.bank_spec)
        self.table.clearSelection()  # so that choosing row 0 again draws the new bank's neuron, not the old one's
        self.table.setRowCount(len(bank))
        for row, neuron in enumerate(bank.neurons):
            cells = [neuron.neuron_id, neuron.label, str(neuron.n_params), " ".join(map(str, neuron.filters))]
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(text))
        self._filter(self.search.text())
        self.message.emit(f"Bank {bank.name}: {len(bank)} neurons ({bank.source})")
        self.bank_changed.emit(bank)
        if len(bank):
            self.table.selectRow(0)
        return True

    def fetch(self) -> Job:
        """Download the published bank in a job (cancel keeps the old one), then load it."""
        def work(progress, cancelled):
            def bytes_done(done: int, total: int | None, phase: str = "") -> None:
                if cancelled():
                    raise Cancelled()
                progress(done, total)
            fetch_models(progress=bytes_done)
            return "published"

        self.progress.setVisible(True)
        self.fetch_button.setEnabled(False)
        job = Job(work)
        self.jobs.add(job)
        job.progress.connect(self._show_progress)
        job.finished.connect(self._fetched)
        job.failed.connect(self._job_failed)
        job.start(self)
        self.message.emit("Fetching the published models…")
        return job

    def _fetched(self, spec: str) -> None:
        self.progress.setVisible(False)
        self.fetch_button.setEnabled(True)
        self.set_bank(spec)

    def add_bank_choice(self, folder: str, name: str) -> None:
        """Offer a bank folder (compact models just made, say) in the bank choice, above "folder…"."""
        if self.bank_choice.findData(folder) < 0:
            self.added_banks.append((folder, name))
            self.bank_choice.insertItem(self.bank_choice.count() - 1, name, folder)
            self.bank_choice.setItemData(self.bank_choice.count() - 2, folder, Qt.ItemDataRole.ToolTipRole)
            self.bank_choice.setMinimumWidth(self.bank_choice.sizeHint().width())  # no layout cuts a bank's name

    def _bank_chosen(self, index: int) -> None:
        """Load the chosen bank; if it cannot be loaded, the choice goes back to the bank still shown."""
        choice = self.bank_choice.itemData(index)
        if choice == ASK_FOR_FOLDER:
            folder = QFileDialog.getExistingDirectory(self, "Folder with models_torch/ and nums_filters/")
            if folder:
                self.set_bank(folder)
        else:
            self.set_bank(None if choice == "demo" else choice)
        self.bank_choice.setCurrentIndex(self._shown_choice)  # the loaded bank (the old one if this one failed)

    def _show_choice(self, spec: str | None) -> None:
        """The bank choice names the loaded bank (a folder gets its own entry)."""
        spec = spec or "demo"
        if self.bank_choice.findData(spec) < 0:
            self.add_bank_choice(spec, Path(spec).name)
        self._shown_choice = self.bank_choice.findData(spec)
        self.bank_choice.setCurrentIndex(self._shown_choice)

    def _choose_images(self) -> None:
        path = ask_for_images(self, "Images")
        if path:
            self.set_images(path)

    def set_images(self, path: str | Path) -> bool:
        try:
            self.images = read_images(path)
        except CompactRigError as error:
            self.message.emit(str(error))
            return False
        self.images_name = Path(path).name
        self._update_images_label()
        self.images_changed.emit(self.images)
        self._neuron_chosen()
        return True

    def _update_images_label(self) -> None:
        self.images_label.setText(f"distribution over {len(self.images)} images ({self.images_name})")

    def _filter(self, text: str) -> None:
        """Hide the neurons that do not match; a hidden selection moves to the first match (or is cleared)."""
        needle = text.strip().lower()
        for row in range(self.table.rowCount()):
            haystack = " ".join(cell_text(self.table, row, c).lower() for c in (0, 1))
            self.table.setRowHidden(row, bool(needle) and needle not in haystack)
        selected = selected_rows(self.table)
        if selected and self.table.isRowHidden(selected[0].row()):
            visible = [r for r in range(self.table.rowCount()) if not self.table.isRowHidden(r)]
            if visible:
                self.table.selectRow(visible[0])
            else:
                self.table.clearSelection()
                self.facts.setText(f"No neuron matches {text.strip()!r}.")

    def selected_neuron(self) -> str | None:
        rows = selected_rows(self.table)
        return cell_text(self.table, rows[0].row(), 0) if rows else None

    def _neuron_chosen(self) -> None:
        neuron_id = self.selected_neuron()
        if self.jobs.stopped or neuron_id is None or self.bank is None:
            return
        info = self.bank.info(neuron_id)
        self.facts.setText(f"<b>{neuron_id}</b> {info.label}<br>{info.n_params} parameters; filters per stage "
                           f"{', '.join(map(str, info.filters))}<br>predicting {len(self.images)} images…")
        if self.job is not None:
            self.job.cancel()
        bank, images = self.bank, self.images

        def work(progress, cancelled):
            values = Predictor(bank).predict(images.pixels, [neuron_id], progress=progress, cancelled=cancelled)
            return neuron_id, response_distribution(values[0], images.ids)

        self.progress.setVisible(True)
        self.job = Job(work)
        self.jobs.add(self.job)
        self.job.progress.connect(self._show_progress)
        self.job.finished.connect(self._show_distribution)
        self.job.failed.connect(self._job_failed)
        self.job.start(self)

    def _show_progress(self, done: int, total: int, phase: str = "") -> None:
        self.progress.setMaximum(total)
        self.progress.setValue(done)

    def stop_jobs(self) -> None:
        """Cancel and wait for every running job, and start no more (the window is closing)."""
        self.jobs.stop()

    def _show_distribution(self, result: tuple[str, ResponseDistribution]) -> None:
        neuron_id, distribution = result
        if neuron_id != self.selected_neuron():
            return  # an older request; the current one is on its way
        self.progress.setVisible(False)
        self.distribution = distribution
        assert self.bank is not None  # its neuron is still the one selected: the bank is still open
        info = self.bank.info(neuron_id)
        self.facts.setText(f"<b>{neuron_id}</b> {info.label}<br>{info.n_params} parameters; filters per stage "
                           f"{', '.join(map(str, info.filters))}<br>predicted responses to "
                           f"{len(self.images)} images ({self.images_name}): {distribution.describe()}")
        self.plot.clear()
        self.plot.addItem(pg.PlotDataItem(distribution.edges, distribution.counts, stepMode="center",
                                          fillLevel=0, brush=(70, 120, 200, 160), pen=pg.mkPen((40, 80, 160))))

    def _job_failed(self, message: str) -> None:
        self.progress.setVisible(False)
        self.fetch_button.setEnabled(True)
        self.message.emit(message)
