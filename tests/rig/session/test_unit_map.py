"""The one unit-map parser (``UNIT=NEURON`` entries): the Rig view's field and the command line's ``--map``."""

from __future__ import annotations

import pytest

from compactrig.engine.errors import CompactRigError
from compactrig.rig.session.unit_map import parse_unit_map


def test_the_windows_field_and_repeated_maps_read_the_same_entries():
    typed = " unit0=201025:2 , unit1 = 201025:7,, 4=demo:0 "
    expected = {"unit0": "201025:2", "unit1": "201025:7", "4": "demo:0"}
    assert parse_unit_map(typed) == expected
    assert parse_unit_map(["unit0=201025:2", "unit1=201025:7, 4=demo:0"], "--map") == expected
    assert parse_unit_map("") == {} and parse_unit_map([]) == {} and parse_unit_map("  ,  ") == {}


@pytest.mark.parametrize("typed, said", [
    ("unit0", "unit map entry 'unit0': the '=' is missing; write UNIT=NEURON, e.g. unit0=201025:2"),
    ("=201025:2", "unit map entry '=201025:2': the unit's name is missing; write UNIT=NEURON"),
    ("unit0=", "unit map entry 'unit0=': the neuron is missing; write UNIT=NEURON"),
    ("unit0=201025-2", "unit map entry 'unit0=201025-2': '201025-2' is not a neuron id; write SESSION:INDEX"),
    ("unit0=201025:2:3", "'201025:2:3' is not a neuron id"),
    ("unit0=a=demo:1", "'a=demo:1' is not a neuron id"),
    ("unit0=demo:1, unit0=demo:2", "unit map entry 'unit0=demo:2': unit 'unit0' is already mapped (to demo:1); "
                                   "map each unit once"),
])
def test_a_bad_entry_is_one_line_naming_it_and_the_fix(typed, said):
    with pytest.raises(CompactRigError) as error:
        parse_unit_map(typed)
    assert said in str(error.value) and "\n" not in str(error.value)


def test_the_flag_is_named_and_a_unit_mapped_twice_across_maps_is_refused():
    with pytest.raises(CompactRigError, match="^--map entry 'unit1=demo:0': unit 'unit1' is already mapped"):
        parse_unit_map(["unit1=demo:1", "unit1=demo:0"], "--map")
