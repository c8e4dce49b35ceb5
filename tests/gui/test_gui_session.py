"""The Rig and Live fits views, driven with pytest-qt: real sessions (presenter process under Xvfb,
simulated source), pause, abort, a plugin that raises, closing the window during a session."""

from __future__ import annotations

import math
import textwrap
import time

import numpy as np
import pytest
from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtWidgets import QApplication, QMessageBox

from compactrig.engine.models.bank import load_bank
from compactrig.gui.rig_tab import SHOW_ANYWAY
from compactrig.rig.session.folder import SessionLock, read_snapshot
from compactrig.stimuli.probes import colour_blob, dot_lattice, grating
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

from support.independent_model import evaluate
from support.rig_view import RIG, UNPACED_RIG, set_up_rig
from support.sessions import count_so_far, table
from support.user_input import (
    answer_folder_dialog,
    choose,
    click,
    click_row,
    open_file_dialog_answer,
    open_tab,
    press_enter_on_message_box,
    retype,
    type_into,
    wheel,
)

pytestmark = [pytest.mark.slow, pytest.mark.needs_display]


@pytest.fixture(scope="module")
def ten_images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("set")
    pixels = np.stack([grating(a) for a in (0, 30, 60, 90, 120, 150)] + [dot_lattice(3), dot_lattice(6)]
                      + [colour_blob((1, -1, 0)), colour_blob((-1, 1, 1))])
    StimulusSet([StimulusRecord(image_id=f"img{i}", kind="natural") for i in range(10)], pixels).save(folder)
    return folder


@pytest.fixture()
def rig_window(qtbot, window, tmp_path, ten_images, monkeypatch):
    main = window
    set_up_rig(qtbot, main, monkeypatch, RIG, tmp_path, ten_images, tmp_path / "session")
    yield main
    if main.rig.running():
        main.rig.stop_and_wait()


def test_a_twenty_presentation_session_puts_one_point_per_image_and_unit(qtbot, rig_window, tmp_path,
                                                                       ten_images):
    window = rig_window
    rig, live = window.rig, window.live
    type_into(qtbot, rig.repeats, "2")
    with qtbot.waitSignal(rig.session_finished, timeout=120000) as finished:
        click(qtbot, rig.start_button)
    assert finished.args == [True], rig.log.toPlainText()
    assert "Presenter: closed" in rig.status.text() and "Presenter: running" not in rig.status.text()
    folder = tmp_path / "session"
    responses = table(folder, "SELECT p.image_id, r.unit, r.count FROM responses r JOIN presentations p "
                               "ON p.ord = r.ord WHERE p.aborted = 0")
    assert len(responses) == 20 * 3
    fit = live.fit
    assert fit.units == ["unit0", "unit1", "unit2"] and fit.n_presentations == 20
    pixels = StimulusSet.load(ten_images).pixels
    bank = load_bank("demo")
    for k, unit in enumerate(fit.units):
        x, y, ids = fit.points(k)
        assert len(x) == 10, "one point per image"
        predicted = evaluate(bank.state_dict(f"demo:{k}"), pixels)
        mean = {i: np.mean([c for image, u, c in responses if image == i and u == unit]) for i in ids}
        order = [int(i[3:]) for i in ids]
        assert np.allclose(x, predicted[order], atol=1e-3)
        assert np.allclose(y, [mean[i] for i in ids])
        assert live.summary.r[k] == pytest.approx(np.corrcoef(predicted[order], y)[0, 1], abs=1e-3)
    open_tab(qtbot, window.tabs, live)
    click_row(qtbot, live.table, [live.table.item(r, 0).text() for r in range(3)].index("unit2"), column=0)
    assert fit.units[live.focus] == "unit2" and len(live.scatter.data) == 10
    assert live.table.rowCount() == 3
    assert rig.progress.value() == 20 and "20/20" in rig.status.text()


