"""Plugin forms: built from the plugins' own option descriptions, and those descriptions tell the truth."""

from __future__ import annotations

import inspect

import pytest

from compactrig.gui.option_form import OptionForm
from compactrig.plugins.markers import LslMarkers
from compactrig.plugins.registry import GATES, MARKER_OUTPUTS, RESPONSE_SOURCES, available, load_plugin
from compactrig.plugins.sources.base import parse_settings


def test_marker_options_describe_the_constructor_defaults():
    for name in available(MARKER_OUTPUTS):
        output_class = load_plugin(MARKER_OUTPUTS, name)
        parameters = inspect.signature(output_class.__init__).parameters
        for option in output_class.options:
            assert parameters[option.name].default == option.default, (name, option.name)


def test_a_form_gives_back_only_what_the_user_changed_and_the_plugin_parses_it(qtbot):
    source = load_plugin(RESPONSE_SOURCES, "simulated")
    form = OptionForm(source.options, {"seed": 7})
    qtbot.addWidget(form)
    assert form.values() == {"seed": "7"}
    form.fields["window_end_s"].setText("0.2")
    settings = parse_settings("source", "simulated", source.options, form.values())
    assert settings["seed"] == 7 and settings["window_end_s"] == pytest.approx(0.2)
    assert settings["window_start_s"] == pytest.approx(0.05), "untouched fields keep the plugin's default"
    gate = OptionForm(load_plugin(GATES, "always").options)
    qtbot.addWidget(gate)
    assert gate.values() == {}
    markers = OptionForm(LslMarkers.options, {"name": "Rig2Markers"})
    qtbot.addWidget(markers)
    assert LslMarkers(**markers.values()).name == "Rig2Markers"
