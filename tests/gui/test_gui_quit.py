"""Quitting the window with work only it holds: designed images not added to the set, and stimulus-set
edits not saved, are a question (Save / Discard / Cancel, Cancel the default), never lost silently."""

from __future__ import annotations

import pytest
from PyQt6.QtWidgets import QMessageBox

from compactrig.stimuli.stimulus_set import StimulusSet

from support.user_input import (
    answer_folder_dialog,
    answer_message_box,
    choose,
    click,
    click_item,
    click_row,
    open_tab,
    press_enter_on_message_box,
    type_into,
)

pytestmark = pytest.mark.slow

Buttons = QMessageBox.StandardButton


def test_designed_images_are_asked_about_and_save_puts_them_in_the_saved_set(qtbot, window, tmp_path, monkeypatch):
    design = window.design
    open_tab(qtbot, window.tabs, design)
    click_item(qtbot, design.neurons, 2)
    choose(qtbot, design.method, "max")
    type_into(qtbot, design.n_images, "2")
    type_into(qtbot, design.steps, "4")
    with qtbot.waitSignal(design.message, timeout=60000):
        click(qtbot, design.run_button)
    assert design.grid.count() == 2
    seen: list[str] = []
    press_enter_on_message_box(qtbot, seen)
    window.close()
    assert window.isVisible(), "Enter is Cancel: the window stays"
    assert "2 designed image(s) not added to the stimulus set" in seen[0]
    answer_message_box(Buttons.Save)
    answer_folder_dialog(monkeypatch, tmp_path / "kept")
    window.close()
    assert not window.isVisible()
    assert StimulusSet.load(tmp_path / "kept").ids == ["max_demo-2_seed0", "max_demo-2_seed1"]


def test_unsaved_set_edits_are_asked_about_and_discard_quits_without_them(qtbot, window, tmp_path, monkeypatch):
    stimuli = window.stimuli
    open_tab(qtbot, window.tabs, stimuli)
    click(qtbot, stimuli.probes_button)
    answer_message_box(Buttons.Cancel, expect="changes to the stimulus set (30 images) not saved")
    window.close()
    assert window.isVisible()
    answer_folder_dialog(monkeypatch, tmp_path / "set")
    click(qtbot, stimuli.save_button)
    window.close()  # saved: nothing to ask
    assert not window.isVisible()


def test_a_saved_set_edited_again_names_its_folder_and_discard_leaves_it_as_saved(qtbot, window, tmp_path,
                                                                                 monkeypatch):
    stimuli = window.stimuli
    open_tab(qtbot, window.tabs, stimuli)
    click(qtbot, stimuli.probes_button)
    answer_folder_dialog(monkeypatch, tmp_path / "set")
    click(qtbot, stimuli.save_button)
    click_row(qtbot, stimuli.table, 0)
    click(qtbot, stimuli.remove_button)
    answer_message_box(Buttons.Discard, expect=f"(29 images) not saved to {tmp_path / 'set'}")
    window.close()
    assert not window.isVisible()
    assert len(StimulusSet.load(tmp_path / "set")) == 30