def test_pause_then_abort_leaves_a_resumable_session(qtbot, rig_window, tmp_path, monkeypatch):
    window = rig_window
    rig = window.rig
    type_into(qtbot, rig.repeats, "30")
    click(qtbot, rig.start_button)
    qtbot.waitUntil(lambda: rig.progress.value() >= 10, timeout=120000)
    click(qtbot, rig.pause_button)
    qtbot.waitUntil(lambda: "Paused" in rig.status.text(), timeout=20000)
    qtbot.wait(300)  # the trial on screen finishes (a fixation is never cut)
    shown = table(tmp_path / "session", "SELECT COUNT(*) FROM presentations")[0][0]
    qtbot.wait(700)
    assert table(tmp_path / "session", "SELECT COUNT(*) FROM presentations")[0][0] == shown, \
        "no new image is shown while paused (responses still due keep arriving)"
    with qtbot.waitSignal(rig.session_finished, timeout=60000) as finished:
        click(qtbot, rig.abort_button)
    assert finished.args == [False]
    folder = tmp_path / "session"
    planned = table(folder, "SELECT COUNT(*) FROM plan")[0][0]
    answered = table(folder, "SELECT COUNT(DISTINCT ord) FROM responses")[0][0]
    assert planned == 300 and 10 <= answered < 300
    SessionLock(folder).acquire().release()  # nobody holds the session any more
    with qtbot.waitSignal(rig.session_finished, timeout=120000):
        answer_folder_dialog(monkeypatch, folder)
        click(qtbot, rig.resume_button)
        qtbot.waitUntil(lambda: rig.progress.value() > answered, timeout=60000)
        click(qtbot, rig.abort_button)
    assert table(folder, "SELECT COUNT(DISTINCT ord) FROM responses")[0][0] > answered


@pytest.fixture()
def raising_source(tmp_path, monkeypatch):
    """A lab's source plugin, installed by entry point, whose collect() raises."""
    package = tmp_path / "plugin_site"
    (package / "broken_source-1.0.dist-info").mkdir(parents=True)
    (package / "broken_source-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-source\n"
                                                                      "Version: 1.0\n")
    (package / "broken_source-1.0.dist-info" / "entry_points.txt").write_text(
        "[compactrig.response_sources]\nbroken = broken_source:BrokenSource\n")
    (package / "broken_source.py").write_text(textwrap.dedent("""
        from compactrig.plugins.sources.simulated import SimulatedSource

        class BrokenSource(SimulatedSource):
            name = "broken"
            def collect(self, now):
                raise RuntimeError("amplifier unplugged")
    """))
    monkeypatch.syspath_prepend(str(package))


def test_a_plugin_that_raises_shows_an_error_and_the_window_survives(qtbot, raising_source, rig_window, tmp_path,
                                                                    monkeypatch):
    window = rig_window
    rig = window.rig
    choose(qtbot, rig.source.combo, "broken")
    assert rig.source.problem.text() == ""
    click(qtbot, rig.start_button)
    qtbot.waitUntil(lambda: "amplifier unplugged" in rig.log.toPlainText(), timeout=60000)
    qtbot.waitUntil(lambda: "RuntimeError: amplifier unplugged" in window.statusBar().currentMessage(),
                    timeout=15000)
    assert window.isVisible() and rig.running()
    with qtbot.waitSignal(rig.session_finished, timeout=60000):
        click(qtbot, rig.abort_button)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "rig.toml").write_text(RIG.replace('name = "simulated"', 'name = "no-such-plugin"'))
    open_file_dialog_answer(monkeypatch, elsewhere / "rig.toml")
    click(qtbot, rig.open_rig_button)  # a rig file from a machine with another plugin
    assert "is not installed" in rig.source.problem.text()


def test_a_bad_rig_is_listed_and_nothing_starts(qtbot, rig_window):
    window = rig_window
    rig = window.rig
    retype(qtbot, rig.rig_text, "frames_on = 2", "frames_on = -1")
    retype(qtbot, rig.rig_text, "size_deg = 3.0", "size_deg = 'big'")
    messages = []
    rig.message.connect(messages.append)
    click(qtbot, rig.start_button)
    problems = rig.rig_problems.text().splitlines()
    assert len(problems) == 2 and any("frames_on" in p for p in problems) and any("size_deg" in p for p in problems)
    assert messages and not rig.running()


def test_closing_during_a_session_asks_then_stops_it_resumably(qtbot, rig_window, tmp_path):
    window = rig_window
    rig = window.rig
    type_into(qtbot, rig.repeats, "30")
    click(qtbot, rig.start_button)
    qtbot.waitUntil(lambda: rig.progress.value() >= 5, timeout=120000)

    def answer(button):
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox) and "session is running" in box.text()
        box.button(button).click()

    QTimer.singleShot(300, lambda: answer(QMessageBox.StandardButton.No))
    window.close()
    assert window.isVisible() and rig.running(), "answering No keeps the session going"
    QTimer.singleShot(300, lambda: answer(QMessageBox.StandardButton.Yes))
    window.close()
    assert not window.isVisible() and not rig.running()
    folder = tmp_path / "session"
    unanswered = table(folder, "SELECT COUNT(*) FROM presentations p WHERE p.aborted = 0 AND NOT EXISTS "
                                "(SELECT 1 FROM responses r WHERE r.ord = p.ord)")[0][0]
    assert unanswered <= 5, "at most the last trial waits to be settled on resume"
    SessionLock(folder).acquire().release()


