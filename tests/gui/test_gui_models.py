"""The window's Models tab, driven with pytest-qt: bank, search, facts, distribution, errors."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtWidgets import QFileDialog, QMessageBox

from compactrig.engine.models.bank import load_bank
from compactrig.gui.qt_parts import cell_text
from compactrig.stimuli.probes import standard_probes

from support.independent_model import evaluate
from support.user_input import (
    answer_folder_dialog,
    answer_message_box,
    click,
    click_row,
    open_tab,
    press_message_box_button,
)


def test_demo_bank_search_and_distribution(qtbot, window, tmp_path):
    tab = window.models
    open_tab(qtbot, window.tabs, tab)
    assert tab.table.rowCount() == 3
    qtbot.keyClicks(tab.search, "dot")
    visible = [r for r in range(3) if not tab.table.isRowHidden(r)]
    assert visible == [2]
    click_row(qtbot, tab.table, 2, column=0)
    qtbot.waitUntil(lambda: tab.distribution is not None and tab.selected_neuron() == "demo:2"
                    and "best image" in tab.facts.text(), timeout=20000)
    probes = standard_probes()
    expected = evaluate(load_bank().state_dict("demo:2"), np.stack([p.pixels for p in probes]))
    assert tab.distribution.maximum == pytest.approx(expected.max(), rel=1e-4)
    assert tab.distribution.best_image == probes[int(expected.argmax())].probe_id == "dots"
    assert tab.distribution.counts.sum() == len(probes)
    assert "3595 parameters" in tab.facts.text()


def test_a_bad_bank_folder_or_image_folder_is_a_message_and_the_window_survives(qtbot, window, tmp_path, monkeypatch):
    tab = window.models
    open_tab(qtbot, window.tabs, tab)
    answer_folder_dialog(monkeypatch, tmp_path)
    tab.bank_choice.setFocus()
    with qtbot.waitSignal(tab.message) as said:
        qtbot.keyClicks(tab.bank_choice, "f")  # "folder…", answered with a folder that holds no models
    assert "no models_torch/ folder" in said.args[0]
    assert tab.table.rowCount() == 3 and tab.bank_choice.currentText() == "demo", "the previous bank stays"
    asked = answer_folder_dialog(monkeypatch, tmp_path / "none")
    press_message_box_button("A folder…", expect="from a .zip file or from a folder")
    with qtbot.waitSignal(tab.message) as said:
        click(qtbot, tab.images_button)
    assert "no such file or folder" in said.args[0] and asked == ["Images (a folder of images)"]
    opened: list = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *args, **kwargs: opened.append(args)))
    answer_message_box(QMessageBox.StandardButton.Cancel)
    with qtbot.assertNotEmitted(tab.message):
        click(qtbot, tab.images_button)
    assert not opened and asked == ["Images (a folder of images)"], "Cancel is cancel: no other dialog"
    assert window.isVisible()


def test_closing_the_window_while_a_prediction_runs_ends_its_thread(qtbot, window):
    tab = window.models
    open_tab(qtbot, window.tabs, tab)
    click_row(qtbot, tab.table, 1, column=0)  # starts a prediction job for the neuron
    threads = [job.worker_thread for job in tab.jobs]
    assert threads
    window.close()
    assert all(not thread.isRunning() for thread in threads) and len(tab.jobs) == 0


def test_the_filter_moves_the_detail_pane_and_a_bank_that_cannot_load_leaves_the_choice(qtbot, window):
    tab = window.models
    open_tab(qtbot, window.tabs, tab)
    click_row(qtbot, tab.table, 0, column=0)
    qtbot.waitUntil(lambda: "demo:0" in tab.facts.text(), timeout=20000)
    qtbot.keyClicks(tab.search, "dot")
    assert tab.selected_neuron() == "demo:2", "the hidden neuron's details are not kept"
    qtbot.waitUntil(lambda: "demo:2" in tab.facts.text(), timeout=20000)
    qtbot.keyClicks(tab.search, "zzz")
    assert tab.selected_neuron() is None and "No neuron matches" in tab.facts.text()
    with qtbot.waitSignal(tab.message) as said:
        qtbot.wait(500)
        tab.bank_choice.setFocus()
        qtbot.keyClicks(tab.bank_choice, "p")  # choose "published" from the keyboard; nothing was fetched
    assert said.args[0].startswith("the published models are not on this machine yet") and "Fetch" in said.args[0]
    assert tab.bank_choice.currentText() == "demo" and tab.table.rowCount() == 3, "the choice shows the bank shown"


def test_a_bank_switch_shows_the_new_banks_first_neuron_not_the_last_ones(qtbot, window, monkeypatch, shared_data):
    """With row 0 of the demo bank chosen, opening the published folder selects row 0 again: its details and
    distribution must be the new neuron's (the row index did not change, so nothing used to redraw them)."""
    tab = window.models
    open_tab(qtbot, window.tabs, tab)
    click_row(qtbot, tab.table, 0, column=0)
    qtbot.waitUntil(lambda: "demo:0" in tab.facts.text() and tab.distribution is not None, timeout=20000)
    answer_folder_dialog(monkeypatch, shared_data / "data_compact_models")
    tab.bank_choice.setFocus()
    with qtbot.waitSignal(tab.message, timeout=60000):
        qtbot.keyClicks(tab.bank_choice, "f")  # "folder…", answered with the published models' folder
    first = tab.bank.neurons[0].neuron_id
    assert tab.table.rowCount() == len(tab.bank) > 3 and tab.selected_neuron() == first
    qtbot.waitUntil(lambda: first in tab.facts.text() and "demo:0" not in tab.facts.text(), timeout=30000)
    probes = standard_probes()
    expected = evaluate(tab.bank.state_dict(first), np.stack([p.pixels for p in probes]))
    qtbot.waitUntil(lambda: tab.distribution is not None
                    and tab.distribution.maximum == pytest.approx(expected.max(), rel=1e-4), timeout=30000)


