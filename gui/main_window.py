"""The CompactRig window: tabs over engine/, stimuli/, the presenter and sources (no science here)."""

from __future__ import annotations

from PyQt6.QtWidgets import QMainWindow, QTabWidget, QTextBrowser

from gui.models_tab import ModelsTab
from gui.stimulus_set_tab import StimulusSetTab

GETTING_STARTED = """
<h2>Getting started</h2>
<p>CompactRig runs the compact V4 models of Cowley et al. (Nature 2026) in closed loop:
design images for a neuron, show them on the rig, record, compare.</p>
<ol>
<li><b>Models</b>: the embedded demo bank is loaded (three hand-built neurons). Pick
<i>published</i> after <code>compactrig models fetch</code>, or a folder with the published models.
Choose a neuron to see its facts and the distribution of its predicted responses.</li>
<li><b>Stimulus set</b>: open a set (made with <code>compactrig synth</code>, <code>gaudy</code> or
<code>stimuli import</code>); sort, filter, reorder and remove images, then save. The row order is the
order of presentation.</li>
</ol>
<p>The design, rig and live-fit views are on their way; meanwhile the command line
does all of it: <code>compactrig synth max --neuron demo:2 --out myset</code>,
<code>compactrig present --stimuli myset</code>,
<code>compactrig session run --stimuli myset --source simulated --out mysession</code>.</p>
"""


class MainWindow(QMainWindow):
    """Tabs; messages from any tab go to the status bar, never to a crash."""

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("CompactRig")
        self.resize(1100, 700)
        self.tabs = QTabWidget()
        guide = QTextBrowser()
        guide.setHtml(GETTING_STARTED)
        self.tabs.addTab(guide, "Getting started")
        self.models = ModelsTab()
        self.models.message.connect(lambda text: self.statusBar().showMessage(text, 15000))
        self.tabs.addTab(self.models, "Models")
        self.stimuli = StimulusSetTab()
        self.stimuli.message.connect(lambda text: self.statusBar().showMessage(text, 15000))
        self.tabs.addTab(self.stimuli, "Stimulus set")
        self.setCentralWidget(self.tabs)
        self.models.set_bank(None)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """Closing waits for running jobs (cancelled first), so no thread outlives the window."""
        self.models.stop_jobs()
        super().closeEvent(event)
