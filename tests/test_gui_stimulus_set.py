"""The Stimulus set view with pytest-qt: thumbnails, sort, filter, move, remove, save, reload."""

from __future__ import annotations

import numpy as np

from stimuli.probes import colour_blob, dot_lattice, grating
from stimuli.stimulus_set import StimulusRecord, StimulusSet


def make_set(folder):
    pixels = np.stack([grating(0), dot_lattice(), colour_blob((1, -1, 0))])
    records = [StimulusRecord(image_id="c_grating", kind="max", target_neuron="demo:0", seed=2,
                              predicted={"demo:0": 5.0}),
               StimulusRecord(image_id="a_dots", kind="natural"),
               StimulusRecord(image_id="b_blob", kind="max", target_neuron="demo:1", seed=1,
                              predicted={"demo:1": 9.5})]
    StimulusSet(records, pixels).save(folder)
    return pixels


def test_edit_and_save_a_stimulus_set(qtbot, window, tmp_path):
    pixels = make_set(tmp_path / "set")
    tab = window.stimuli
    assert tab.open(tmp_path / "set")
    assert tab.table.rowCount() == 3 and not tab.table.item(0, 0).icon().isNull()
    assert tab.table.item(2, 6).text() == "9.500"
    tab.sort_by(1)
    assert tab.stimulus_set.ids == ["a_dots", "b_blob", "c_grating"]
    tab.sort_by(4)  # seed: numbers first, blanks last
    assert tab.stimulus_set.ids == ["b_blob", "c_grating", "a_dots"]
    tab.filter.setText("max")
    assert [tab.table.isRowHidden(r) for r in range(3)] == [False, False, True]
    tab.filter.setText("")
    tab.table.selectRow(2)
    tab.move_selected(-1)
    assert tab.stimulus_set.ids == ["b_blob", "a_dots", "c_grating"]
    tab.table.selectRow(0)
    tab.remove_selected()
    assert tab.stimulus_set.ids == ["a_dots", "c_grating"]
    with qtbot.waitSignal(tab.message) as said:
        tab.save()
    assert "Saved 2 images" in said.args[0]
    reloaded = StimulusSet.load(tmp_path / "set")
    assert reloaded.ids == ["a_dots", "c_grating"]
    assert (reloaded.pixels[0] == pixels[1]).all() and (reloaded.pixels[1] == pixels[0]).all()
    assert not (tmp_path / "set" / "b_blob.png").exists()


def test_opening_a_folder_that_is_not_a_set_is_a_message(qtbot, window, tmp_path):
    with qtbot.waitSignal(window.stimuli.message) as said:
        assert not window.stimuli.open(tmp_path)
    assert "no manifest.json" in said.args[0]
