"""Screenshots of every view of the window, driven through a first closed loop as a newcomer would.

Called by ``docs/make_screenshots.sh`` (under Xvfb): design images for demo:2, add them to
the set, save it, run a simulated session on it (held open, with two mixture units), queue a
committee batch and images synthesized for a mixture unit from the closed-loop panel, then
grab each tab (and the Live fits view's Spikes page), the session reopened, the published bank when
``COMPACTRIG_SHARED_DATA`` (or ../shared/data/v4_compact_models) has it, and the window at its minimum size.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from PyQt6.QtTest import QTest
from PyQt6.QtWidgets import QApplication

from compactrig.gui.main_window import MainWindow
from compactrig.gui.rig_tab import SHOW_ANYWAY


def wait_until(condition, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the window did not get there in time")
        QTest.qWait(50)


def main(out: Path) -> None:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    work = Path(tempfile.mkdtemp())
    window = MainWindow()
    window.resize(1260, 790)
    window.show()

    def shoot(tab, name: str) -> None:
        window.tabs.setCurrentWidget(tab)
        QTest.qWait(400)
        window.grab().save(str(out / f"window_{name}.png"))

    shoot(window.tabs.widget(0), "getting_started")
    window.models.table.selectRow(2)
    wait_until(lambda: window.models.distribution is not None and window.models.selected_neuron() == "demo:2")
    shoot(window.models, "models_tab")

    design = window.design
    design.select_neurons(["demo:2"])
    design.n_images.setValue(6)
    design.steps.setValue(60)
    design.run()
    wait_until(lambda: design.results is not None)
    shoot(design, "design_tab")
    design.add_chosen()
    window.stimuli.probes_button.click()  # images that drive the units differently (Getting started, step 2)
    window.stimuli.save(work / "designed")
    shoot(window.stimuli, "stimulus_set_tab")

    rig = window.rig
    rig.small_window_button.click()  # one screen: the presenter goes to a corner (Getting started, step 3)
    rig.session_edit.setText(str(work / "session"))
    rig.repeats.setValue(2)
    rig.source.choose("simulated", {**rig.source.values(), "unknown": 2, "mixture_size": 2})
    rig.hold_open.setChecked(True)  # a closed loop: the session waits for queued images
    rig.start()
    wait_until(lambda: not rig.refresh.text().startswith("Refresh: measured when"))
    if rig.refresh_question is not None:  # Xvfb has no vsync: its rate is not the rig file's
        next(b for b in rig.refresh_question.buttons() if b.text() == SHOW_ANYWAY).click()
    window.live.loop.message.connect(print)
    loop = window.live.loop
    wait_until(lambda: rig.progress.maximum() > 1 and rig.progress.value() == rig.progress.maximum())
    loop.refit_now()
    wait_until(lambda: loop.controller.fit is not None and loop.controller.fitted_at == rig.progress.value())
    loop.strategy.setCurrentText("committee")
    loop.batch.setValue(8)
    loop.queue_next_batch()
    wait_until(lambda: rig.progress.value() == rig.progress.maximum() and rig.progress.maximum() > 72)
    wait_until(lambda: loop.controller.work_job is None and loop.controller.feature_job is None)
    window.live.focus_unit("unit4")
    loop.n_images.setValue(2)
    loop.steps.setValue(60)
    loop.synthesize()
    wait_until(lambda: any(i.startswith("max_readout-unit4") for i in window.stimuli.stimulus_set.ids))
    wait_until(lambda: rig.progress.value() == rig.progress.maximum() and rig.progress.maximum() > 88)
    loop.refit_now()
    wait_until(lambda: loop.controller.fitted_at == rig.progress.value())
    shoot(rig, "rig_tab")
    window.live.focus_unit("unit2")
    window.live.focus_unit("unit4")  # one focus: the fit plots keep unit2 (a model's), the loop shows unit4's images
    shoot(window.live, "live_fits_tab")
    spikes = window.live.spikes
    window.live.pages.setCurrentWidget(spikes)  # the focused unit's raster, PSTH and counting window
    wait_until(lambda: spikes.latency.text().startswith(("latency ", "no latency")))
    QTest.qWait(400)
    window.grab().save(str(out / "live_rasters.png"))
    window.live.pages.setCurrentIndex(0)
    finished = []
    rig.session_finished.connect(finished.append)
    rig.abort()
    wait_until(lambda: finished)
    window.inspect.choose("demo:2", "dots")
    wait_until(lambda: window.inspect.inspection is not None and "dots" in window.inspect.summary.text())
    shoot(window.inspect, "inspect_tab")
    window.live.open_requested.emit(str(work / "session"))  # as "Open a past session..." does
    wait_until(lambda: window.live.live.folder == work / "session" and window.live.table.rowCount() == 3)
    QTest.qWait(200)  # the last session's readouts dropped, the reopened one's features on their way
    wait_until(lambda: not window.live.loop.controller.running_jobs() and window.live.loop.table.rowCount() == 5)
    shoot(window.live, "live_fits_reopened")
    size = window.size()
    window.resize(window.minimumSizeHint())  # the smallest the window lets itself be made
    for tab, name in ((window.tabs.widget(0), "getting_started"), (window.rig, "rig_tab"),
                      (window.live, "live_fits_tab"), (window.inspect, "inspect_tab")):
        shoot(tab, f"{name}_min")
    beside = Path(__file__).resolve().parents[2] / "shared/data/v4_compact_models"
    published = Path(os.environ.get("COMPACTRIG_SHARED_DATA", beside))
    if published.is_dir():  # the 219 published neurons, when this machine has them
        window.models.set_bank(published)
        shoot(window.models, "models_published_min")
        window.resize(size)
        shoot(window.models, "models_published")
    window.stimuli.save()  # the images the loop synthesized joined the set: kept, so quitting asks nothing
    window.close()
    app.quit()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
