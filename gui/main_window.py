"""The CompactRig window: tabs over engine/, stimuli/, the presenter and sources (no science here)."""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import QByteArray
from PyQt6.QtWidgets import QMainWindow, QMessageBox, QTabWidget, QTextBrowser

from compactrig.gui.design_tab import DesignTab
from compactrig.gui.inspect_tab import InspectTab
from compactrig.gui.live_fits_tab import LiveFitsTab
from compactrig.gui.messages import MessagesButton
from compactrig.gui.models_tab import ModelsTab
from compactrig.gui.rig_tab import RigTab
from compactrig.gui.settings import load_settings, save_settings
from compactrig.gui.stimulus_set_tab import StimulusSetTab
from compactrig.stimuli.unsaved import UnsavedWork

GETTING_STARTED = """
<h2>Getting started</h2>
<p>CompactRig runs the compact V4 models of Cowley et al. (Nature 2026) in closed loop:
design images for a neuron, show them on the rig, record, compare. With no configuration
it uses the embedded demo bank (three hand-built neurons) and simulated neurons, so the
whole loop runs on any computer. A first loop in a few minutes, with the mouse alone:</p>
<ol>
<li><b>Design</b>: click <i>demo:2</i>, keep method <i>max</i>, press <i>Run</i>; watch the images
evolve; press <i>Add chosen to the stimulus set</i>.</li>
<li><b>Stimulus set</b>: the images are there, with their provenance. Press <i>Add probes</i>: 30
gratings, dot lattices and colour blobs that drive the neurons differently (a fit over images that
all drive a unit alike means nothing). Press <i>Save</i> and choose a folder (the row order is the
presentation order).</li>
<li><b>Rig</b>: the source is <i>simulated</i>: unit0-unit2 respond like the demo neurons, with
Poisson noise. In its form set <i>unknown</i> to 2: unit3 and unit4 are neurons no model describes.
Tick <i>keep running for queued images</i>. If the Rig view says the presenter's window will cover
this one, press <i>Use a half-size window in the far corner</i>. Press <i>Start session</i>; the
presenter window shows the images.</li>
<li><b>Live fits</b>: for each unit with a model, its mean response per image against the model's
prediction, updated as responses come in; click a unit to focus it. <i>r</i> is the correlation over
images; <i>r2_ER</i> the share of the repeatable (explainable) variance that the prediction explains,
corrected for trial-to-trial noise. Here both are near 1, since the simulated units are their own
models plus noise; at the rig they say how well a compact model describes your neuron.</li>
<li><b>Closed loop</b> (under Live fits): every unit gets a readout of the bank, fitted by itself
after 10 images and refitted as responses come in. <i>held-out r</i> is the readout's correlation
with the unit's mean responses on images left out of the fit. Press <i>Queue next batch</i> to show
the images the readouts are least sure about. Click unit3's row and press <i>Synthesize for this
unit</i>: images designed for it join the stimulus set and are shown next; the scatter shows whether
they drive it.</li>
</ol>
<p>A past session opens read-only with <i>Open a past session…</i> in Live fits (and its report with
<i>Report</i>). <b>Models</b> shows the loaded bank (press <i>Fetch published models</i> for the 219
published neurons, or pick a folder that holds them); <b>Inspect</b> shows a neuron's filters,
activations and readout. Everything here also runs from the command line
(<code>compactrig --help</code>).</p>
"""


