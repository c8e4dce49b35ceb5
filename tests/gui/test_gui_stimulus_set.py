"""The Stimulus set view, pressed as a user presses it: open, sort by a header, filter, select,
move, remove, save (only the operating system's folder dialog is answered by the test)."""

from __future__ import annotations

import numpy as np
import pytest

from compactrig.engine.models.bank import load_bank
from compactrig.stimuli.probes import colour_blob, dot_lattice, grating
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

from support.independent_model import evaluate
from support.user_input import answer_folder_dialog, click, click_header, click_row, open_tab


def make_set(folder):
    pixels = np.stack([grating(0), dot_lattice(), colour_blob((1, -1, 0))])
    records = [StimulusRecord(image_id="c_grating", kind="max", target_neuron="demo:0", seed=2,
                              predicted={"demo:0": 5.0}),
               StimulusRecord(image_id="a_dots", kind="natural"),
               StimulusRecord(image_id="b_blob", kind="max", target_neuron="demo:1", seed=1,
                              predicted={"demo:1": 9.5})]
    StimulusSet(records, pixels).save(folder)
    return pixels


def test_edit_and_save_a_stimulus_set(qtbot, window, tmp_path, monkeypatch):
    pixels = make_set(tmp_path / "set")
    tab = window.stimuli
    open_tab(qtbot, window.tabs, tab)
    answer_folder_dialog(monkeypatch, tmp_path / "set")
    click(qtbot, tab.open_button)
    assert tab.table.rowCount() == 3 and not tab.table.item(0, 0).icon().isNull()
    assert tab.table.item(2, 6).text() == "9.500"
    click_header(qtbot, tab.table, 1)
    assert tab.stimulus_set.ids == ["a_dots", "b_blob", "c_grating"]
    click_header(qtbot, tab.table, 4)  # seed: numbers first, blanks last
    assert tab.stimulus_set.ids == ["b_blob", "c_grating", "a_dots"]
    qtbot.keyClicks(tab.filter, "max")
    assert [tab.table.isRowHidden(r) for r in range(3)] == [False, False, True]
    tab.filter.clear()
    click_row(qtbot, tab.table, 2)
    click(qtbot, tab.up_button)
    assert tab.stimulus_set.ids == ["b_blob", "a_dots", "c_grating"]
    click_row(qtbot, tab.table, 0)
    click(qtbot, tab.remove_button)
    assert tab.stimulus_set.ids == ["a_dots", "c_grating"]
    with qtbot.waitSignal(tab.message) as said:
        click(qtbot, tab.save_button)
    assert "Saved 2 images" in said.args[0]
    reloaded = StimulusSet.load(tmp_path / "set")
    assert reloaded.ids == ["a_dots", "c_grating"]
    assert (reloaded.pixels[0] == pixels[1]).all() and (reloaded.pixels[1] == pixels[0]).all()
    assert not (tmp_path / "set" / "b_blob.png").exists()


def test_save_of_a_new_set_asks_where_and_writes_it(qtbot, window, tmp_path, monkeypatch):
    """A set built in the window (no folder yet): Save asks for a folder in a save dialog, where a new one is
    named by typing it, then writes the set there."""
    make_set(tmp_path / "source")
    tab = window.stimuli
    open_tab(qtbot, window.tabs, tab)
    assert tab.add(StimulusSet.load(tmp_path / "source"))  # as the Design view hands images over
    asked = answer_folder_dialog(monkeypatch, tmp_path / "new" / "my set")  # typed: neither folder exists yet
    with qtbot.waitSignal(tab.saved) as saved:
        click(qtbot, tab.save_button)
    assert asked == ["Save the stimulus set as (a folder: a new name, or a set's own folder)"]
    assert saved.args[0] == tmp_path / "new" / "my set"
    assert StimulusSet.load(tmp_path / "new" / "my set").ids == ["c_grating", "a_dots", "b_blob"]


def test_opening_a_folder_that_is_not_a_set_is_a_message(qtbot, window, tmp_path, monkeypatch):
    open_tab(qtbot, window.tabs, window.stimuli)
    answer_folder_dialog(monkeypatch, tmp_path)
    with qtbot.waitSignal(window.stimuli.message) as said:
        click(qtbot, window.stimuli.open_button)
    assert "no manifest.json" in said.args[0]


def test_predict_all_neurons_adds_the_banks_predictions_to_a_set_that_holds_some(qtbot, window, tmp_path,
                                                                                 monkeypatch):
    pixels = make_set(tmp_path / "set")  # two records hold one neuron's prediction, one holds none
    tab = window.stimuli
    open_tab(qtbot, window.tabs, tab)
    answer_folder_dialog(monkeypatch, tmp_path / "set")
    click(qtbot, tab.open_button)
    with qtbot.waitSignal(tab.message, timeout=30000, check_params_cb=lambda text: "Save to keep" in text):
        click(qtbot, tab.predict_button)
    bank = load_bank("demo")
    expected = {n: evaluate(bank.state_dict(n), pixels) for n in bank.neuron_ids}
    for row, record in enumerate(tab.stimulus_set.records):
        assert set(record.predicted) == set(bank.neuron_ids)
        for neuron_id, values in expected.items():
            assert record.predicted[neuron_id] == pytest.approx(values[row], rel=1e-4, abs=1e-5)
    assert tab.table.item(0, 6).text() == f"{expected['demo:0'][0]:.3f}", "the target column shows the new value"
    click(qtbot, tab.save_button)
    assert StimulusSet.load(tmp_path / "set").records == tab.stimulus_set.records
