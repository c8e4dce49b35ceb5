"""The closed loop for recorded units: readouts fitted live, images designed for them, next images chosen.

``ResponseLog`` keeps, per image, the readout features beside every unit's response sums (the one
accumulator, ``compactrig.engine.stats.response_sums.PerImageSums``, fed by its owner: a session's live
sums, or a simulation's), which grow as images are queued and responses arrive; each unit's readout is
fitted on the images it answered. The work
(refitting, the committee, synthesis) runs on snapshots, so a window can keep adding
responses on its own thread while a job fits. Everything here is pure computation; the
session runner and the window only move data in and out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from compactrig.engine.models.bank import ModelBank
from compactrig.engine.models.fast_predict import Predictor
from compactrig.engine.progress import Progress
from compactrig.engine.readout.features import FeatureSpec
from compactrig.engine.readout.model import ReadoutModel, ReadoutUnit
from compactrig.engine.readout.ridge import (
    RidgeFit,
    committee_predictions,
    disagreement,
    fit_ridge,
    response_variance,
)
from compactrig.engine.stats.response_sums import PerImageSums
from compactrig.stimuli.design import Design
from compactrig.stimuli.next_images import Strategy, choose_next
from compactrig.stimuli.readout_targets import PopulationTarget
from compactrig.stimuli.stimulus_set import StimulusRecord
from compactrig.stimuli.synthesis import SynthesisSettings, synthesize
from compactrig.stimuli.targets import OUTPUT

SYNTHESIS_NEURONS = 12
"""Bank neurons a synthesis readout keeps (its strongest): each costs a forward and backward pass per step."""
READOUT_TARGET = "readout:"
"""A synthesized image's ``target_neuron`` is this followed by the recorded unit it was designed for."""


def readout_target(unit: str) -> str:
    """The ``target_neuron`` of an image designed through recorded unit ``unit``'s readout."""
    return READOUT_TARGET + unit


def designed_units(records: Sequence[StimulusRecord]) -> dict[str, str]:
    """Image id -> the recorded unit it was synthesized for through its readout, read from the images' provenance
    (not their names, which a user may change): what the closed-loop scatter marks."""
    return {r.image_id: r.target_neuron[len(READOUT_TARGET):] for r in records
            if r.target_neuron is not None and r.target_neuron.startswith(READOUT_TARGET)}



@dataclass(frozen=True)
class ReadoutData:
    """A snapshot for fitting: images that have features, their features and response sums (rows alike)."""

    features: np.ndarray
    responses: PerImageSums
    """A copy, with NaN means where a unit has no response to an image (left out of that unit's fit)."""

    @property
    def image_ids(self) -> list[str]:
        return self.responses.image_ids


class ResponseLog:
    """The readout features of images beside the response sums they are fitted to (fed by their owner).

    Features may come before their image joins the sums (a batch chosen, images designed): they wait
    here until it does.
    """

    def __init__(self, sums: PerImageSums) -> None:
        self.sums = sums
        self._features: dict[str, np.ndarray] = {}

    @property
    def units(self) -> list[str]:
        return self.sums.units

    @property
    def image_ids(self) -> list[str]:
        return self.sums.image_ids

    @property
    def n_presentations(self) -> int:
        return self.sums.n_presentations

    def add_features(self, image_ids: list[str], features: np.ndarray) -> None:
        """Feature rows for images (shown or about to be)."""
        for image_id, row in zip(image_ids, np.asarray(features, dtype=np.float64)):
            self._features[image_id] = row

    def forget_features(self) -> None:
        """Drop every image's features (the bank or the feature choice changed); responses stay."""
        self._features.clear()

    def missing_features(self, image_ids: list[str]) -> list[str]:
        return [i for i in dict.fromkeys(image_ids) if i not in self._features]

    def snapshot(self) -> ReadoutData:
        """Copies of the sums' rows that have features (safe to fit on another thread)."""
        sums = self.sums
        rows = np.array([r for r, i in enumerate(sums.image_ids) if i in self._features], dtype=np.int64)
        width = len(next(iter(self._features.values()))) if self._features else 0
        features = np.array([self._features[sums.image_ids[r]] for r in rows]).reshape(len(rows), width)
        return ReadoutData(features, sums.take(rows))


def refit(data: ReadoutData, seed: int = 0) -> RidgeFit:
    """Every unit's ridge readout (penalty by cross-validation, nested held-out r and r2_ER)."""
    return fit_ridge(data.features, data.responses, seed=seed)


def committee_spread(data: ReadoutData, fit: RidgeFit, candidates: np.ndarray, members: int = 8,
                     seed: int = 0) -> np.ndarray:
    """How much bootstrap refits disagree on each candidate's responses (units weighted equally)."""
    predictions = committee_predictions(data.features, data.responses, fit.alphas, candidates, members, seed)
    return disagreement(predictions, response_variance(data.responses))


@dataclass(frozen=True)
class Batch:
    """Pool indices of the next images, and the strategy that chose them."""

    indices: np.ndarray
    strategy: Strategy
    """The strategy asked for, or ``random`` where the committee had no fitted readouts to ask."""


def batch_strategy(requested: Strategy, fitted: bool) -> Strategy:
    """The committee needs fitted readouts: until the first fit it chooses at random (the one home of this rule)."""
    return "random" if requested == "committee" and not fitted else requested


