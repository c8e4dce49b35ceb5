"""The window's session tests: their small rig file (simulated source), set up in the Rig view as a user does.

Xvfb has no vsync: the rig paces its frames at its own 60 Hz (``pace_frames``), so the measured refresh
(the display's unpaced rate, hundreds of Hz) asks nothing; ``UNPACED_RIG`` shows it as a rig monitor at
the wrong rate would."""

from __future__ import annotations

from support.user_input import click, open_file_dialog_answer, open_tab, type_into

UNPACED_RIG = """[screen]
resolution = [400, 300]
width_cm = 40.0
[image]
size_deg = 3.0
position_deg = [3.0, 0.0]
[timing]
frames_on = 2
frames_off = 1
images_per_trial = 5
inter_trial_s = 0.0
[source]
name = "simulated"
"""
RIG = UNPACED_RIG.replace("[screen]", "[screen]\npace_frames = true")


def set_up_rig(qtbot, main, monkeypatch, rig_text: str, folder, stimuli, session) -> None:
    """What a user does in the Rig view before Start: open a rig file (the OS dialog answered), type the
    stimulus-set and session folders."""
    rig_file = folder / "rig.toml"
    rig_file.write_text(rig_text)
    open_tab(qtbot, main.tabs, main.rig)
    open_file_dialog_answer(monkeypatch, rig_file)
    click(qtbot, main.rig.open_rig_button)
    assert main.rig.rig_path == rig_file
    type_into(qtbot, main.rig.stimuli_edit, str(stimuli))
    type_into(qtbot, main.rig.session_edit, str(session))


def go_on_at_any_refresh(qtbot, rig) -> None:
    """After Start: once the presenter has measured the refresh, answer "Show the images anyway" if the Rig
    view asks (an unpaced rig under Xvfb: the display's rate is not the rig file's)."""
    from compactrig.gui.rig_tab import SHOW_ANYWAY
    qtbot.waitUntil(lambda: not rig.refresh.text().startswith("Refresh: measured when"), timeout=60000)
    if rig.refresh_question is not None:
        click(qtbot, next(b for b in rig.refresh_question.buttons() if b.text() == SHOW_ANYWAY))
