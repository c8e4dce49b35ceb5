"""The Design view: choose neurons and a method, run it off the GUI thread, pick results for the set.

The methods are ``compactrig.stimuli.design`` (the same functions as ``compactrig synth`` and
``compactrig gaudy``). While a job runs, its latest image is kept in a buffer that a
10 Hz timer shows, so the preview costs the synthesis nothing when nobody looks.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from PyQt6.QtCore import QSize, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QImage, QPixmap
from PyQt6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from compactrig.engine.errors import CompactRigError
from compactrig.engine.files.image_files import ImageCollection, read_images
from compactrig.engine.models.bank import ModelBank
from compactrig.engine.models.fast_predict import FoldedModel
from compactrig.gui.combo_box import ComboBox
from compactrig.gui.image_dialog import ask_for_images
from compactrig.gui.models_tab import probe_collection
from compactrig.gui.qt_parts import list_item
from compactrig.gui.stimulus_set_tab import thumbnail
from compactrig.gui.worker import Job, JobList
from compactrig.stimuli.design import Design, design_adversarial, design_gaudy, design_synthesized
from compactrig.stimuli.stimulus_set import StimulusSet, annotate
from compactrig.stimuli.synthesis import SynthesisSettings

METHODS = ("max", "min", "adversarial up", "adversarial down", "gaudy")
PREVIEW_SIZE = 224
PREVIEW_EVERY_S = 0.1


def qimage(pixels: np.ndarray) -> QImage:
    """A Qt image of uint8 ``(H, W, 3)`` pixels (copied)."""
    pixels = np.ascontiguousarray(pixels)
    return QImage(pixels.tobytes(), pixels.shape[1], pixels.shape[0], 3 * pixels.shape[1],
                  QImage.Format.Format_RGB888).copy()


class DesignTab(QWidget):
    """Neurons, method, parameters, run with live preview, results grid, add chosen to the set."""

    message = pyqtSignal(str)
    add_to_set = pyqtSignal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bank: ModelBank | None = None
        self.natural: ImageCollection = probe_collection()
        self.natural_name = "generated probes"
        self.job: Job | None = None
        self.jobs = JobList()
        self.results: StimulusSet | None = None
        self.results_added = False
        """The last results were handed to the stimulus set (else quitting loses them)."""
        self._preview: tuple[str, int, int, np.ndarray, float, float] | None = None
        """(neuron, step, steps, image, best response, when): written by the job's thread, read by the timer."""
        self._started = 0.0
        self._cancelled = False
        """The running job was cancelled: its results are the best found by then."""
        self._next_seed: int | None = None
        """The first seed after the running synthesis, so the next run makes new images with new ids."""

        self.search = QLineEdit(placeholderText="search neurons")  # type: ignore[call-overload]
        self.search.textChanged.connect(self._filter)
        self.neurons = QListWidget()
        self.neurons.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        left = QVBoxLayout()
        left.addWidget(QLabel("Neurons (select one or more):"))
        left.addWidget(self.search)
        left.addWidget(self.neurons, 1)

        self.method = ComboBox()
        self.method.addItems(METHODS)
        self.method.currentTextChanged.connect(self._method_changed)
        self.n_images = QSpinBox(minimum=1, maximum=64, value=4)  # type: ignore[call-arg]
        self.first_seed = QSpinBox(minimum=0, maximum=10**6, value=0)  # type: ignore[call-arg]
        self.steps = QSpinBox(minimum=1, maximum=5000, value=100)  # type: ignore[call-arg]
        self.step_size = QDoubleSpinBox(minimum=0.1, maximum=100.0, value=10.0)  # type: ignore[call-arg]
        self.grayscale = QCheckBox("gray images")
        self.eps = QDoubleSpinBox(minimum=0.5, maximum=64.0, value=8.0)  # type: ignore[call-arg]
        self.gaudy_mode = ComboBox()
        self.gaudy_mode.addItems(("channel", "global"))
        self.blur = QDoubleSpinBox(minimum=0.0, maximum=10.0, value=0.0)  # type: ignore[call-arg]
        self.all_neurons = QCheckBox("all neurons' predictions")
        self.all_neurons.setToolTip("by default each image's record holds its target's predicted response and those "
                                    "of the neurons recorded in the same session; the Stimulus set view's "
                                    "'Predict…' adds others later")
        self.natural_label = QLabel()
        natural_button = QPushButton("Natural images…")
        natural_button.clicked.connect(self._choose_natural)
        self.form = QFormLayout()
        self.form.addRow("method", self.method)
        self.form.addRow("images per neuron", self.n_images)
        self.form.addRow("first seed", self.first_seed)
        self.form.addRow("steps", self.steps)
        self.form.addRow("step size (0-255 units)", self.step_size)
        self.form.addRow("", self.grayscale)
        self.form.addRow("largest change (0-255 units)", self.eps)
        self.form.addRow("gaudy threshold", self.gaudy_mode)
        self.form.addRow("pre-blur (pixels)", self.blur)
        self.form.addRow(natural_button, self.natural_label)
        self.form.addRow("", self.all_neurons)
        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        self.progress = QProgressBar()
        self.preview = QLabel()
        self.preview.setFixedSize(PREVIEW_SIZE, PREVIEW_SIZE)
        self.preview.setStyleSheet("background: #808080")
        self.preview_caption = QLabel("The image being designed appears here.")
        self.preview_caption.setWordWrap(True)
        settings_box = QGroupBox("Method")
        middle = QVBoxLayout(settings_box)
        middle.addLayout(self.form)
        middle.addLayout(buttons)
        middle.addWidget(self.progress)
        middle.addWidget(self.preview, 0, Qt.AlignmentFlag.AlignHCenter)
        middle.addWidget(self.preview_caption)
        middle.addStretch(1)

        self.grid = QListWidget()
        self.grid.setViewMode(QListWidget.ViewMode.IconMode)
        self.grid.setIconSize(QSize(96, 96))
        self.grid.setGridSize(QSize(150, 140))
        self.grid.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.grid.setWordWrap(True)
        self.add_button = QPushButton("Add chosen to the stimulus set")
        self.add_button.clicked.connect(self.add_chosen)
        right = QVBoxLayout()
        right.addWidget(QLabel("Results (tick the ones to keep; the target's predicted response,\n"
                               "for adversarial images the source image's → the new image's):"))
        right.addWidget(self.grid, 1)
        right.addWidget(self.add_button)

        columns = QHBoxLayout(self)
        columns.addLayout(left, 2)
        columns.addWidget(settings_box, 3)
        columns.addLayout(right, 4)
        self.timer = QTimer(self)
        self.timer.setInterval(int(PREVIEW_EVERY_S * 1000))
        self.timer.timeout.connect(self._show_preview)
        self._update_natural_label()
        self._method_changed(self.method.currentText())

    def set_bank(self, bank: ModelBank) -> None:
        self.bank = bank
        self.neurons.clear()
        for neuron in bank.neurons:
            item = QListWidgetItem(f"{neuron.neuron_id}  {neuron.label}".strip())
            item.setData(Qt.ItemDataRole.UserRole, neuron.neuron_id)
            item.setToolTip(item.text())  # a narrow list elides a long description
            self.neurons.addItem(item)
        self._filter(self.search.text())

    def _filter(self, text: str) -> None:
        needle = text.strip().lower()
        for row in range(self.neurons.count()):
            item = list_item(self.neurons, row)
            item.setHidden(bool(needle) and needle not in item.text().lower())

    def select_neurons(self, neuron_ids: list[str]) -> None:
        for row in range(self.neurons.count()):
            item = list_item(self.neurons, row)
            item.setSelected(item.data(Qt.ItemDataRole.UserRole) in neuron_ids)

    def chosen_neurons(self) -> list[str]:
        return [item.data(Qt.ItemDataRole.UserRole) for item in self.neurons.selectedItems()]

    def _method_changed(self, method: str) -> None:
        gradient = method in ("max", "min")
        visible = {self.n_images: gradient, self.first_seed: gradient, self.step_size: gradient,
                   self.grayscale: gradient, self.steps: method != "gaudy", self.eps: method.startswith("adv"),
                   self.gaudy_mode: method == "gaudy", self.blur: method == "gaudy"}
        for widget, shown in visible.items():
            self.form.setRowVisible(widget, shown)
        self.form.setRowVisible(self.natural_label, not gradient)

    def _choose_natural(self) -> None:
        path = ask_for_images(self, "Natural images")
        if path:
            self.set_natural(path)

    def set_natural(self, path: str | Path) -> bool:
        try:
            self.natural = read_images(path)
        except CompactRigError as error:
            self.message.emit(str(error))
            return False
        self.natural_name = Path(path).name
        self._update_natural_label()
        return True

    def _update_natural_label(self) -> None:
        self.natural_label.setText(f"{len(self.natural)} natural images ({self.natural_name})")

    # running ---------------------------------------------------------------------------------
    def run(self) -> bool:
        """Start the chosen method for the chosen neurons (gaudy needs none) in a job."""
        method, neurons, bank = self.method.currentText(), self.chosen_neurons(), self.bank
        running = self.job is not None and self.job.worker_thread is not None and self.job.worker_thread.isRunning()
        if self.jobs.stopped or running:
            return False
        if bank is None or (method != "gaudy" and not neurons):
            self.message.emit("Choose at least one neuron in the list first")
            return False
        seeds = list(range(self.first_seed.value(), self.first_seed.value() + self.n_images.value()))
        settings = SynthesisSettings(direction="max" if method == "max" else "min", steps=self.steps.value(),
                                     step_size=self.step_size.value(), grayscale=self.grayscale.isChecked())
        natural, eps, steps = self.natural, self.eps.value(), self.steps.value()
        mode, blur = self.gaudy_mode.currentText(), self.blur.value()
        all_neurons = self.all_neurons.isChecked()

        def work(progress, cancelled):
            designs: list[Design] = []
            if method == "gaudy":
                designs.append(design_gaudy(natural.ids, natural.pixels, mode, blur))
            for k, neuron_id in enumerate(neurons if method != "gaudy" else []):
                model = FoldedModel(bank.model(neuron_id, dtype=torch.float64))

                def overall(i, n, phase="", k=k):
                    progress(k * n + i, len(neurons) * n)
                if method in ("max", "min"):
                    def preview(p, neuron_id=neuron_id):
                        self._offer_preview(neuron_id, p.step, p.steps, p.current_images, p.best_responses)
                    design = design_synthesized(model, neuron_id, seeds, settings, progress=overall,
                                                cancelled=cancelled, partial=preview)
                else:
                    design = design_adversarial(model, neuron_id, natural.ids, natural.pixels, method.split()[1],
                                                eps, steps, cancelled=cancelled, progress=overall)
                designs.append(design)
                if cancelled():
                    break
            images = np.concatenate([d.images for d in designs])
            records = [r for d in designs for r in d.records]
            texts = [text for d in designs for text in d.response_texts()]
            return annotate(bank, images, records, all_neurons=all_neurons), texts

        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self._cancelled = False
        self._preview = None
        self.preview.clear()  # the last run's image is not this run's
        self.preview_caption.setText("The image being designed appears here." if method in ("max", "min") else
                                     f"No preview for {method}: its images appear below when it is done.")
        self._started = time.monotonic()
        self.job = Job(work)
        self.jobs.add(self.job)
        self.job.progress.connect(self._show_progress)
        self.job.finished.connect(self._show_results)
        self.job.failed.connect(self._failed)
        self.job.start(self)
        self.timer.start()
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self._next_seed = seeds[-1] + 1 if method in ("max", "min") else None
        return True

    def _offer_preview(self, neuron_id: str, step: int, steps: int, current, best: np.ndarray) -> None:
        """Called on the job's thread each step: keep one image, at most every PREVIEW_EVERY_S."""
        last = self._preview[5] if self._preview else 0.0
        now = time.monotonic()
        if now - last >= PREVIEW_EVERY_S or step == steps:
            self._preview = (neuron_id, step, steps, current()[0], float(best[0]), now)

    def _show_preview(self) -> None:
        if self._preview is None:
            return
        neuron_id, step, steps, pixels, best, _ = self._preview
        self.preview.setPixmap(QPixmap.fromImage(qimage(pixels)).scaled(PREVIEW_SIZE, PREVIEW_SIZE))
        self.preview_caption.setText(f"{neuron_id}, step {step}/{steps}: best response so far "
                                     f"{best:.3f} (first seed)")

    def cancel(self) -> None:
        """Stop now; the best images so far are kept."""
        if self.job is not None:
            self.job.cancel()
            self._cancelled = True
            self.progress.setFormat("cancelled at %p%")

    def _show_progress(self, done: int, total: int, phase: str = "") -> None:
        self.progress.setMaximum(total)
        self.progress.setValue(done)

    def stop_jobs(self) -> None:
        """Cancel and wait for every running job, and start no more (the window is closing)."""
        self.jobs.stop()
        self.timer.stop()

    def _done(self) -> None:
        self.job = None  # finished: Run starts the next at once (its thread, still quitting, stays in self.jobs)
        self.timer.stop()
        self._show_preview()
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _show_results(self, result: tuple[StimulusSet, list[str]]) -> None:
        self._done()
        if self._next_seed is not None:  # moved on only now: while it runs, the box shows the seeds in use
            self.first_seed.setValue(self._next_seed)
        self.results, texts = result
        self.results_added = False
        self.grid.clear()
        for record, pixels, text in zip(self.results.records, self.results.pixels, texts):
            item = QListWidgetItem(thumbnail(pixels), f"{record.image_id}\n{text}".strip())
            item.setToolTip(record.image_id)  # the grid cell elides a long id
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            self.grid.addItem(item)
        took = time.monotonic() - self._started
        self.message.emit(f"cancelled after {took:.1f} s: {len(self.results)} image(s) kept, the best found by then; "
                          "tick the ones to keep and add them to the set" if self._cancelled else
                          f"{len(self.results)} image(s) designed in {took:.1f} s; tick the ones to keep and add them "
                          "to the set")

    def _failed(self, text: str) -> None:
        self._done()
        self.message.emit(text)

    def add_chosen(self) -> int:
        """Hand the ticked results to the stimulus set; returns how many."""
        if self.results is None:
            return 0
        chosen = [row for row in range(self.grid.count())
                  if list_item(self.grid, row).checkState() == Qt.CheckState.Checked]
        if chosen:
            self.add_to_set.emit(self.results.select(chosen))
            self.results_added = True
        return len(chosen)

    def unadded(self) -> int:
        """How many designed images were never added to the stimulus set."""
        return 0 if self.results is None or self.results_added else len(self.results)
