"""The closed loop on a small case: features, readouts as models, next images, synthesis for a unit.

Virtual units are the simulated source's mixtures of demo-bank neurons with Poisson noise;
the candidate pool is texture images and their gaudy versions. The numbers checked come
from independent computation: the float64 reference model, numpy, the source's truth.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from compactrig.engine.errors import CompactRigError
from compactrig.engine.models.bank import load_bank
from compactrig.engine.models.fast_predict import Predictor, prepare_input
from compactrig.engine.readout.features import FeatureSpec, compute_features
from compactrig.engine.readout.model import ReadoutModel
from compactrig.engine.stats.response_sums import PerImageSums
from compactrig.plugins.sources.base import Presentation
from compactrig.plugins.sources.simulated import SimulatedSource
from compactrig.stimuli.closed_loop import (
    ReadoutData,
    ResponseLog,
    design_for_unit,
    refit,
    strongest_weights,
    synthesis_readout,
)
from compactrig.stimuli.gaudy import gaudy
from compactrig.stimuli.loop_simulation import simulate_selection
from compactrig.stimuli.next_images import choose_next
from compactrig.stimuli.readout_targets import PopulationTarget
from compactrig.stimuli.synthesis import SynthesisSettings
from compactrig.stimuli.textures import pink_noise_images

from support.independent_model import evaluate, stage_map

DEMO = load_bank("demo")


@pytest.fixture(scope="module")
def predictor():
    return Predictor(DEMO)


@pytest.fixture(scope="module")
def textures():
    return pink_noise_images(160, seed=5)


def test_features_are_bank_outputs_or_pooled_stage_channels(predictor, textures, published_bank):
    images = textures[:6]
    outputs = compute_features(predictor, images, FeatureSpec(tuple(DEMO.neuron_ids)))
    expected = np.stack([evaluate(DEMO.state_dict(n), images) for n in DEMO.neuron_ids], axis=1)
    assert np.allclose(outputs, expected, atol=1e-4 * np.abs(expected).max())

    ids = ("201025:2", "190923:5")
    spec = FeatureSpec(ids, stage=2)
    pooled = compute_features(Predictor(published_bank), images, spec)
    expected = np.concatenate([stage_map(published_bank.state_dict(n), images, 2).mean(dim=(2, 3)).numpy()
                               for n in ids], axis=1)
    assert pooled.shape == (6, sum(published_bank.info(n).filters[2] for n in ids)) == expected.shape
    assert np.allclose(pooled, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    assert spec.names(published_bank)[0] == "201025:2/stage2:ch0"
    with pytest.raises(CompactRigError, match="feature stage 7"):
        FeatureSpec(ids, stage=7).check(published_bank)


def test_a_readout_is_a_differentiable_model_with_the_fitted_prediction(predictor, textures):
    spec = FeatureSpec(tuple(DEMO.neuron_ids))
    features = compute_features(predictor, textures[:8], spec)
    weights, intercepts = np.array([[0.5, -2.0, 1.0], [0.0, 1.0, 0.0]]), np.array([3.0, -1.0])
    model = ReadoutModel(predictor, spec, weights, intercepts, ["a", "b"])
    assert np.allclose(model.predict(textures[:8]), weights @ features.T + intercepts[:, None], atol=1e-4)
    x = prepare_input(textures[:2]).requires_grad_(True)
    (gradient,) = torch.autograd.grad(model(x)[:, 0].sum(), x)
    assert gradient.abs().sum() > 0

    target = PopulationTarget(1, (1.0, 2.0), (0.5, 4.0), weight=0.3, sign=-1.0)
    with torch.no_grad():
        z = (model(prepare_input(textures[:4])).numpy() - [1.0, 2.0]) / [0.5, 4.0]
        score = target.score(model, prepare_input(textures[:4])).numpy()
    assert np.allclose(score, -z[:, 1] - 0.3 * z[:, 0] ** 2, atol=1e-5)


def test_choosing_next_images_by_each_strategy():
    kinds = ["natural"] * 6 + ["gaudy"] * 4
    rng = np.random.default_rng(0)
    exclude = np.zeros(10, dtype=bool)
    exclude[[0, 7]] = True
    random = choose_next("random", kinds, 4, rng, exclude)
    assert set(random) <= {1, 2, 3, 4, 5} and len(set(random)) == 4
    first = choose_next("gaudy-first", kinds, 5, rng, exclude)
    assert set(first[:3]) == {6, 8, 9} and first[3] in range(1, 6)
    spread = np.arange(10.0)
    assert list(choose_next("committee", kinds, 3, rng, exclude, spread)) == [9, 8, 6]
    with pytest.raises(CompactRigError, match="needs fitted readouts"):
        choose_next("committee", kinds, 3, rng)
    with pytest.raises(CompactRigError, match="strategy 'best'"):
        choose_next("best", kinds, 3, rng)


def test_mixture_units_use_few_neurons_and_their_truth_is_the_mixture(textures):
    source = SimulatedSource(neurons="none", unknown=3, mixture_size=2, seed=4, gain="2", baseline="4",
                             mixture_counts="raw")
    assert source.units == ["unit0", "unit1", "unit2"] and set(source.ground_truth().values()) == {"mixture"}
    assert ((source.mixing != 0).sum(axis=1) == 2).all()
    assert np.allclose(np.abs(source.mixing).sum(axis=1), 1.0)
    everything = np.stack([evaluate(DEMO.state_dict(n), textures[:5]) for n in DEMO.neuron_ids])
    assert np.allclose(source.true_rates(textures[:5]), np.maximum(0, 4 + 2 * source.mixing @ everything), atol=1e-3)
    with pytest.raises(CompactRigError, match="mixture_size 5"):
        SimulatedSource(unknown=1, mixture_size=5)


def present(source: SimulatedSource, ids: list[str]):
    """Presentation through the source plugin: indices -> counts (n, units)."""
    shown = [0]

    def respond(indices: np.ndarray) -> np.ndarray:
        for i in indices:
            source.submit(Presentation(shown[0], 0, ids[i], float(shown[0])))
            shown[0] += 1
        return np.array([[r.counts[u] for u in source.units] for r in source.collect(shown[0] + 10.0)])
    return respond


@pytest.mark.slow
def test_readouts_learn_virtual_units_and_designed_images_beat_the_best_natural(predictor, textures):
    natural, test_images = textures[:120], textures[120:]
    pool = np.concatenate([natural, gaudy(natural)])
    kinds = ["natural"] * 120 + ["gaudy"] * 120
    ids = [f"c{i}" for i in range(len(pool))]
    spec = FeatureSpec(tuple(DEMO.neuron_ids))
    pool_features = compute_features(predictor, pool, spec)
    test_features = compute_features(predictor, test_images, spec)
    options = dict(neurons="none", unknown=2, mixture_size=2, seed=11)

    def calibrated() -> SimulatedSource:
        source = SimulatedSource(**options)
        source.calibrate_mixtures(natural, 8.0, 3.0)  # mean 8, SD 3 over the very images the loop shows
        return source
    finals = {}
    for strategy in ("random", "gaudy-first", "committee"):
        source = calibrated()
        source.prepare(ids, pool)
        truth = source.true_rates(test_images)
        run = simulate_selection(strategy, kinds, pool_features, present(source, ids), source.units,
                                 test_features, truth, [40, 200], batch_images=10)
        assert [c.presentations for c in run.checkpoints] == [40, 200]
        assert len(set(run.shown)) == len(run.shown) == 100, "no image is chosen twice"
        if strategy == "gaudy-first":
            assert all(kinds[i] == "gaudy" for i in run.shown)
        if strategy == "random":
            assert all(kinds[i] == "natural" for i in run.shown)
        finals[strategy] = run
        final = run.checkpoints[-1].test_r
        # Gaudy images can push a mixture below zero (a silent unit, nothing to fit): judge the units that responded.
        responsive = run.log.snapshot().trials.sums.std(axis=0) > 0
        assert responsive.any() and (final[responsive] > (0.95 if strategy == "random" else 0.8)).all(), \
            (strategy, final)

    run = finals["committee"]
    data = run.log.snapshot()
    unit = 0
    readout = synthesis_readout(predictor, spec, data, run.fit, run.log.units, unit, max_neurons=3)
    design = design_for_unit(readout, unit, [0, 1], SynthesisSettings(steps=40))
    source = calibrated()
    true = source.true_rates(design.images)[unit]
    best_natural = source.true_rates(natural)[unit].max()
    assert true.min() > best_natural, (true, best_natural)
    assert np.allclose(design.responses, readout.model.predict(design.images)[unit])
    record = design.records[0]
    assert record.kind == "max" and record.target_neuron == "readout:unit0"
    assert record.method["bank_neurons"] == list(DEMO.neuron_ids) and record.image_id == "max_readout-unit0_seed0"

    # A population image: unit 0 up while unit 1 stays nearer its baseline than under the plain max image.
    population = design_for_unit(readout, unit, [0, 1], SynthesisSettings(steps=40), data, population_weight=4.0)
    seen = data.trials.answered
    means, spread = data.trials.means[seen].mean(axis=0), data.trials.means[seen].std(axis=0)
    z_population = (source.true_rates(population.images) - means[:, None]) / spread[:, None]
    z_max = (source.true_rates(design.images) - means[:, None]) / spread[:, None]
    assert (z_population[0] > 1).all(), z_population
    assert np.abs(z_population[1]).mean() < np.abs(z_max[1]).mean(), (z_population, z_max)
    assert population.records[0].image_id == "popmax_readout-unit0_seed0"


def test_strongest_weights_are_the_standardized_ridge_weights(predictor, textures):
    spec = FeatureSpec(tuple(DEMO.neuron_ids))
    features = compute_features(predictor, textures[:60], spec)
    counts = (features @ [0.0, 3.0, -1.0])[None, :, None] + np.random.default_rng(1).normal(size=(2, 60, 1)) * 0.01
    fit = refit(_data(features, counts))
    standardized = fit.weights[0] * features.std(axis=0)
    assert strongest_weights(fit, spec, DEMO, 0, 2) == [("demo:1", pytest.approx(standardized[1])),
                                                        ("demo:2", pytest.approx(standardized[2]))]


def _data(features: np.ndarray, counts: np.ndarray) -> ReadoutData:
    """Responses (repeats, images, units) for ``features``, as the log would hold them."""
    sums = PerImageSums([f"u{k}" for k in range(counts.shape[2])])
    log = ResponseLog(sums)
    ids = [f"i{k}" for k in range(len(features))]
    log.add_features(ids, features)
    for repeat in counts:
        sums.add(ids, repeat)
    return log.snapshot()


def test_the_response_log_skips_a_missing_count_per_unit_and_fits_images_every_unit_answered():
    sums = PerImageSums(["u0", "u1"])
    log = ResponseLog(sums)
    log.add_features(["a", "b", "d"], np.array([[1.0], [2.0], [3.0]]))
    sums.add(["a", "a", "b", "c", "d"], np.array([[1, 2], [3, 4], [5, np.nan], [7, 8], [np.nan, 1]]))
    assert log.n_presentations == 5 and log.missing_features(["a", "c", "c"]) == ["c"]
    data = log.snapshot()
    assert data.image_ids == ["a", "b", "d"]
    assert np.array_equal(data.trials.counts, [[2, 2], [1, 0], [0, 1]])
    assert np.array_equal(data.trials.sums, [[4, 6], [5, 0], [0, 1]])
    assert np.array_equal(data.trials.answered, [True, False, False])
    with pytest.raises(CompactRigError, match="at least 10 images, have 1"):
        refit(data)


def test_a_unit_heard_from_late_counted_zero_in_every_presentation_logged_before():
    sums = PerImageSums(["u0"])
    log = ResponseLog(sums)
    log.add_features(["a", "b"], np.array([[1.0], [2.0]]))
    sums.add(["a", "b"], np.array([[3.0], [5.0]]))
    sums.add_unit("u1")
    sums.add(["a"], np.array([[1.0, 4.0]]))
    data = log.snapshot()
    assert log.units == ["u0", "u1"]
    assert np.array_equal(data.trials.sums, [[4.0, 4.0], [5.0, 0.0]])
    assert np.array_equal(data.trials.sumsq, [[10.0, 16.0], [25.0, 0.0]])
