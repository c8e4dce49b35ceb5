"""The CompactRig window: tabs over engine/, stimuli/, the presenter and sources (no science here)."""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import QByteArray
from PyQt6.QtWidgets import QMainWindow, QMessageBox, QTabWidget, QTextBrowser

from gui.design_tab import DesignTab
from gui.inspect_tab import InspectTab
from gui.live_fits_tab import LiveFitsTab
from gui.models_tab import ModelsTab
from gui.rig_tab import RigTab
from gui.settings import load_settings, save_settings
from gui.stimulus_set_tab import StimulusSetTab

GETTING_STARTED = """
<h2>Getting started</h2>
<p>CompactRig runs the compact V4 models of Cowley et al. (Nature 2026) in closed loop:
design images for a neuron, show them on the rig, record, compare. With no configuration
it uses the embedded demo bank (three hand-built neurons) and simulated neurons, so the
whole loop runs on any computer. A first loop in a minute:</p>
<ol>
<li><b>Design</b>: pick <i>demo:2</i>, method <i>max</i>, press <i>Run</i>; watch the images
evolve; press <i>Add chosen to the set</i>.</li>
<li><b>Stimulus set</b>: the images are there, with their provenance. Press <i>Save</i> and choose a
folder (the row order is the presentation order).</li>
<li><b>Rig</b>: the default rig opens a window on this screen and the source is <i>simulated</i>.
Press <i>Start session</i>; the presenter window shows the images.</li>
<li><b>Live fits</b>: each simulated unit's responses against its model's predictions, updated as
they come in; click a unit to focus it.</li>
<li><b>Closed loop</b> (under Live fits) for neurons no model describes: set the simulated source's
<i>unknown</i> option to 2 and tick <i>keep running for queued images</i> in the Rig view. Then start a
session. Each unit gets a readout of the bank, refitted as responses come in. Press <i>Queue next
batch</i> to show the images the readouts are least sure about. Focus a unit and press
<i>Synthesize for this unit</i> to design images for it and show them next.</li>
</ol>
<p><b>Models</b> shows the loaded bank (press <i>Fetch published models</i> for the 219 published
neurons, or pick a folder that holds them); <b>Inspect</b> shows a neuron's filters, activations and
readout. Everything here also runs from the command line (<code>compactrig --help</code>).</p>
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
        self.live = LiveFitsTab()
        self.inspect = InspectTab()
        for title, tab in (("Models", self.models), ("Design", self.design), ("Stimulus set", self.stimuli),
                           ("Rig", self.rig), ("Live fits", self.live), ("Inspect", self.inspect)):
            tab.message.connect(self.show_message)
            self.tabs.addTab(tab, title)
        self.models.bank_changed.connect(self.design.set_bank)
        self.models.bank_changed.connect(self.inspect.set_bank)
        self.models.bank_changed.connect(self.live.set_bank)
        self.live.loop.add_to_set.connect(self.stimuli.add)
        self.live.loop.queue_requested.connect(self.rig.queue_images)
        self.models.images_changed.connect(self.inspect.set_images)
        self.stimuli.changed.connect(self.inspect.set_stimulus_set)
        self.design.add_to_set.connect(self.stimuli.add)
        self.rig.events_arrived.connect(self.live.take_events)
        self.stimuli.saved.connect(self.rig.set_stimuli)
        self.setCentralWidget(self.tabs)
        self._restore()

    def show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 15000)

    def _restore(self) -> None:
        settings, problem = load_settings()
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
        return {"bank": self.models.bank_spec, "rig": self.rig.settings(),
                "geometry": bytes(self.saveGeometry().toHex()).decode(), "tab": self.tabs.currentIndex()}

    def confirm_stop_session(self) -> bool:
        """Ask before closing stops a running session (it stays resumable)."""
        answer = QMessageBox.question(
            self, "A session is running",
            "A session is running. Stop it and quit? The presenter is shut down and the session can be "
            "resumed later from its folder.")
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """Ask if a session runs; then stop it and every job, so no thread outlives the window."""
        if self.rig.running():
            if not self.confirm_stop_session():
                event.ignore()
                return
            self.show_message("Stopping the session…")
        self.rig.stop_and_wait()  # also when it just ended: its thread may not have exited yet
        for tab in (self.models, self.design, self.inspect, self.live):
            tab.stop_jobs()
        try:
            save_settings(self.settings())
        except OSError as error:
            self.show_message(f"settings not saved ({error.strerror})")
        super().closeEvent(event)
