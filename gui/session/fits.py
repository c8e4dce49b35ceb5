"""Model predictions for the units mapped to models, and their fits from what a session stored.

Shared by the runner (live r), the export (predictions beside the responses) and the report.
"""

from __future__ import annotations

import numpy as np

from engine.bank import load_bank
from engine.fast_predict import Predictor
from engine.live_fit import UnitFit
from gui.session.store import StoredPresentation
from stimuli.stimulus_set import StimulusSet


def mapped_predictions(bank: str | None, mapping: dict[str, str], stimulus_set: StimulusSet) -> dict[str, np.ndarray]:
    """Unit -> its mapped neuron's predicted response to every image of the set (one pass per neuron)."""
    if not mapping:
        return {}
    neurons = sorted(set(mapping.values()))
    values = Predictor(load_bank(bank)).predict(stimulus_set.pixels, neurons)
    return {unit: values[neurons.index(neuron)].astype(np.float64) for unit, neuron in mapping.items()}


def stored_fits(bank: str | None, mapping: dict[str, str], stimulus_set: StimulusSet,
                presentations: list[StoredPresentation], responses: list[tuple[int, str, float]]) -> dict[str, UnitFit]:
    """Each mapped unit's fit, fed with the stored responses of non-aborted presentations."""
    fits = {unit: UnitFit(dict(zip(stimulus_set.ids, predicted)))
            for unit, predicted in mapped_predictions(bank, mapping, stimulus_set).items()}
    shown = {p.order: p.image_id for p in presentations if not p.aborted}
    for order, unit, count in responses:
        if order in shown and unit in fits:
            fits[unit].add(shown[order], count)
    return fits
