"""Counting windows chosen from the spikes: adopted for a unit or for every unit, and the counts they give.

The source counts each response in its own window, and those counts are stored and never changed. A
unit whose PSTH shows that window missing its response (V4 latencies run from about 60 to over 100 ms)
can be counted again in a window the experimenter adopts, per unit or for every unit: its counts are
recounted from the spike times the store kept, ``[start, end)`` as the sources count. Everything that
reads a session's counts (its fits, the report, the readouts, the exports) reads ``counted_responses``,
which says the window of every number; a presentation counted only (no spike times: a replay) keeps
the source's count and window.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compactrig.engine.errors import CompactRigError
from compactrig.engine.stats.latency import Latency, response_latency
from compactrig.rig.session.folder import SessionLock, read_snapshot
from compactrig.rig.session.integrity import open_session_store
from compactrig.rig.session.trial_store import ALL_UNITS, TrialStore

SUGGESTED = "suggested"
"""``adopt_in_folder``'s window: each unit's own, ``WINDOW_S`` from its latency."""


@dataclass(frozen=True)
class CountedResponse:
    order: int
    unit: str
    count: float
    window: tuple[float, float]
    """The window it was counted in (s from the onset)."""
    adopted: bool
    """Recounted from the spikes in an adopted window (else: the source's count)."""


def window_for(adopted: dict[str, tuple[float, float]], unit: str) -> tuple[float, float] | None:
    """The window adopted for ``unit``: its own, else the one for every unit, else None."""
    return adopted.get(unit, adopted.get(ALL_UNITS))


def adopted_for(adopted: dict[str, tuple[float, float]], unit: str) -> str | None:
    """Whose adopted window counts ``unit``: ``unit`` (its own), None (the one for every unit), or ``unit``
    when none does; going back to the source's window undoes that one."""
    return None if unit not in adopted and ALL_UNITS in adopted else unit


def source_window(store: TrialStore) -> tuple[float, float] | None:
    """The counting window the source counted most of the stored responses in (None: nothing stored)."""
    windows = Counter(store.response_windows().values())
    return windows.most_common(1)[0][0] if windows else None


def counted_responses(store: TrialStore) -> list[CountedResponse]:
    """Every stored response, counted in its unit's adopted window where the spikes were kept, in the
    order of ``TrialStore.responses`` (presentation, then unit)."""
    adopted = store.count_windows()
    windows = store.response_windows()
    rows = store.responses()
    recounted = _recounts(store, adopted) if adopted else {}
    counted = []
    for order, unit, count in rows:
        window = window_for(adopted, unit)
        if window is not None and order in recounted.get(unit, {}):
            counted.append(CountedResponse(order, unit, recounted[unit][order], window, True))
        else:
            counted.append(CountedResponse(order, unit, count, windows[order], False))
    return counted


def _recounts(store: TrialStore, adopted: dict[str, tuple[float, float]]) -> dict[str, dict[int, float]]:
    """Unit -> presentation -> its spikes in the unit's adopted window, for every presentation with spikes."""
    units = [u for u in store.units() if window_for(adopted, u) is not None]
    trains = store.spike_times(units)
    recounted: dict[str, dict[int, float]] = {u: {} for u in units}
    for unit_index, unit in enumerate(units):
        start, end = window_for(adopted, unit) or (math.nan, math.nan)
        per_order = recounted[unit]
        for order, (_, times) in trains.items():
            per_order[order] = spikes_in(times[unit_index], (start, end))
    return recounted


def in_window(times: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """Which of ``times`` fall in ``[start, end)``, the rule every source counts by."""
    return (times >= window[0]) & (times < window[1])


def spikes_in(times: np.ndarray, window: tuple[float, float]) -> float:
    """The count of ``times`` in the window (``in_window``'s rule)."""
    return float(np.count_nonzero(in_window(times, window)))


def recounted(counts: dict[str, float], spikes: dict[str, np.ndarray] | None,
              adopted: dict[str, tuple[float, float]]) -> dict[str, float]:
    """A response's ``counts`` with each unit that has an adopted window counted in it from ``spikes``
    (a unit without spike times in it fired none there); counts only (``spikes`` None): unchanged."""
    if spikes is None or not adopted:
        return counts
    empty = np.zeros(0)
    windows = {unit: window_for(adopted, unit) for unit in counts}
    return {unit: count if (window := windows[unit]) is None else spikes_in(spikes.get(unit, empty), window)
            for unit, count in counts.items()}


def check_window(store: TrialStore, window: tuple[float, float]) -> tuple[float, float]:
    """``window`` when it can count this session's spikes: finite, start before end, inside every span
    of spike times kept; else ``CompactRigError`` naming the fix."""
    spans = list(store.spans().values())
    if not spans:
        raise CompactRigError("this session was counted only (no spike times were kept): its counting window "
                              "cannot change")
    start, end = (float(v) for v in window)
    low, high = max(s[0] for s in spans), min(s[1] for s in spans)
    if not (math.isfinite(start) and math.isfinite(end) and low <= start < end <= high):
        raise CompactRigError(f"counting window {start * 1000:g}..{end * 1000:g} ms: give a start before the end, "
                              f"within the spike times kept ({low * 1000:g}..{high * 1000:g} ms from the onset)")
    return start, end


def adopt_window(store: TrialStore, unit: str | None, window: tuple[float, float] | None) -> str:
    """Adopt ``window`` for ``unit`` (None: every unit) in ``store``, or go back to the source's counts
    (``window`` None); returns the line that says what now counts."""
    known = store.units()
    if unit is not None and unit not in known:
        raise CompactRigError(f"unit {unit!r} is not in this session (its units: {', '.join(known)})")
    checked = None if window is None else check_window(store, window)
    store.adopt_window(ALL_UNITS if unit is None else unit, checked)
    who = "every unit" if unit is None else unit
    if checked is None:
        return f"{who}: counted in the source's window again"
    return f"{who}: counted {checked[0] * 1000:g}..{checked[1] * 1000:g} ms after the onset, from the spikes kept"


def counts_of(store: TrialStore) -> list[tuple[int, str, float]]:
    """``counted_responses`` as ``TrialStore.responses`` rows (presentation, unit, count)."""
    return [(c.order, c.unit, c.count) for c in counted_responses(store)]


def shown_spikes(store: TrialStore) -> tuple[tuple[float, float], dict[str, list[np.ndarray]]]:
    """The span every presentation shown without abort kept spikes over ((0, 0) when none did), and each
    unit's spike times in each of them (s from the onset): what its PSTH and latency are made of."""
    spans = store.spans()
    shown = {p.order for p in store.presentations() if not p.aborted and p.order in spans}
    units = store.units()
    if not shown:
        return (0.0, 0.0), {unit: [] for unit in units}
    span = (max(spans[o][0] for o in shown), min(spans[o][1] for o in shown))
    trains = [times for o, (_, times) in store.spike_times(units).items() if o in shown]
    return span, {unit: [times[k] for times in trains] for k, unit in enumerate(units)}


def unit_latencies(store: TrialStore) -> dict[str, Latency]:
    """Every unit's response latency from the spikes of the presentations shown without abort, over the
    span every one of them kept."""
    span, trains = shown_spikes(store)
    return {unit: response_latency(times, span) for unit, times in trains.items()}


def adopt_in_folder(folder: Path, unit: str | None, window: tuple[float, float] | str | None) -> str:
    """Adopt a counting window in the stopped session at ``folder`` (under its lock, so never under a
    running one): ``window`` in s, ``SUGGESTED`` (each unit's own, from its latency) or None (the source's)."""
    lock = SessionLock(folder).acquire()
    try:
        store = open_session_store(folder, read_snapshot(folder))
        try:
            if not isinstance(window, str):
                return adopt_window(store, unit, window)
            return "\n".join(_adopt_suggested(store, unit))
        finally:
            store.close()
    finally:
        lock.release()


def _adopt_suggested(store: TrialStore, unit: str | None) -> list[str]:
    """Each unit (or ``unit``) counted in the window its latency suggests; one line per unit."""
    latencies, end = unit_latencies(store), max_span_end(store)
    if unit is not None and unit not in latencies:
        raise CompactRigError(f"unit {unit!r} is not in this session (its units: {', '.join(latencies)})")
    lines = []
    for name in [unit] if unit is not None else list(latencies):
        suggested = latencies[name].window(end)
        lines.append(adopt_window(store, name, suggested) if suggested is not None
                     else f"{name}: kept its window ({latencies[name].reason})")
    return lines


def max_span_end(store: TrialStore) -> float:
    """The end of the spike times every presentation kept (s from the onset)."""
    return min((s[1] for s in store.spans().values()), default=0.0)


def describe_windows(folder: Path) -> list[str]:
    """One line per unit: its latency with its interval, the window it suggests, the window it is counted in."""
    store = open_session_store(folder, read_snapshot(folder))
    try:
        adopted, latencies = store.count_windows(), unit_latencies(store)
        source = sorted(set(store.response_windows().values()))
        end = max_span_end(store)
    finally:
        store.close()
    own = ", ".join(f"{a * 1000:g}..{b * 1000:g}" for a, b in source) or "none yet"
    lines = []
    for unit, latency in latencies.items():
        window = window_for(adopted, unit)
        counted = f"{window[0] * 1000:g}..{window[1] * 1000:g} ms (adopted)" if window else f"{own} ms (the source's)"
        if math.isfinite(latency.latency_s):
            interval = (f" [{latency.low_s * 1000:.0f}, {latency.high_s * 1000:.0f}]"
                        if math.isfinite(latency.low_s) else " [too few presentations for an interval]")
            suggested = latency.window(end)
            assert suggested is not None  # a latency was found
            found = (f"latency {latency.latency_s * 1000:.0f} ms{interval}, suggests "
                     f"{suggested[0] * 1000:.0f}..{suggested[1] * 1000:.0f} ms")
        else:
            found = f"no latency: {latency.reason}"
        lines.append(f"{unit}: {found}; counted in {counted}")
    return lines
