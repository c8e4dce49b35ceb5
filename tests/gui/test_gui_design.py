"""The Design and Inspect views, driven with pytest-qt: synthesize for a neuron, keep the results in
the stimulus set, save it; cancel; take a neuron apart; settings survive a restart."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtCore import Qt

from compactrig.engine.models.bank import load_bank
from compactrig.gui.main_window import MainWindow
from compactrig.gui.settings import settings_path
from compactrig.stimuli.stimulus_set import StimulusSet
from compactrig.stimuli.synthesis import SynthesisSettings, initial_noise

from support.banks import TWO_SESSIONS, two_session_bank
from support.independent_model import evaluate
from support.user_input import (
    answer_folder_dialog,
    choose,
    click,
    click_item,
    hover_item,
    open_file_dialog_answer,
    open_tab,
    toggle_tick,
    type_into,
)


def test_two_maximizing_images_for_a_neuron_land_in_the_set(qtbot, window, tmp_path, monkeypatch):
    design = window.design
    open_tab(qtbot, window.tabs, design)
    click_item(qtbot, design.neurons, 2)
    assert design.chosen_neurons() == ["demo:2"]
    choose(qtbot, design.method, "max")
    type_into(qtbot, design.n_images, "2")
    type_into(qtbot, design.steps, "12")
    with qtbot.waitSignal(design.message, timeout=60000) as said:
        click(qtbot, design.run_button)
        assert design.first_seed.value() == 0, "while it runs, the box shows the seeds in use"
    assert "2 image(s) designed" in said.args[0]
    assert design.first_seed.value() == 2, "the next run makes new images"
    assert design.preview.pixmap() is not None and not design.preview.pixmap().isNull()
    assert design.grid.count() == 2
    click(qtbot, design.add_button)
    in_set = window.stimuli.stimulus_set
    assert in_set.ids == ["max_demo-2_seed0", "max_demo-2_seed1"]
    with qtbot.waitSignal(window.stimuli.message) as said:
        click(qtbot, design.add_button)  # the same images again
    assert said.args[0] == "The 2 image(s) are already in the stimulus set: nothing added"
    assert window.stimuli.stimulus_set.ids == in_set.ids
    state = load_bank("demo").state_dict("demo:2")
    shown = evaluate(state, in_set.pixels)
    start = evaluate(state, np.rint(np.stack([initial_noise(s, SynthesisSettings()) for s in (0, 1)])).astype(np.uint8))
    assert (shown > start + 1.0).all(), "the images drive the neuron far above their starting noise"
    for record, value in zip(in_set.records, shown):
        assert record.kind == "max" and record.target_neuron == "demo:2" and record.method["steps"] == 12
        assert record.predicted["demo:2"] == pytest.approx(value, rel=1e-3, abs=1e-3)
    open_tab(qtbot, window.tabs, window.stimuli)
    assert window.stimuli.table.rowCount() == 2
    answer_folder_dialog(monkeypatch, tmp_path / "myset")
    click(qtbot, window.stimuli.save_button)
    assert StimulusSet.load(tmp_path / "myset").ids == in_set.ids
    assert window.rig.stimuli_edit.text() == str(tmp_path / "myset"), "the saved set is the session's set"


def test_unticked_results_stay_out_and_cancel_keeps_the_best_so_far(qtbot, window):
    design = window.design
    open_tab(qtbot, window.tabs, design)
    click_item(qtbot, design.neurons, 0)
    click_item(qtbot, design.neurons, 1, add=True)
    assert design.chosen_neurons() == ["demo:0", "demo:1"]
    type_into(qtbot, design.n_images, "1")
    type_into(qtbot, design.steps, "5000")
    with qtbot.waitSignal(design.message, timeout=60000) as said:
        click(qtbot, design.run_button)
        qtbot.waitUntil(lambda: design.progress.value() >= 3, timeout=30000)
        click(qtbot, design.cancel_button)
    assert said.args[0].startswith("cancelled after") and f"{design.grid.count()} image(s) kept" in said.args[0]
    assert 1 <= design.grid.count() <= 2 and design.progress.value() < 5000
    assert design.progress.text().startswith("cancelled at"), "the bar says why it stopped short"
    toggle_tick(qtbot, design.grid, 0)
    assert design.grid.item(0).checkState() == Qt.CheckState.Unchecked
    click(qtbot, design.add_button)
    assert len(window.stimuli.stimulus_set) == design.grid.count() - 1
    assert design.results.ids[0] not in window.stimuli.stimulus_set.ids


def test_gaudy_needs_no_neuron_and_adversarial_needs_one(qtbot, window):
    design = window.design
    open_tab(qtbot, window.tabs, design)
    assert design.chosen_neurons() == []
    choose(qtbot, design.method, "adversarial u")
    with qtbot.waitSignal(design.message) as said:
        click(qtbot, design.run_button)
    assert "Choose at least one neuron" in said.args[0]
    choose(qtbot, design.method, "gaudy")
    with qtbot.waitSignal(design.message, timeout=30000):
        click(qtbot, design.run_button)
    assert design.grid.count() == len(design.natural)
    assert set(np.unique(design.results.pixels)) <= {0, 255}


def test_inspect_shows_the_filters_that_carry_the_preference(qtbot, window):
    inspect = window.inspect
    open_tab(qtbot, window.tabs, inspect)
    inspect.neuron.setFocus()
    qtbot.keyClicks(inspect.neuron, "demo:1")
    inspect.image.setFocus()
    qtbot.keyClicks(inspect.image, "blob_r")
    assert (inspect.neuron.currentText(), inspect.image.currentText()) == ("demo:1", "blob_red")
    assert inspect.busy.text() == "Taking demo:1 apart on blob_red…" and not inspect.results.isEnabled(), \
        "while it is worked out, the last result is greyed and the view says what it is doing"
    qtbot.waitUntil(lambda: inspect.inspection is not None and "demo:1" in inspect.summary.text()
                    and "blob_red" in inspect.summary.text(), timeout=20000)
    assert inspect.busy.text() == "" and inspect.results.isEnabled()
    found = inspect.inspection
    assert f"filter {found.strongest_filters()[0]}" in inspect.summary.text()
    assert not inspect.filters_view.pixmap().isNull()
    assert all(not view.pixmap().isNull() for view in inspect.stage_views)
    channels = inspect.channel_plot.getAxis("bottom")
    ticks = [value for value, _ in channels._tickLevels[0]]
    assert ticks == list(range(len(found.readout_weights))) and not channels.autoSIPrefix, \
        "channels are numbered 0, 1, ... (no fractional ticks, no SI scale)"


def test_settings_survive_a_restart(qtbot, tmp_path, monkeypatch):
    first = MainWindow()
    qtbot.addWidget(first)
    first.show()
    rig_file = tmp_path / "rig.toml"
    rig_file.write_text("[timing]\nframes_on = 3\n[source]\nname = \"simulated\"\n[source.options]\nseed = 7\n")
    open_tab(qtbot, first.tabs, first.rig)
    open_file_dialog_answer(monkeypatch, rig_file)
    click(qtbot, first.rig.open_rig_button)
    type_into(qtbot, first.rig.repeats, "5")
    first.resize(1000, 700)
    first.close()
    second = MainWindow()
    qtbot.addWidget(second)
    assert second.rig.rig_path == rig_file and "frames_on = 3" in second.rig.rig_text.toPlainText()
    assert second.rig.source.values() == {"seed": "7"}
    assert second.rig.repeats.value() == 5
    assert second.tabs.currentWidget() is second.rig
    assert (second.width(), second.height()) == (1000, 700)
    second.close()  # (qtbot holds windows weakly: close before the last reference goes)


def test_damaged_settings_are_set_aside_with_a_message(qtbot):
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    main = MainWindow()
    qtbot.addWidget(main)
    assert "unreadable settings" in main.statusBar().currentMessage()
    assert main.models.bank is not None and main.models.table.rowCount() == 3, "started with the demo bank"
    assert path.with_suffix(".damaged.json").read_text() == "{not json"
    main.close()


def test_inspect_offers_the_stimulus_sets_images_too(qtbot, window, tmp_path, monkeypatch):
    from compactrig.stimuli.probes import grating
    from compactrig.stimuli.stimulus_set import StimulusRecord
    pixels = grating(45)[None]
    StimulusSet([StimulusRecord(image_id="tilted", kind="natural")], pixels).save(tmp_path / "set")
    open_tab(qtbot, window.tabs, window.stimuli)
    answer_folder_dialog(monkeypatch, tmp_path / "set")
    click(qtbot, window.stimuli.open_button)
    inspect = window.inspect
    open_tab(qtbot, window.tabs, inspect)
    offered = [inspect.image.itemText(k) for k in range(inspect.image.count())]
    assert offered[-1] == "set: tilted" and len(offered) == 9, "the 8 probes, then the set's image"
    inspect.image.setFocus()
    qtbot.keyClicks(inspect.image, "set: t")
    qtbot.waitUntil(lambda: inspect.inspection is not None and "set: tilted" in inspect.summary.text(), timeout=20000)
    expected = evaluate(load_bank().state_dict(inspect.neuron.currentText()), pixels)[0]
    assert f"predicted response {expected:.3f}" in inspect.summary.text()


def test_every_bank_neurons_prediction_is_recorded_only_when_ticked(qtbot, window, tmp_path, monkeypatch):
    models, design = window.models, window.design
    open_tab(qtbot, window.tabs, models)
    answer_folder_dialog(monkeypatch, two_session_bank(tmp_path / "bank"))
    models.bank_choice.setFocus()
    qtbot.keyClicks(models.bank_choice, "f")  # "folder…", answered with the two-session bank
    qtbot.waitUntil(lambda: design.neurons.count() == 3)
    open_tab(qtbot, window.tabs, design)
    click_item(qtbot, design.neurons, 2)
    assert design.chosen_neurons() == ["b:0"]
    choose(qtbot, design.method, "max")
    type_into(qtbot, design.n_images, "1")
    type_into(qtbot, design.steps, "2")
    recorded = []
    for tick in (False, True):
        if tick:
            click(qtbot, design.all_neurons)
        with qtbot.waitSignal(design.message, timeout=60000):
            click(qtbot, design.run_button)
        recorded.append(sorted(design.results.records[0].predicted))
    assert recorded == [["b:0"], sorted(TWO_SESSIONS)], "its own session's neurons (b has one), then every one"


def test_a_new_run_clears_the_last_runs_preview(qtbot, window):
    """The max image of the last run is not shown beside the adversarial run that follows."""
    design = window.design
    open_tab(qtbot, window.tabs, design)
    click_item(qtbot, design.neurons, 2)
    choose(qtbot, design.method, "max")
    type_into(qtbot, design.n_images, "1")
    type_into(qtbot, design.steps, "4")
    with qtbot.waitSignal(design.message, timeout=60000):
        click(qtbot, design.run_button)
    assert not design.preview.pixmap().isNull() and "demo:2, step 4/4" in design.preview_caption.text()
    choose(qtbot, design.method, "gaudy")
    with qtbot.waitSignal(design.message, timeout=60000):
        click(qtbot, design.run_button)
        assert design.preview.pixmap().isNull(), "cleared the moment the new run starts"
        assert "No preview for gaudy" in design.preview_caption.text()
    assert design.preview.pixmap().isNull(), "gaudy draws no preview: nothing stale appears after it either"


def test_adversarial_results_show_the_source_images_response_then_the_new_one_and_the_full_name(qtbot, window):
    """Each result says what its source image drew from the neuron and what the nudged image draws (the change
    is the point); a name the grid cuts short is whole in its tooltip."""
    design = window.design
    open_tab(qtbot, window.tabs, design)
    click_item(qtbot, design.neurons, 2)
    assert hover_item(qtbot, design.neurons, 2) == "demo:2  dot detector (demo model, no recorded neuron)"
    choose(qtbot, design.method, "adversarial u")
    type_into(qtbot, design.steps, "3")
    with qtbot.waitSignal(design.message, timeout=60000):
        click(qtbot, design.run_button)
    state = load_bank().state_dict("demo:2")
    source, new = evaluate(state, design.natural.pixels), evaluate(state, design.results.pixels)
    assert design.grid.count() == len(design.natural) == len(source)
    for row, (image_id, before, after) in enumerate(zip(design.results.ids, source, new)):
        name, shown = design.grid.item(row).text().split("\n")
        shown_before, shown_after = (float(value) for value in shown.split(" → "))
        assert name == image_id
        assert (shown_before, shown_after) == (pytest.approx(before, abs=1e-3), pytest.approx(after, abs=1e-3))
        assert hover_item(qtbot, design.grid, row) == image_id
    assert (new > source + 0.1).any(), "'up' raised some of the responses"
    cell = design.grid.gridSize().width()
    assert any(design.grid.fontMetrics().horizontalAdvance(i) > cell for i in design.results.ids), \
        "some names are wider than their grid cell: the tooltip is what shows them whole"