def next_batch(strategy: Strategy, kinds: list[str], n: int, exclude: np.ndarray, seed: int,
               data: ReadoutData | None = None, fit: RidgeFit | None = None,
               candidate_features: np.ndarray | None = None, members: int = 8) -> Batch:
    """The next ``n`` pool images by ``strategy``; committee asks data, fit and features (without them: random)."""
    used = batch_strategy(strategy, fit is not None and data is not None and candidate_features is not None)
    spread = None
    if used == "committee":
        assert data is not None and fit is not None and candidate_features is not None  # else not "committee"
        spread = committee_spread(data, fit, candidate_features, members, seed)
    return Batch(choose_next(used, kinds, n, np.random.default_rng(seed), exclude, spread), used)


def neuron_weights(fit: RidgeFit, owners: np.ndarray, unit: int, absolute: bool = False) -> np.ndarray:
    """Per bank neuron of the spec: its features' weights for ``unit`` on the z-scored scale, summed
    (``absolute``: magnitudes summed). With output features this is the readout's standardized weight."""
    weights = fit.weights[unit] * fit.feature_sd[unit]
    return np.bincount(owners, weights=np.abs(weights) if absolute else weights, minlength=owners.max() + 1)


def strongest_weights(fit: RidgeFit, spec: FeatureSpec, bank: ModelBank, unit: int, k: int) -> list[tuple[str, float]]:
    """The ``k`` bank neurons with the largest standardized weight magnitude for ``unit``: (id, signed weight)."""
    return strongest_of(fit, spec.neuron_ids, spec.owners(bank), unit, k)


def strongest_of(fit: RidgeFit, neuron_ids: Sequence[str], owners: np.ndarray, unit: int,
                 k: int) -> list[tuple[str, float]]:
    """``strongest_weights`` given the neurons and each feature's owner (a stored fit needs no bank)."""
    weights = neuron_weights(fit, owners, unit)
    return [(neuron_ids[i], float(weights[i])) for i in np.argsort(-np.abs(weights), kind="stable")[:k]]


def strongest_neurons(fit: RidgeFit, owners: np.ndarray, unit: int, k: int) -> np.ndarray:
    """Indices (into the spec's neurons) of the ``k`` neurons whose features weigh most for ``unit``, in order."""
    return np.sort(np.argsort(-neuron_weights(fit, owners, unit, absolute=True), kind="stable")[:k])


@dataclass(frozen=True)
class SynthesisReadout:
    """A readout refitted on its unit's strongest bank neurons, as a differentiable model."""

    model: ReadoutModel
    fit: RidgeFit
    """The refitted readout (all units, on the kept features): its held-out r says what was lost."""
    spec: FeatureSpec


def synthesis_readout(predictor: Predictor, spec: FeatureSpec, data: ReadoutData, fit: RidgeFit, units: list[str],
                      unit: int, max_neurons: int = SYNTHESIS_NEURONS, seed: int = 0) -> SynthesisReadout:
    """Every unit's readout over the bank neurons that matter most for ``unit`` (refitted on them)."""
    bank: ModelBank = predictor.bank
    owners = spec.owners(bank)
    kept = strongest_neurons(fit, owners, unit, max_neurons)
    columns = np.flatnonzero(np.isin(owners, kept))
    small_spec = replace(spec, neuron_ids=tuple(spec.neuron_ids[i] for i in kept))
    small_fit = fit_ridge(data.features[:, columns], data.responses, seed=seed)
    return SynthesisReadout(ReadoutModel(predictor, small_spec, small_fit.weights, small_fit.intercepts, units),
                            small_fit, small_spec)


def design_for_unit(readout: SynthesisReadout, unit: int, seeds: list[int], settings: SynthesisSettings,
                    data: ReadoutData | None = None, population_weight: float | None = None,
                    progress: Progress | None = None,
                    cancelled: Callable[[], bool] | None = None) -> Design:
    """Images that drive readout unit ``unit`` up or down (``settings.direction``); with
    ``population_weight`` the other units are held near baseline (needs ``data``)."""
    model, name = readout.model, readout.model.units[unit]
    tag: str
    if population_weight is None:
        result = synthesize(ReadoutUnit(model, unit), seeds, settings, OUTPUT, progress, cancelled)
        kind, tag = settings.direction, settings.direction
    else:
        if data is None:
            raise ValueError("population_weight needs the readout data")
        sign = 1.0 if settings.direction == "max" else -1.0
        target = PopulationTarget.for_unit(unit, data.responses.means(), population_weight, sign)
        result = synthesize(model, seeds, replace(settings, direction="max"), target, progress, cancelled)
        kind, tag = settings.direction, f"pop{settings.direction}"
    responses = model.predict(result.images)[unit]
    method = {"method": "gradient through readout" if population_weight is None else "population readout",
              "unit": name, "features": readout.spec.describe(), "bank_neurons": list(readout.spec.neuron_ids),
              "feature_stage": readout.spec.stage, "penalty_alpha": float(readout.fit.alphas[unit]),
              "held_out_r": float(readout.fit.held_out_r[unit]), "images_fitted": int(readout.fit.images_fitted[unit]),
              **({"population_weight": population_weight} if population_weight is not None else {}),
              **settings.as_dict()}
    if result.cancelled:
        method["stopped_after_steps"] = result.steps_done
    safe = re.sub(r"[^A-Za-z0-9._+-]", "-", name)  # unit names become file names
    records = [StimulusRecord(image_id=f"{tag}_readout-{safe}_seed{seed}", kind=kind,
                              target_neuron=readout_target(name), method=method, seed=seed) for seed in seeds]
    return Design(result.images, responses, records, result.cancelled)