def test_the_description_names_the_recorded_neuron_and_the_demo_models_say_they_are_demo(qtbot, window, shared_data,
                                                                                        monkeypatch):
    """The data README: compact_model_S_neuronI predicts neuron I of recording session S; the demo models
    are no recorded neuron, and say so."""
    tab = window.models
    open_tab(qtbot, window.tabs, tab)
    descriptions = [cell_text(tab.table, row, 1) for row in range(tab.table.rowCount())]
    assert len(descriptions) == 3 and all(d.endswith("(demo model, no recorded neuron)") for d in descriptions)
    answer_folder_dialog(monkeypatch, shared_data / "data_compact_models")
    tab.bank_choice.setFocus()
    qtbot.keyClicks(tab.bank_choice, "f")  # "folder…", answered with the published models
    files = (shared_data / "data_compact_models" / "models_torch").glob("compact_model_*_neuron*.pt")
    published = {f"{s}:{i}": f"session {s}, neuron {i}"
                 for s, i in (file.stem.removeprefix("compact_model_").split("_neuron") for file in files)}
    assert tab.table.rowCount() == len(published) == 219
    shown = tab.bank_choice.currentText()
    assert shown == "data_compact_models"
    wide = tab.bank_choice.fontMetrics().horizontalAdvance(shown) + 20  # the whole name, beside the arrow
    least = max(tab.bank_choice.minimumWidth(), tab.bank_choice.minimumSizeHint().width())  # what a layout keeps
    assert least > wide, "no layout squeezes the choice below the bank's whole name"
    assert {cell_text(tab.table, r, 0): cell_text(tab.table, r, 1) for r in range(219)} == published
    qtbot.keyClicks(tab.search, "session 201025, neuron 2")
    visible = [cell_text(tab.table, r, 0) for r in range(219) if not tab.table.isRowHidden(r)]
    assert visible[0] == "201025:2" and all(v.startswith("201025:2") for v in visible)
    qtbot.waitUntil(lambda: tab.selected_neuron() == "201025:2" and "session 201025, neuron 2" in tab.facts.text(),
                    timeout=20000)