def test_enter_on_the_stop_and_quit_question_keeps_the_recording_going(qtbot, rig_window):
    window = rig_window
    rig = window.rig
    type_into(qtbot, rig.repeats, "30")
    click(qtbot, rig.start_button)
    qtbot.waitUntil(lambda: rig.progress.value() >= 5, timeout=120000)
    seen: list[str] = []
    press_enter_on_message_box(qtbot, seen)
    window.close()
    assert "session is running" in seen[0]
    assert window.isVisible() and rig.running(), "No is the default: Enter never ends a recording"
    done = rig.progress.value()
    qtbot.waitUntil(lambda: rig.progress.value() > done, timeout=60000)


def test_closing_returns_within_two_seconds_even_when_the_presenter_hangs(qtbot, rig_window, tmp_path):
    """The presenter is alive but stuck (SIGSTOP): closing the window kills it instead of waiting."""
    import psutil
    window, rig = rig_window, rig_window.rig
    type_into(qtbot, rig.repeats, "30")
    click(qtbot, rig.start_button)
    qtbot.waitUntil(lambda: rig.progress.value() >= 5, timeout=120000)
    presenter = next(c for c in psutil.Process().children(recursive=True) if "spawn" in " ".join(c.cmdline()))
    presenter.suspend()
    QTimer.singleShot(200, lambda: QApplication.activeModalWidget().button(QMessageBox.StandardButton.Yes).click())
    started = time.monotonic()
    window.close()
    assert time.monotonic() - started < 2.0 + 0.2, "the 0.2 s before the question is answered aside"
    assert not window.isVisible() and not rig.running()
    assert not presenter.is_running() or presenter.status() == psutil.STATUS_ZOMBIE, "the hung presenter was killed"
    SessionLock(tmp_path / "session").acquire().release()


def test_abort_while_the_session_is_being_created_shows_nothing(qtbot, rig_window, tmp_path):
    rig = rig_window.rig
    with qtbot.waitSignal(rig.session_finished, timeout=60000) as finished:
        click(qtbot, rig.start_button)
        click(qtbot, rig.abort_button)
    assert finished.args == [False] and not rig.running()
    folder = tmp_path / "session"
    assert (folder / "session.json").exists(), "the session exists and can be resumed"
    assert table(folder, "SELECT COUNT(*) FROM presentations")[0][0] == 0


def test_the_wheel_over_the_source_choice_scrolls_instead_of_switching_it(qtbot, rig_window):
    source = rig_window.rig.source
    assert source.name == "simulated"
    type_into(qtbot, source.form.fields["gain"], "2.5")
    wheel(source.combo, -1)
    wheel(source.combo, 1)
    assert source.name == "simulated" and source.values()["gain"] == "2.5", "the form and its typing survive"
    rig_window.activateWindow()
    source.combo.setFocus(Qt.FocusReason.TabFocusReason)  # tabbed into
    qtbot.waitUntil(source.combo.hasFocus, timeout=5000)
    wheel(source.combo, 1)  # "simulated" is last: one notch up
    assert source.name == "replay", "once focused, the wheel does choose"


