"""The Inspect view: one neuron taken apart on one image (``compactrig.engine.models.inspection``), drawn.

Stage-0 filters as colour patches, each stage's activation maps as a mosaic, the
consolidation (readout) weights as a spatial map and per channel, and the ablation bar
chart of which stage-0 filters carry the response. The numbers come from a job; this
view only turns arrays into pictures.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import torch
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QPixmap
from PyQt6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from compactrig.engine.files.image_files import ImageCollection
from compactrig.engine.models.bank import ModelBank
from compactrig.engine.models.inspection import Inspection, inspect, mosaic
from compactrig.engine.models.layout import IMAGE_SIZE
from compactrig.gui.combo_box import ComboBox
from compactrig.gui.design_tab import qimage
from compactrig.gui.models_tab import probe_collection
from compactrig.gui.plots import plot_widget
from compactrig.gui.worker import Job, JobList

FILTER_COLUMNS = 8


def picture(values: np.ndarray, size: int) -> QPixmap:
    """A pixmap of a 0..1 grey map or 0..1 RGB values; NaN (mosaic gaps) is drawn light grey;
    scaled up without smoothing so pixels stay visible."""
    if values.ndim == 2:
        values = np.repeat(values[..., None], 3, axis=-1)
    values = np.where(np.isnan(values), 0.85, values)
    pixels = np.clip(np.rint(values * 255), 0, 255).astype(np.uint8)
    return QPixmap.fromImage(qimage(pixels)).scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                                    Qt.TransformationMode.FastTransformation)


def label_every_index(axis: pg.AxisItem, count: int, most: int = 24) -> None:
    """Filters and channels are numbered: whole-number ticks only (a lone channel otherwise reads
    -0.4...0.4), every one while there are few, every k-th beyond ``most``."""
    step = max(1, -(-count // most))
    axis.setTicks([[(k, str(k)) for k in range(0, count, step)], []])


class InspectTab(QWidget):
    """Neuron and image choice; filters, activations, readout weights and filter contributions."""

    message = pyqtSignal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bank: ModelBank | None = None
        self.model_images: ImageCollection = probe_collection()
        self.set_images_shown = ImageCollection([], np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8))
        self.images: ImageCollection = self.model_images
        """What the image choice offers: the Models view's images, then the stimulus set's."""
        self.jobs = JobList()
        self.inspection: Inspection | None = None
        self.neuron = ComboBox()
        self.image = ComboBox()
        self.neuron.currentIndexChanged.connect(self.refresh)
        self.image.currentIndexChanged.connect(self.refresh)
        top = QHBoxLayout()
        for widget in (QLabel("Neuron:"), self.neuron, QLabel("Image:"), self.image):
            top.addWidget(widget)
        top.addStretch(1)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.busy = QLabel()
        """Says what is being worked out while the views (greyed) still show the last result."""
        self.busy.setStyleSheet("color: #a05a00")

        self.image_view = QLabel()
        self.filters_view = QLabel()
        self.stage_views = [QLabel() for _ in range(5)]
        self.readout_view = QLabel()
        grid = QGridLayout()
        grid.addWidget(QLabel("image"), 0, 0)
        grid.addWidget(self.image_view, 1, 0)
        grid.addWidget(QLabel("stage-0 filters (colour)"), 0, 1)
        grid.addWidget(self.filters_view, 1, 1)
        grid.addWidget(QLabel("readout |weight| per position (sum over channels)"), 0, 2)
        grid.addWidget(self.readout_view, 1, 2)
        for k, view in enumerate(self.stage_views):
            grid.addWidget(QLabel(f"stage {k} activations"), 2, k)
            grid.addWidget(view, 3, k)

        self.contribution_plot = plot_widget(bottom="stage-0 filter", left="response lost without it")
        self.channel_plot = plot_widget(bottom="last-stage channel", left="sum of |readout weights|")
        plots = QHBoxLayout()
        plots.addWidget(self.contribution_plot)
        plots.addWidget(self.channel_plot)
        layout = QVBoxLayout(self)
        self.results = QWidget()
        """Everything drawn from one result: greyed while the next is worked out."""
        results = QVBoxLayout(self.results)
        results.setContentsMargins(0, 0, 0, 0)
        results.addWidget(self.summary)
        results.addLayout(grid)
        results.addLayout(plots, 1)
        self.scroll_area = QScrollArea()
        """The pictures keep their sizes (pixels stay visible): in a small window the view scrolls to them."""
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QScrollArea.Shape.NoFrame)
        self.scroll_area.setWidget(self.results)
        layout.addLayout(top)
        layout.addWidget(self.busy)
        layout.addWidget(self.scroll_area, 1)

    def set_bank(self, bank: ModelBank) -> None:
        self.bank = bank
        self.neuron.blockSignals(True)
        self.neuron.clear()
        self.neuron.addItems(bank.neuron_ids)
        self.neuron.blockSignals(False)
        self.refresh()

    def set_images(self, images: ImageCollection) -> None:
        """The Models view's images (the probes unless the user chose others)."""
        self.model_images = images
        self._offer()

    def set_stimulus_set(self, stimulus_set) -> None:
        """The Stimulus set view's images, offered after the Models view's as ``set: ID``."""
        self.set_images_shown = ImageCollection([f"set: {i}" for i in stimulus_set.ids], stimulus_set.pixels)
        self._offer()

    def _offer(self) -> None:
        chosen = self.image.currentText()
        parts = [c for c in (self.model_images, self.set_images_shown) if len(c)]
        self.images = ImageCollection([i for c in parts for i in c.ids],
                                      np.concatenate([c.pixels for c in parts]) if parts else
                                      np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8))
        self.image.blockSignals(True)
        self.image.clear()
        self.image.addItems(self.images.ids)
        if chosen in self.images.ids:
            self.image.setCurrentText(chosen)
        self.image.blockSignals(False)
        self.refresh()

    def choose(self, neuron_id: str, image_id: str) -> None:
        self.neuron.setCurrentText(neuron_id)
        self.image.setCurrentText(image_id)

    def refresh(self) -> None:
        """Take the chosen neuron apart on the chosen image, in a job."""
        if self.jobs.stopped or self.bank is None or not self.neuron.currentText():
            return
        if self.image.count() != len(self.images):
            self._offer()
            return
        bank, neuron_id = self.bank, self.neuron.currentText()
        index = max(self.image.currentIndex(), 0)
        image_id, pixels = self.images.ids[index], self.images.pixels[index]

        def work(progress, cancelled):
            return neuron_id, image_id, pixels, inspect(bank.model(neuron_id, dtype=torch.float64), pixels)

        job = Job(work)
        self.jobs.add(job)
        job.finished.connect(self._show)
        job.failed.connect(self._failed)
        job.start(self)
        self.busy.setText(f"Taking {neuron_id} apart on {image_id}…")
        self.results.setEnabled(False)

    def _failed(self, text: str) -> None:
        self.busy.setText("")
        self.results.setEnabled(True)
        self.message.emit(text)

    def stop_jobs(self) -> None:
        """Cancel and wait for every running job, and start no more (the window is closing)."""
        self.jobs.stop()

    def _show(self, result: tuple[str, str, np.ndarray, Inspection]) -> None:
        neuron_id, image_id, pixels, found = result
        if (neuron_id, image_id) != (self.neuron.currentText(), self.image.currentText()):
            return  # an older request
        self.inspection = found
        self.busy.setText("")
        self.results.setEnabled(True)
        top = ", ".join(f"filter {k} ({found.contributions[k]:+.3f})" for k in found.strongest_filters())
        self.summary.setText(f"<b>{neuron_id}</b> on {image_id}: predicted response {found.response:.3f}. "
                             f"Filters carrying it most: {top}.")
        self.image_view.setPixmap(QPixmap.fromImage(qimage(pixels)).scaled(160, 160))
        filters = found.filters_rgb
        self.filters_view.setPixmap(picture(mosaic(filters, min(FILTER_COLUMNS, len(filters)), scale=False), 200))
        self.readout_view.setPixmap(picture(found.readout_map(), 160))
        for view, maps in zip(self.stage_views, found.activations):
            view.setPixmap(picture(mosaic(maps), 200))
        self.contribution_plot.clear()
        self.contribution_plot.addItem(pg.BarGraphItem(x=np.arange(len(found.contributions)),
                                                       height=found.contributions, width=0.8,
                                                       brush=(70, 120, 200)))
        self.channel_plot.clear()
        self.channel_plot.addItem(pg.BarGraphItem(x=np.arange(len(found.readout_weights)),
                                                  height=found.channel_weights(), width=0.8,
                                                  brush=(200, 120, 70)))
        for plot, count in ((self.contribution_plot, len(found.contributions)),
                            (self.channel_plot, len(found.readout_weights))):
            label_every_index(plot.getAxis("bottom"), count)
