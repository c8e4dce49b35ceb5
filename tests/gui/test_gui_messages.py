"""Messages a window user can act on: every line kept whole under Messages (the status bar cuts long ones),
a failed download naming what the window reads (not a command-line option), and a rig text that is not TOML
quoted at its line, which the editor highlights."""

from __future__ import annotations

import pytest

from support.user_input import click, open_tab, retype

pytestmark = pytest.mark.needs_display


def test_a_failed_fetch_is_kept_whole_under_messages_and_names_what_the_window_reads(qtbot, window, tmp_path,
                                                                                    monkeypatch):
    missing = tmp_path / "mirror" / "models.zip"
    monkeypatch.setenv("COMPACTRIG_MODELS_URL", missing.as_uri())
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # where a fetch would put the bank: not the user's
    models = window.models
    open_tab(qtbot, window.tabs, models)
    with qtbot.waitSignal(models.message, timeout=20000,
                          check_params_cb=lambda text: text.startswith("could not download")) as said:
        click(qtbot, models.fetch_button)
    failure = said.args[0]
    assert "COMPACTRIG_MODELS_URL" in failure and "pass --url" not in failure, failure
    assert len(failure) > 150, "long enough for the status bar to cut"
    button = window.messages
    assert button.text() == f"Messages ({len(button.lines)})" and button.lines[-1] == failure
    click(qtbot, button)
    assert button.dialog.isVisible()
    shown = button.view.toPlainText().splitlines()
    assert shown[-1].endswith(failure), "the whole line, as said"
    assert any(line.endswith("Fetching the published models…") for line in shown), "the earlier lines too"
    assert not (tmp_path / "mirror").exists()


def test_a_rig_text_that_is_not_toml_quotes_its_line_and_the_editor_marks_it(qtbot, window):
    rig = window.rig
    open_tab(qtbot, window.tabs, rig)
    retype(qtbot, rig.rig_text, "frames_off = ", "frames_off = = ")
    click(qtbot, rig.validate_button)
    problem = rig.rig_problems.text().splitlines()[0]
    lines = rig.rig_text.toPlainText().splitlines()
    broken = next(k for k, line in enumerate(lines) if "= =" in line)
    assert f"line {broken + 1} reads {lines[broken].strip()!r}" in problem, problem
    assert rig.rig_text.textCursor().blockNumber() == broken, "the cursor is on the line named"
    assert len(rig.rig_text.extraSelections()) == 1
    retype(qtbot, rig.rig_text, "frames_off = = ", "frames_off = ")
    click(qtbot, rig.validate_button)
    assert rig.rig_problems.text().startswith("Rig is valid") and not rig.rig_text.extraSelections()