def test_the_rig_view_says_why_the_image_is_not_drawn_at_size_deg(qtbot, window):
    """The default rig asks 4 deg, which is 96 screen pixels there; the presenter draws the 112-pixel image at a
    whole multiple of its pixels (1x: 112 px, 4.66 deg), and the view says so rather than a bare 4.66."""
    rig = window.rig
    open_tab(qtbot, window.tabs, rig)
    assert "size_deg = 4.0" in rig.rig_text.toPlainText() and "width_cm = 53.0" in rig.rig_text.toPlainText()
    click(qtbot, rig.validate_button)
    per_degree = 1280 / 53.0 * 2 * 57.0 * math.tan(math.radians(0.5))  # the default screen, eye 57 cm away
    asked = 4.0 * per_degree
    exact = 112 / 4.0 * 53.0 / (1280 * 2 * math.tan(math.radians(0.5)))  # where 112 px would subtend 4 deg
    assert round(asked / 112) == 1 and f"{112 / per_degree:.2f}" == "4.66"
    assert (f"images drawn 112 px (1x their 112 pixels, nearest-neighbour) = 4.66 deg, not the 4 deg of size_deg: "
            f"4 deg is {asked:.1f} px on this screen, and an image is drawn at the whole multiple of its 112 pixels "
            f"nearest size_deg, so that the animal sees exactly its pixels (distance_cm = {exact:.1f} would make "
            "112 px 4 deg)") in " ".join(rig.rig_problems.text().split())
    retype(qtbot, rig.rig_text, "distance_cm = 57.0", f"distance_cm = {exact:.3f}")
    click(qtbot, rig.validate_button)
    assert "images drawn 112 px (1x their 112 pixels, nearest-neighbour) = 4.00 deg (size_deg = 4)" \
        in rig.rig_problems.text()


def test_validate_and_start_check_the_forms_and_name_the_field(qtbot, rig_window, tmp_path):
    rig = rig_window.rig
    type_into(qtbot, rig.source.form.fields["gain"], "abc")
    click(qtbot, rig.validate_button)
    problems = rig.rig_problems.text()
    assert "source 'simulated': gain = 'abc': not a number" in problems and "Rig is valid" not in problems
    with qtbot.waitSignal(rig.message) as said:
        click(qtbot, rig.start_button)
    assert "rig has problems" in said.args[0] and not rig.running()
    assert not (tmp_path / "session" / "session.json").exists(), "nothing was created"
    type_into(qtbot, rig.source.form.fields["gain"], "1.5")
    click(qtbot, rig.validate_button)
    assert rig.rig_problems.text().startswith("Rig is valid")
    type_into(qtbot, rig.unit_map, "unit0=demo:0, unit1=demo-1")
    with qtbot.waitSignal(rig.message) as said:
        click(qtbot, rig.start_button)
    assert said.args[0].startswith("unit map entry 'unit1=demo-1': 'demo-1' is not a neuron id; write SESSION:INDEX")
    assert not rig.running() and not (tmp_path / "session" / "session.json").exists()


def test_after_a_restart_the_last_session_and_its_set_are_shown_and_resume_keeps_it_open(qtbot, rig_window, tmp_path,
                                                                                       ten_images, monkeypatch):
    from compactrig.gui.main_window import MainWindow
    rig = rig_window.rig
    with qtbot.waitSignal(rig.session_finished, timeout=120000):
        click(qtbot, rig.start_button)
    folder = tmp_path / "session"
    stored_count = table(folder, "SELECT COUNT(DISTINCT ord) FROM responses")[0][0]
    rig_window.close()  # the settings are saved as the window closes

    again = MainWindow()
    again.show()
    qtbot.waitExposed(again)
    try:
        qtbot.waitUntil(lambda: again.live.fit is not None and again.live.fit.n_presentations == stored_count,
                        timeout=30000)
        assert again.live.fit.units == ["unit0", "unit1", "unit2"], "the mapped units' fits, from the store"
        assert again.stimuli.stimulus_set.ids == StimulusSet.load(ten_images).ids, "the remembered set is open"
        assert str(folder) in again.rig.status.text()
        open_tab(qtbot, again.tabs, again.rig)
        if not again.rig.hold_open.isChecked():
            click(qtbot, again.rig.hold_open)
        answer_folder_dialog(monkeypatch, folder)
        click(qtbot, again.rig.resume_button)
        qtbot.wait(3000)
        assert again.rig.running(), "a complete session resumed with 'keep running' waits for queued images"
        with qtbot.waitSignal(again.rig.session_finished, timeout=60000) as finished:
            click(qtbot, again.rig.abort_button)
        assert finished.args == [True]
    finally:
        if again.rig.running():
            again.rig.stop_and_wait()
        again.close()


