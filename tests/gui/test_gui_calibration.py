"""The Rig view's *Calibrate eye tracker* button: the iohub gate's calibration (ioHub's MouseGaze under Xvfb,
keys pressed with xdotool at the "rig keyboard"), off the GUI thread, its outcome in the log."""

from __future__ import annotations

import threading
import time

import pytest

from support.gaze import GAZE_SCREEN, MOUSE_GAZE, iohub_processes, need_xdotool, press
from support.rig_view import set_up_rig
from support.user_input import click, open_tab

pytestmark = [pytest.mark.slow, pytest.mark.needs_display]
RIG = GAZE_SCREEN + f"""[gate]
name = "iohub"
[gate.options]
tracker = "{MOUSE_GAZE}"
calibration_points = 3
[gate.options.settings.calibration]
target_duration = 0.2
"""


def test_the_button_runs_the_calibration_and_escape_at_the_rig_aborts_it(qtbot, window, tmp_path, monkeypatch):
    need_xdotool()
    started = time.time()
    set_up_rig(qtbot, window, monkeypatch, RIG, tmp_path, tmp_path, tmp_path / "session")
    rig = window.rig
    assert rig.gate.name == "iohub"
    assert rig.gate.values()["settings"] == '{"calibration": {"target_duration": 0.2}}', "the table, as JSON"
    click(qtbot, rig.calibrate_button)
    assert rig.calibrate_button.text() == "Cancel calibration" and not rig.start_button.isEnabled()
    done = threading.Event()

    def operator() -> None:  # Escape on ioHub's first calibration screen, once the tracker is up
        while not done.wait(0.3):
            press("Escape")
    escaping = threading.Thread(target=operator, daemon=True)
    escaping.start()
    try:
        qtbot.waitUntil(lambda: rig.calibration is None, timeout=90000)
    finally:
        done.set()
        escaping.join()
    assert rig.log.toPlainText().splitlines()[-1].startswith("calibration aborted (RESULT CALIBRATION_ABORTED)")
    assert rig.calibrate_button.text() == "Calibrate eye tracker" and rig.start_button.isEnabled()
    assert iohub_processes(started) == []


def test_a_rig_without_the_iohub_gate_says_there_is_nothing_to_calibrate(qtbot, window):
    rig = window.rig
    open_tab(qtbot, window.tabs, rig)
    messages = []
    rig.message.connect(messages.append)
    click(qtbot, rig.calibrate_button)
    qtbot.waitUntil(lambda: rig.calibration is None, timeout=10000)
    assert messages[-1].startswith("calibration is for the 'iohub' gate; this rig's gate is 'always'")
