"""The closed loop's computations on small cases: features, readouts as models, next images, the response log.

Virtual units are the simulated source's mixtures of demo-bank neurons with Poisson noise. The numbers
checked come from independent computation: the float64 reference model, numpy, the source's truth. That
the loop's rounds teach the readouts is ``tests/rig/loop/test_loop_learns.py``.
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
from compactrig.plugins.sources.simulated import SimulatedSource
from compactrig.stimuli.closed_loop import (
    ReadoutData,
    ResponseLog,
    refit,
    strongest_weights,
)
from compactrig.stimuli.next_images import choose_next
from compactrig.stimuli.readout_targets import PopulationTarget
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


def test_the_response_log_skips_a_missing_count_per_unit_and_fits_each_unit_on_the_images_it_answered():
    sums = PerImageSums(["u0", "u1"])
    log = ResponseLog(sums)
    log.add_features(["a", "b", "d"], np.array([[1.0], [2.0], [3.0]]))
    sums.add(["a", "a", "b", "c", "d"], np.array([[1, 2], [3, 4], [5, np.nan], [7, 8], [np.nan, 1]]))
    assert log.n_presentations == 5 and log.missing_features(["a", "c", "c"]) == ["c"]
    data = log.snapshot()
    assert data.image_ids == ["a", "b", "d"]
    assert np.array_equal(data.responses.counts, [[2, 2], [1, 0], [0, 1]])
    assert np.array_equal(data.responses.sums, [[4, 6], [5, 0], [0, 1]])
    assert np.array_equal(data.responses.answered(), [[True, True], [True, False], [False, True]])
    with pytest.raises(CompactRigError, match="at least 10 images; unit u0 has 2"):
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
    assert np.array_equal(data.responses.sums, [[4.0, 4.0], [5.0, 0.0]])
    assert np.array_equal(data.responses.sumsq, [[10.0, 16.0], [25.0, 0.0]])
