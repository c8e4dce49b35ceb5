"""The Stimulus set view: thumbnails with manifest columns; sort, filter, reorder, remove, save, open.

The table's row order *is* the presentation-list order: sorting by a column or moving rows
reorders the set (through ``StimulusSet.reordered``); the filter only hides rows.
"""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import QSize, pyqtSignal
from PyQt6.QtGui import QIcon, QImage, QPixmap
from PyQt6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from compactrig.engine.errors import CompactRigError
from compactrig.engine.models.bank import ModelBank
from compactrig.gui.qt_parts import cell_text, horizontal_header, selected_rows, vertical_header
from compactrig.gui.worker import Job, JobList
from compactrig.stimuli.probes import probe_family_set
from compactrig.stimuli.stimulus_set import StimulusSet, annotate

COLUMNS = ("image", "id", "kind", "target", "seed", "source", "target response")
THUMBNAIL = 56


def thumbnail(pixels) -> QIcon:
    """A Qt icon of a uint8 (112, 112, 3) image (copied, so the array may go away)."""
    image = QImage(pixels.tobytes(), pixels.shape[1], pixels.shape[0], 3 * pixels.shape[1],
                   QImage.Format.Format_RGB888).copy()
    return QIcon(QPixmap.fromImage(image))


class StimulusSetTab(QWidget):
    """Edits one stimulus set; ``message`` reports problems and saves to the window."""

    message = pyqtSignal(str)
    saved = pyqtSignal(object)
    """The set's folder, once what is shown is on disk (opened or saved): a session can use it."""
    changed = pyqtSignal(object)
    """The set as now shown (a ``StimulusSet``), after every edit, open or addition."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.stimulus_set = StimulusSet.empty()
        self.folder: Path | None = None
        self._on_disk = self.stimulus_set
        """The set as last opened or saved (every edit makes a new set): anything else is unsaved."""
        self.bank: ModelBank | None = None
        self.jobs = JobList()
        buttons = QHBoxLayout()
        self.open_button, self.save_button = QPushButton("Open…"), QPushButton("Save")
        self.remove_button = QPushButton("Remove selected")
        self.probes_button = QPushButton("Add probes")
        self.probes_button.setToolTip("Add 30 gratings, dot lattices and colour blobs: images that drive units "
                                      "differently, so fits of responses against predictions mean something")
        self.up_button, self.down_button = QPushButton("Move up"), QPushButton("Move down")
        self.predict_button = QPushButton("Predict all neurons")
        self.predict_button.setToolTip("Add every neuron of the Models view's bank to each image's predicted "
                                       "responses (a record holds its target's and its session's by default); "
                                       "Save to keep them")
        # clicked(bool) would land in a slot's first parameter: every button gets a slot without one
        self.open_button.clicked.connect(self._open)
        self.save_button.clicked.connect(self._save_clicked)
        self.remove_button.clicked.connect(self._remove_clicked)
        self.probes_button.clicked.connect(self._add_probes)
        self.up_button.clicked.connect(self._up_clicked)
        self.down_button.clicked.connect(self._down_clicked)
        self.predict_button.clicked.connect(self.predict_all)
        for button in (self.open_button, self.save_button, self.probes_button, self.remove_button, self.up_button,
                       self.down_button, self.predict_button):
            buttons.addWidget(button)
        self.filter = QLineEdit(placeholderText="filter: id, kind or target")  # type: ignore[call-overload]
        self.filter.textChanged.connect(self._apply_filter)
        buttons.addWidget(self.filter, 1)
        self.summary = QLabel("No stimulus set open.")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setIconSize(QSize(THUMBNAIL, THUMBNAIL))
        vertical_header(self.table).setDefaultSectionSize(THUMBNAIL + 4)
        horizontal_header(self.table).setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        horizontal_header(self.table).setSectionsClickable(True)
        horizontal_header(self.table).sectionClicked.connect(self.sort_by)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)

    def open(self, folder: str | Path) -> bool:
        try:
            self.stimulus_set = StimulusSet.load(folder)
        except CompactRigError as error:
            self.message.emit(str(error))
            return False
        self.folder = Path(folder)
        self._on_disk = self.stimulus_set
        self._fill()
        self.saved.emit(self.folder)
        return True

    def _open(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Stimulus-set folder")
        if folder:
            self.open(folder)

    def _fill(self) -> None:
        self.changed.emit(self.stimulus_set)
        records = self.stimulus_set.records
        self.table.setRowCount(len(records))
        for row, (record, pixels) in enumerate(zip(records, self.stimulus_set.pixels)):
            response = record.predicted.get(record.target_neuron) if record.target_neuron else None
            cells = ["", record.image_id, record.kind, record.target_neuron or "",
                     "" if record.seed is None else str(record.seed), record.source_image or "",
                     "" if response is None else f"{response:.3f}"]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column == 0:
                    item.setIcon(thumbnail(pixels))
                self.table.setItem(row, column, item)
        where = f" in {self.folder}" if self.folder else ""
        self.summary.setText(f"{len(records)} images{where}; the row order is the presentation order")
        self._apply_filter(self.filter.text())

    def _apply_filter(self, text: str) -> None:
        needle = text.strip().lower()
        for row in range(self.table.rowCount()):
            haystack = " ".join(cell_text(self.table, row, c).lower() for c in (1, 2, 3))
            self.table.setRowHidden(row, bool(needle) and needle not in haystack)

    def _selected_rows(self) -> list[int]:
        return sorted({index.row() for index in selected_rows(self.table)})

    def sort_by(self, column: int) -> None:
        """Order the set by a column's text (numbers numerically), as shown."""
        if column == 0 or len(self.stimulus_set) == 0:
            return
        def key(row: int):
            text = cell_text(self.table, row, column)
            try:
                return (0, float(text), "")
            except ValueError:
                return (1, 0.0, text)
        order = sorted(range(self.table.rowCount()), key=key)
        self.stimulus_set = self.stimulus_set.select(order)
        self._fill()

    def move_selected(self, step: int) -> None:
        rows = self._selected_rows()
        if len(rows) != 1 or not 0 <= rows[0] + step < len(self.stimulus_set):
            return
        order = list(range(len(self.stimulus_set)))
        order[rows[0]], order[rows[0] + step] = order[rows[0] + step], order[rows[0]]
        self.stimulus_set = self.stimulus_set.select(order)
        self._fill()
        self.table.selectRow(rows[0] + step)

    def remove_selected(self) -> None:
        doomed = set(self._selected_rows())
        if doomed:
            self.stimulus_set = self.stimulus_set.select(i for i in range(len(self.stimulus_set)) if i not in doomed)
            self._fill()

    def add(self, new: StimulusSet) -> bool:
        """Append designed images to the set (saved with the next Save); those it already holds are not added
        again."""
        fresh = self.stimulus_set.not_in(new)
        if not len(fresh):
            self.message.emit(f"The {len(new)} image(s) are already in the stimulus set: nothing added")
            return False
        try:
            self.stimulus_set = self.stimulus_set.merged(fresh)
        except CompactRigError as error:
            self.message.emit(str(error))
            return False
        self._fill()
        again = len(new) - len(fresh)
        self.message.emit(f"Added {len(fresh)} image(s) to the stimulus set"
                          + (f" ({again} already in it, not added again)" if again else "") + "; Save to keep them")
        return True

    def set_bank(self, bank: ModelBank | None) -> None:
        """The bank whose predictions "Predict all neurons" adds (the Models view's)."""
        self.bank = bank

    def predict_all(self) -> Job | None:
        """Every bank neuron's prediction added to every record, off the GUI thread (``annotate``)."""
        if self.bank is None or len(self.stimulus_set) == 0 or self.jobs.stopped:
            self.message.emit("Open a bank (Models view) and a stimulus set first")
            return None
        bank, shown = self.bank, self.stimulus_set

        def work(progress, cancelled):
            return annotate(bank, shown.pixels, shown.records, all_neurons=True, progress=progress)

        job = self.jobs.add(Job(work))
        job.label = "predicting the stimulus set"
        job.finished.connect(lambda predicted, shown=shown, bank=bank: self._predicted(shown, predicted, bank))
        job.failed.connect(self.message.emit)
        self.predict_button.setEnabled(False)
        job.finished.connect(lambda _: self.predict_button.setEnabled(True))
        job.failed.connect(lambda _: self.predict_button.setEnabled(True))
        self.message.emit(f"Predicting {len(shown)} image(s) for the {len(bank)} neurons of {bank.name}…")
        return job.start(self)

    def _predicted(self, shown: StimulusSet, predicted: StimulusSet, bank: ModelBank) -> None:
        if self.stimulus_set is not shown:  # edited while the job ran: its records are not what is shown now
            self.message.emit("The set changed while its predictions were made; press Predict again")
            return
        self.stimulus_set = predicted
        self._fill()
        self.message.emit(f"Every image now holds the predictions of the {len(bank)} neurons of {bank.name}; "
                          "Save to keep them")

    def stop_jobs(self) -> None:
        self.jobs.stop()

    def _add_probes(self) -> None:
        """Add the probes the set does not hold yet (pressing twice adds nothing twice)."""
        self.add(probe_family_set().filtered(lambda record: record.image_id not in self.stimulus_set.ids))

    def _save_clicked(self) -> None:
        self.save()

    def _remove_clicked(self) -> None:
        self.remove_selected()

    def _up_clicked(self) -> None:
        self.move_selected(-1)

    def _down_clicked(self) -> None:
        self.move_selected(1)

    def unsaved(self) -> bool:
        """The set shown is not the one on disk (edited since it was opened or saved)."""
        return self.stimulus_set is not self._on_disk

    def save(self, folder: str | Path | None = None) -> bool:
        """Save to ``folder``, else to the set's folder, else to one the user picks; True once saved."""
        if folder is None and self.folder is None:
            folder, _ = QFileDialog.getSaveFileName(  # a save dialog: a new folder is named by typing it
                self, "Save the stimulus set as (a folder: a new name, or a set's own folder)", "", "",
                options=QFileDialog.Option.DontConfirmOverwrite)  # its own folder is updated, anything else refused
            if not folder:
                return False
        if folder is not None:
            self.folder = Path(folder)
        assert self.folder is not None  # given, the set's own, or picked
        try:
            self.stimulus_set.save(self.folder)
        except CompactRigError as error:
            self.message.emit(str(error))
            return False
        self._on_disk = self.stimulus_set
        self.message.emit(f"Saved {len(self.stimulus_set)} images to {self.folder}")
        self.saved.emit(self.folder)
        return True
