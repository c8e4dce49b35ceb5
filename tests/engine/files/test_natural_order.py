"""Unit and neuron names sort as people count them, in tables and exports."""

from __future__ import annotations

from compactrig.engine.files.natural_order import natural_sorted


def test_names_sort_as_people_count():
    assert natural_sorted(["unit10", "unit2", "Unit1", "unit02b", "n"]) == ["n", "Unit1", "unit2", "unit02b", "unit10"]
    assert natural_sorted(["201025:10", "190923:3", "201025:9"]) == ["190923:3", "201025:9", "201025:10"]
