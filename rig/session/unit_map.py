"""The unit map: which recorded unit is compared with which model neuron, read from what a user typed.

One syntax wherever a map is typed: ``UNIT=NEURON`` entries, separated by commas (the Rig view's field,
``unit0=201025:2, unit1=201025:7``) or given one per ``--map`` (the command line; a ``--map`` may hold
several, comma-separated). A neuron is named as the banks name it, ``SESSION:INDEX`` (``201025:2``,
``demo:1``); whether the bank has it, and whether the source records the unit, is checked when the
session starts (``setup.start_session``). Every problem is one line naming the entry and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from compactrig.engine.errors import CompactRigError

NEURON_ID = re.compile(r"\w+:\d+")
"""A bank's neuron id: the session's name (letters, digits, underscores), a colon, the unit's row."""
EXAMPLE = "unit0=201025:2"


def parse_unit_map(typed: str | Iterable[str], what: str = "unit map") -> dict[str, str]:
    """``typed`` (one text, or one text per ``--map``) -> {unit: neuron id}; ``what`` names the field or flag
    in the errors. Empty text is an empty map; each unit may be mapped once."""
    texts = [typed] if isinstance(typed, str) else list(typed)
    mapping: dict[str, str] = {}
    for entry in (part.strip() for text in texts for part in text.split(",")):
        if not entry:
            continue
        unit, sep, neuron = (side.strip() for side in entry.partition("="))
        if not sep or not unit or not neuron:
            missing = "the '='" if not sep else "the unit's name" if not unit else "the neuron"
            raise CompactRigError(f"{what} entry {entry!r}: {missing} is missing; write UNIT=NEURON, e.g. {EXAMPLE}")
        if not NEURON_ID.fullmatch(neuron):
            raise CompactRigError(f"{what} entry {entry!r}: {neuron!r} is not a neuron id; write SESSION:INDEX, "
                                  f"e.g. {EXAMPLE} (`compactrig models list` shows a bank's ids)")
        if unit in mapping:
            raise CompactRigError(f"{what} entry {entry!r}: unit {unit!r} is already mapped (to {mapping[unit]}); "
                                  "map each unit once")
        mapping[unit] = neuron
    return mapping