def test_unsaved_rig_edits_survive_a_restart_and_a_refused_option_is_not_remembered(qtbot, window, tmp_path):
    from compactrig.gui.main_window import MainWindow
    rig = window.rig
    open_tab(qtbot, window.tabs, rig)
    rig.rig_text.setFocus()
    rig.rig_text.moveCursor(rig.rig_text.textCursor().MoveOperation.End)
    qtbot.keyClick(rig.rig_text, Qt.Key.Key_Return)
    qtbot.keyClicks(rig.rig_text, "# electrode 3, left hemisphere")
    type_into(qtbot, rig.source.form.fields["gain"], "3.0")
    click(qtbot, rig.validate_button)
    type_into(qtbot, rig.source.form.fields["gain"], "abc")  # typed, never valid
    window.close()
    again = MainWindow()
    again.show()
    qtbot.waitExposed(again)
    try:
        assert "# electrode 3, left hemisphere" in again.rig.rig_text.toPlainText()
        assert "unsaved changes, kept from last time" in again.rig.rig_label.text()
        assert again.rig.source.values().get("gain") == "3.0", "the last valid gain, not the refused 'abc'"
    finally:
        again.close()


def red_pixels(widget) -> int:
    """Pixels of the Rig view's trouble colour (#b00020, anti-aliasing allowed for) in what ``widget`` shows."""
    image = widget.grab().toImage()
    return sum(1 for x in range(image.width()) for y in range(image.height())
               if (lambda c: c.red() > 120 and c.green() < 60 and c.blue() < 80)(image.pixelColor(x, y)))


def test_a_measured_refresh_off_the_rig_files_is_red_and_start_asks_with_stop_the_default(qtbot, window, tmp_path,
                                                                                         ten_images, monkeypatch):
    """Unpaced under Xvfb the display runs at hundreds of Hz, not the rig file's 60: a rig monitor at the wrong
    rate. Enter keeps nothing running; "Show the images anyway" runs the session."""
    main = window
    first, second = tmp_path / "first", tmp_path / "second"
    set_up_rig(qtbot, main, monkeypatch, UNPACED_RIG, tmp_path, ten_images, first)
    rig = main.rig
    type_into(qtbot, rig.repeats, "1")
    click(qtbot, rig.start_button)
    qtbot.waitUntil(lambda: rig.refresh_question is not None, timeout=60000)
    recorded = read_snapshot(first)["refresh_measured"]
    assert len(recorded) == 1 and recorded[0]["differs"] is True
    measured = recorded[0]["measured_hz"]
    assert abs(measured - 60.0) > 0.02 * 60.0
    for shown in (rig.refresh.text(), rig.refresh_question.text()):
        assert f"{measured:.1f} Hz differs from the rig file's 60 Hz" in shown
    assert rig.refresh.isVisible() and red_pixels(rig.refresh) > 20, "the wrong refresh is drawn in red"
    assert f"warning: measured refresh {measured:.1f} Hz" in rig.log.toPlainText()
    qtbot.wait(500)
    assert count_so_far(first, "SELECT COUNT(*) FROM presentations") == 0, "nothing is shown while it asks"
    with qtbot.waitSignal(rig.session_finished, timeout=60000) as finished:
        qtbot.keyClick(rig.refresh_question, Qt.Key.Key_Return)
    assert finished.args == [False] and not rig.running() and rig.refresh_question is None
    assert table(first, "SELECT COUNT(*) FROM presentations")[0][0] == 0
    assert "nothing was shown" in rig.status.text()

    assert rig.session_edit.text() != str(first), "the next Start makes a new session"
    type_into(qtbot, rig.session_edit, str(second))
    click(qtbot, rig.start_button)
    qtbot.waitUntil(lambda: rig.refresh_question is not None, timeout=60000)
    go_on = next(button for button in rig.refresh_question.buttons() if button.text() == SHOW_ANYWAY)
    with qtbot.waitSignal(rig.session_finished, timeout=120000) as finished:
        click(qtbot, go_on)
    assert finished.args == [True]
    assert table(second, "SELECT COUNT(*) FROM presentations WHERE aborted = 0")[0][0] == 10
    assert red_pixels(rig.refresh) > 20, "still red after the run: it ran at the wrong refresh"


def test_a_new_session_does_not_start_with_the_last_sessions_count(qtbot, rig_window, tmp_path):
    rig = rig_window.rig
    type_into(qtbot, rig.repeats, "1")
    with qtbot.waitSignal(rig.session_finished, timeout=120000):
        click(qtbot, rig.start_button)
    assert rig.progress.text() == "10 / 10 presentations"
    type_into(qtbot, rig.session_edit, str(tmp_path / "next"))
    with qtbot.waitSignal(rig.session_finished, timeout=120000):
        click(qtbot, rig.start_button)
        assert rig.progress.text() == "", "no count until the new session's first"
    assert rig.progress.text() == "10 / 10 presentations"
