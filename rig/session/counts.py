"""The one check every response passes before it is stored: spike counts a session can use.

A source is a peer (a recording system, a lab's plugin, a recorded file): its counts are refused unless each
is a real number (not text, not a truth value), finite, not negative and at most ``MAX_COUNT``, each unit id
is text, and the counting window is two finite times in order; spike times, when it sends them, are refused
unless the span is two finite times in order, holding the window, and each unit's times (a unit it counted)
are at most ``MAX_COUNT`` finite numbers within the span. A refused response makes its presentation
missing with the reason, so the image is shown again; the collector tells the user once per kind of problem.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from numbers import Real
from typing import Any, cast

import numpy as np

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


def check_spikes(spikes: object, span: object, window: tuple[float, float], units: Iterable[str]
                 ) -> tuple[dict[str, np.ndarray] | None, CountProblem | None]:
    """``(unit -> sorted float64 spike times, None)`` when ``spikes`` (times in s from the onset) and their
    ``span`` are usable for a response counted in ``window`` over ``units``, else ``(None, the first problem)``."""
    try:
        low, high = (float(v) for v in cast(Iterable[Any], span))
        usable = math.isfinite(low) and math.isfinite(high) and low <= window[0] and window[1] <= high
    except (TypeError, ValueError):
        usable = False
    if not usable:
        return None, CountProblem("spike span unusable", f"the span of spike times {span!r} is not two finite times "
                                                         f"holding the counting window {window!r}")
    if not isinstance(spikes, Mapping):
        return None, CountProblem("not a table of spike times",
                                  f"the spike times are {type(spikes).__name__}, not times per unit")
    counted, checked = set(units), {}
    for unit, times in spikes.items():
        if unit not in counted:
            return None, CountProblem("spike times of a unit not counted", f"spike times of unit {unit!r}, which has "
                                                                             "no count")
        try:
            values = np.asarray(times, dtype=np.float64)
        except (TypeError, ValueError):
            values = np.array([np.nan])
        if values.ndim != 1 or len(values) > MAX_COUNT or not np.isfinite(values).all() \
                or ((values < low) | (values >= high)).any():
            return None, CountProblem("spike times unusable", f"unit {unit!r} spike times are not at most "
                                                              f"{MAX_COUNT:g} finite times within the span")
        checked[unit] = np.sort(values)
    return checked, None