class MainWindow(QMainWindow):
    """Tabs; messages from any tab go to the status bar, never to a crash."""

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("CompactRig")
        self.resize(1200, 760)
        self.tabs = QTabWidget()
        guide = QTextBrowser()
        guide.setHtml(GETTING_STARTED)
        self.tabs.addTab(guide, "Getting started")
        self.models = ModelsTab()
        self.design = DesignTab()
        self.stimuli = StimulusSetTab()
        self.rig = RigTab()
        self.live = LiveFitsTab(self.rig.session.live, self.rig.adopt_window)
        self.inspect = InspectTab()
        for title, tab in (("Models", self.models), ("Design", self.design), ("Stimulus set", self.stimuli),
                           ("Rig", self.rig), ("Live fits", self.live), ("Inspect", self.inspect)):
            tab.message.connect(self.show_message)
            self.tabs.addTab(tab, title)
        self.models.bank_changed.connect(self.design.set_bank)
        self.models.bank_changed.connect(self.inspect.set_bank)
        self.models.bank_changed.connect(self.live.set_bank)
        self.models.bank_changed.connect(self.stimuli.set_bank)
        self.live.loop.add_to_set.connect(self.stimuli.add)
        self.live.loop.queue_requested.connect(self.rig.queue_images)
        self.live.loop.bank_made.connect(self.models.add_bank_choice)
        self.models.images_changed.connect(self.inspect.set_images)
        self.stimuli.changed.connect(self.inspect.set_stimulus_set)
        self.design.add_to_set.connect(self.stimuli.add)
        self.rig.events_arrived.connect(self.live.take_events)
        self.live.open_requested.connect(self.rig.show_session)
        self.stimuli.saved.connect(self.rig.set_stimuli)
        self.setCentralWidget(self.tabs)
        self.messages = MessagesButton()
        bar = self.statusBar()
        assert bar is not None
        bar.addPermanentWidget(self.messages)
        self._restore()

    def show_message(self, text: str, keep: bool = False) -> None:
        """One line in the status bar, for 15 s (``keep``: until the next message, for a failure's log path),
        and kept whole under Messages (the bar cuts a long one)."""
        bar = self.statusBar()
        assert bar is not None  # a QMainWindow makes its status bar when first asked
        bar.showMessage(text, 0 if keep else 15000)
        bar.setToolTip(text)
        self.messages.add(text)

    def _restore(self) -> None:
        settings, problem = load_settings()
        for entry in settings.get("added_banks") or []:  # a bank folder since moved away is no longer offered
            if isinstance(entry, list) and len(entry) == 2 and all(isinstance(v, str) for v in entry) \
                    and Path(entry[0]).is_dir():
                self.models.add_bank_choice(*entry)
        if not self.models.set_bank(settings.get("bank")):
            self.models.set_bank(None)
        self.rig.restore(settings.get("rig", {}))
        remembered = self.rig.stimuli_edit.text().strip()
        if remembered and (Path(remembered) / "manifest.json").is_file():
            self.stimuli.open(remembered)  # the set the Rig view will use, shown where it is edited
        if settings.get("geometry"):
            self.restoreGeometry(QByteArray.fromHex(settings["geometry"].encode()))
        self.tabs.setCurrentIndex(int(settings.get("tab", 0)))
        if problem:
            self.show_message(problem)

    def settings(self) -> dict:
        return {"bank": self.models.bank_spec, "added_banks": self.models.added_banks, "rig": self.rig.settings(),
                "geometry": self.saveGeometry().toHex().data().decode(), "tab": self.tabs.currentIndex()}

    def confirm_stop_session(self) -> bool:
        """Ask before closing stops a running session (it stays resumable); No is the default, so Enter never
        ends a recording."""
        answer = QMessageBox.question(
            self, "A session is running",
            "A session is running. Stop it and quit? The presenter is shut down and the session can be "
            "resumed later from its folder.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def unsaved_work(self) -> UnsavedWork:
        folder = self.stimuli.folder
        return UnsavedWork(self.design.unadded(), self.stimuli.unsaved(), len(self.stimuli.stimulus_set),
                           None if folder is None else str(folder))

    def confirm_unsaved(self) -> bool:
        """Ask before quitting loses designed images or stimulus-set edits: Save (the ticked designed images into
        the set, then the set saved, asking where if it has no folder), Discard, or Cancel (the default)."""
        unsaved = self.unsaved_work()
        if not unsaved:
            return True
        box = QMessageBox(QMessageBox.Icon.Warning, "Unsaved work", unsaved.question(), parent=self)
        buttons = QMessageBox.StandardButton
        box.setStandardButtons(buttons.Save | buttons.Discard | buttons.Cancel)
        box.setDefaultButton(buttons.Cancel)
        box.exec()
        answer = box.standardButton(box.clickedButton())
        if answer == buttons.Discard:
            return True
        if answer != buttons.Save:
            return False
        if unsaved.designed:
            self.design.add_chosen()
        return self.stimuli.save()  # the folder dialog cancelled or the save refused: the window stays

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """Ask if a session runs; then stop it and every job, so no thread outlives the window."""
        if self.rig.running() and not self.confirm_stop_session():
            event.ignore()
            return
        if not self.confirm_unsaved():
            event.ignore()
            return
        if self.rig.running():
            self.show_message("Stopping the session…")
        self.rig.stop_and_wait()  # also when it just ended: its thread may not have exited yet
        for tab in (self.models, self.design, self.inspect, self.live, self.stimuli):
            tab.stop_jobs()
        try:
            save_settings(self.settings())
        except OSError as error:
            self.show_message(f"settings not saved ({error.strerror})")
        super().closeEvent(event)
