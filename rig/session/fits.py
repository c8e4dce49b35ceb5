"""Model predictions for the units mapped to models, and their fits from what a session stored.

Shared by the runner (predictions for the watchers), the export (predictions beside the responses) and
the report (fits built by ``live.LiveSession``, as the live view's are).
"""

from __future__ import annotations

import numpy as np

from compactrig.engine.models.bank import load_bank
from compactrig.engine.models.fast_predict import Predictor
from compactrig.engine.stats.population_fit import PopulationFit
from compactrig.rig.session.events import SessionStarted
from compactrig.rig.session.live import LiveSession
from compactrig.rig.session.trial_store import StoredPresentation
from compactrig.stimuli.stimulus_set import StimulusSet


def mapped_predictions(bank: str | None, mapping: dict[str, str], stimulus_set: StimulusSet) -> dict[str, np.ndarray]:
    """Unit -> its mapped neuron's predicted response to every image of the set (one pass per neuron)."""
    if not mapping:
        return {}
    neurons = sorted(set(mapping.values()))
    values = Predictor(load_bank(bank)).predict(stimulus_set.pixels, neurons)
    return {unit: values[neurons.index(neuron)].astype(np.float64) for unit, neuron in mapping.items()}


def stored_fits(bank: str | None, mapping: dict[str, str], stimulus_set: StimulusSet,
                presentations: list[StoredPresentation], responses: list[tuple[int, str, float]]) -> PopulationFit:
    """The mapped units' fits, fed with the stored responses of non-aborted presentations."""
    return fits_from_store(mapped_predictions(bank, mapping, stimulus_set), stimulus_set.ids,
                           presentations, responses)


def fits_from_store(predictions: dict[str, np.ndarray], image_ids: list[str],
                    presentations: list[StoredPresentation], responses: list[tuple[int, str, float]]) -> PopulationFit:
    """Fits of the units with known predictions (rows in ``predictions``' order), fed with the stored
    responses of non-aborted presentations: a ``LiveSession`` begun as a running session begins."""
    live = LiveSession()
    live.take_events([SessionStarted(list(predictions), list(image_ids), predictions, {},
                                     stored_responses(presentations, responses), 0)])
    assert live.fit is not None  # a session has begun
    return live.fit


def stored_responses(presentations: list[StoredPresentation],
                     responses: list[tuple[int, str, float]]) -> list[tuple[str, dict[str, float]]]:
    """(image id, counts per unit) of every non-aborted presentation with a stored response, in order."""
    shown = {p.order: p.image_id for p in presentations if not p.aborted}
    by_order: dict[int, dict[str, float]] = {}
    for order, unit, count in responses:
        if order in shown:
            by_order.setdefault(order, {})[unit] = count
    return [(shown[order], by_order[order]) for order in sorted(by_order)]
