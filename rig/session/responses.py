"""A session's responses in the published layout, for scripts (``compactrig.read_session``) and ``.npz`` export.

The published recordings are ``(neurons, images, repeats)`` arrays, NaN-padded where an image has fewer
repeats; a session reads back the same way, rows in natural unit order (``unit2`` before ``unit10``),
columns in the stimulus set's order, with the mapped units' model predictions beside them, and beside
each count the window it was counted in (the source's, or one adopted from the spikes: ``windows``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from compactrig.engine.files.natural_order import natural_sorted
from compactrig.rig.session.fits import mapped_predictions
from compactrig.rig.session.folder import SESSION_FILE, read_snapshot
from compactrig.rig.session.integrity import checked_stimuli, open_session_store
from compactrig.rig.session.setup import SessionPlan
from compactrig.rig.session.windows import CountedResponse, counted_responses


@dataclass(frozen=True)
class SessionResponses:
    """What a session recorded: counts of completed presentations only (aborted ones are not responses)."""

    responses: np.ndarray
    """(units, images, repeats), NaN where an image has fewer repeats."""
    windows: np.ndarray
    """(units, images, repeats, 2): the counting window (start, end; s from the onset) of each response."""
    image_ids: list[str]
    units: list[str]
    predictions: np.ndarray
    """(units, images): the mapped model's prediction for mapped units, NaN for the others."""
    mapped_neurons: list[str]
    """Per unit, the bank neuron it is mapped to ("" when none)."""


def read_responses(folder: Path) -> SessionResponses:
    """The session's responses, once its stimuli and trial store are found to be its own (``integrity``)."""
    folder = Path(folder)
    snapshot = read_snapshot(folder)
    stimuli = checked_stimuli(folder, snapshot)
    store = open_session_store(folder, snapshot)
    try:
        complete = {p.order: p.image_id for p in store.presentations() if not p.aborted}
        rows = [c for c in counted_responses(store) if c.order in complete]
    finally:
        store.close()
    image_ids = list(snapshot["stimulus_ids"])
    units = natural_sorted({c.unit for c in rows})
    trials: dict[tuple[int, int], list[CountedResponse]] = {}
    for counted in sorted(rows, key=lambda c: (c.order, c.unit)):
        trials.setdefault((units.index(counted.unit), image_ids.index(complete[counted.order])), []).append(counted)
    repeats = max((len(v) for v in trials.values()), default=0)
    responses = np.full((len(units), len(image_ids), repeats), np.nan)
    windows = np.full((len(units), len(image_ids), repeats, 2), np.nan)
    for (u, i), values in trials.items():
        responses[u, i, :len(values)] = [c.count for c in values]
        windows[u, i, :len(values)] = [c.window for c in values]
    plan = SessionPlan.from_snapshot(snapshot, str(folder / SESSION_FILE))
    mapped = {u: n for u, n in plan.unit_map.items() if u in units}
    predictions = np.full((len(units), len(image_ids)), np.nan)
    if mapped:
        for unit, predicted in mapped_predictions(plan.bank, mapped, stimuli).items():
            predictions[units.index(unit)] = predicted
    return SessionResponses(responses, windows, image_ids, units, predictions, [mapped.get(u, "") for u in units])


def export_npz(folder: Path, out: Path | BinaryIO) -> tuple[int, int, int]:
    """Write ``read_responses(folder)`` as ``.npz`` (arrays named as the fields); returns the responses' shape."""
    read = read_responses(folder)
    np.savez(out, responses=read.responses, windows=read.windows, image_ids=np.array(read.image_ids),
             units=np.array(read.units), predictions=read.predictions, mapped_neurons=np.array(read.mapped_neurons))
    return read.responses.shape
