"""The one check every response passes before it is stored: spike counts a session can use.

A source is a peer (a recording system, a lab's plugin, a recorded file): its counts are refused unless each
is a real number (not text, not a truth value), finite, not negative and at most ``MAX_COUNT``, each unit id
is text, and the counting window is two finite times in order. A refused response makes its presentation
missing with the reason, so the image is shown again; the collector tells the user once per kind of problem.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from numbers import Real
from typing import Any, cast

MAX_COUNT = 100_000.0
"""Largest count stored for one unit in one presentation's window: 1 kHz (beyond any neuron's
sustained rate) for 100 s (beyond any counting window); anything larger is a fault, not a response."""


@dataclass(frozen=True)
class CountProblem:
    """Why a response cannot be stored: ``kind`` groups problems for telling the user once."""

    kind: str
    reason: str


def check_response(counts: object, window: object) -> tuple[dict[str, float] | None, CountProblem | None]:
    """``(unit -> count as float, None)`` when every count and the counting window (seconds after onset,
    finite, start before end) are usable, else ``(None, the first problem)``."""
    try:
        start, end = (float(v) for v in cast(Iterable[Any], window))  # a non-iterable raises TypeError
        usable = math.isfinite(start) and math.isfinite(end) and start < end
    except (TypeError, ValueError):
        usable = False
    if not usable:
        return None, CountProblem("counting window unusable", f"the counting window {window!r} is not two finite "
                                                              "times, start before end")
    if not isinstance(counts, Mapping):
        return None, CountProblem("not a table of counts",
                                  f"the response is {type(counts).__name__}, not counts per unit")
    checked = {}
    for unit, count in counts.items():
        if not isinstance(unit, str) or not unit:
            return None, CountProblem("unit id not text", f"unit id {unit!r} is not text")
        problem = _count_problem(count)
        if problem is not None:
            return None, CountProblem(f"count {problem}", f"unit {unit!r} count {count!r} is {problem}")
        checked[unit] = float(count)
    return checked, None


def _count_problem(count: object) -> str | None:
    if isinstance(count, bool) or not isinstance(count, Real):
        return f"not a number ({type(count).__name__})"
    value = float(count)
    if math.isnan(value):
        return "not a number (NaN)"
    if math.isinf(value):
        return "infinite"
    if value < 0:
        return "negative"
    if value > MAX_COUNT:
        return f"above {MAX_COUNT:g}"
    return None
