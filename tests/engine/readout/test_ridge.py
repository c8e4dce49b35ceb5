"""Ridge readouts: the fit, the penalty choice, honest held-out r, each unit fitted on the images it answered,
and the committee."""

from __future__ import annotations

import numpy as np
import pytest

from compactrig.engine.errors import CompactRigError
from compactrig.engine.readout.ridge import (
    ALPHAS,
    choose_alphas,
    committee_predictions,
    disagreement,
    fit_ridge,
    response_variance,
)
from compactrig.engine.stats.r2_er import r2_er
from compactrig.engine.stats.response_sums import PerImageSums


def trials_from(samples: np.ndarray) -> PerImageSums:
    """(repeats, images, units) counts (NaN: no response) -> the accumulator's per-image sums."""
    sums = PerImageSums([f"u{k}" for k in range(samples.shape[2])], [f"i{k}" for k in range(samples.shape[1])])
    for repeat in samples:
        sums.add(sums.image_ids, repeat)
    return sums


def closed_form(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Ridge on z-scored features by the normal equations (no SVD), mapped back to raw units."""
    mean, sd = x.mean(axis=0), x.std(axis=0)
    z = (x - mean) / sd
    w = np.linalg.solve(z.T @ z + alpha * len(x) * np.eye(x.shape[1]), z.T @ (y - y.mean()))
    return w / sd, y.mean() - (w / sd) @ mean


def test_each_unit_is_the_closed_form_ridge_at_its_chosen_penalty():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 6)) * [1, 2, 3, 0.5, 10, 1] + 4
    true = rng.normal(size=(6, 3))
    y = x @ true + rng.normal(size=(4, 80, 3)) * [0.1, 3.0, 30.0]
    fit = fit_ridge(x, trials_from(y))
    for unit in range(3):
        weights, intercept = closed_form(x, y.mean(axis=0)[:, unit], fit.alphas[unit])
        assert np.allclose(fit.weights[unit], weights, rtol=1e-8, atol=1e-10)
        assert np.isclose(fit.intercepts[unit], intercept)
    assert fit.alphas[0] < fit.alphas[2], "noisier units get a larger penalty"


def test_the_chosen_penalty_has_the_least_cross_validated_error():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 20))
    y = (x[:, :3] @ [1.0, -1.0, 0.5])[:, None] + rng.normal(size=(50, 2)) * [0.5, 5.0]
    chosen = choose_alphas(x, y, np.random.default_rng(7))
    fold = np.random.default_rng(7).permutation(np.arange(50) % 5)  # the same fold assignment
    errors = np.zeros((len(ALPHAS), 2))
    for a, alpha in enumerate(ALPHAS):
        for k in range(5):
            test = fold == k
            for unit in range(2):
                w, b = closed_form(x[~test], y[~test, unit], alpha)
                seen = np.clip(x[test], x[~test].min(axis=0), x[~test].max(axis=0))  # no extrapolation
                errors[a, unit] += ((seen @ w + b - y[test, unit]) ** 2).sum()
    assert np.array_equal(chosen, ALPHAS[errors.argmin(axis=0)])


def test_held_out_r_is_not_flattered_by_fitting_noise():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 40))
    noise = rng.poisson(5.0, size=(2, 60, 6)).astype(float)  # responses unrelated to the features
    fit = fit_ridge(x, trials_from(noise))
    in_sample = [np.corrcoef(fit.predict(x)[u], noise.mean(axis=0)[:, u])[0, 1] for u in range(6)]
    assert np.nanmean(fit.held_out_r) < 0.2
    assert np.mean(in_sample) > np.nanmean(fit.held_out_r) + 0.2


def test_a_linear_unit_is_recovered_with_held_out_r_and_r2_er_near_one():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 5))
    rate = 5 + x @ [1.0, 0.5, 0.0, -0.7, 0.2]
    counts = rng.normal(rate, 0.5, size=(3, 200))[..., None]
    fit = fit_ridge(x, trials_from(counts))
    signal = np.var(rate)
    ceiling = np.sqrt(signal / (signal + 0.5**2 / 3))  # r of the true rate with a 3-repeat mean
    assert ceiling - 0.02 < fit.held_out_r[0] <= ceiling + 0.02
    assert 0.9 < fit.r2_er[0] < 1.1, "noise-corrected: near 1 for the right model"
    assert np.isnan(fit.held_out).sum() == 0 and fit.n_images == 200


def test_a_bank_neuron_no_training_image_drives_cannot_blow_up_the_held_out_predictions():
    """A sparse bank neuron (a demo neuron answers only red blobs) is all but silent on the training images
    of the fold that holds out both images that drive it; its z-scored weight is then arbitrary, and
    unclipped it predicted those two images thousands of counts away (held-out r near 0)."""
    rng = np.random.default_rng(4)
    n = 40
    dense = rng.normal(size=(n, 2)) * 3 + 6
    fold = np.random.default_rng(0).permutation(np.arange(n) % 5)  # fit_ridge's outer folds (seed 0)
    driving = np.flatnonzero(fold == 0)[:2]
    sparse = rng.uniform(0, 2e-3, n)  # a whisper on most images...
    sparse[driving] = [4.0, 20.0]  # ...and a strong response to two, held out together
    rate = 2 + dense @ [1.0, 0.5]
    counts = rng.poisson(rate, size=(2, n)).astype(float)[..., None]
    fit = fit_ridge(np.c_[dense, sparse], trials_from(counts))
    assert np.abs(fit.held_out[0, driving] - rate[driving]).max() < 10
    assert fit.held_out_r[0] > 0.6


def test_too_few_images_is_a_clear_error():
    with pytest.raises(CompactRigError, match="at least 10 images; unit u0 has 5"):
        fit_ridge(np.ones((5, 2)), trials_from(np.ones((1, 5, 1))))
    samples = np.ones((1, 20, 2))
    samples[0, 9:, 1] = np.nan
    with pytest.raises(CompactRigError, match="unit u1 has 9"):
        fit_ridge(np.random.default_rng(0).normal(size=(20, 2)), trials_from(samples))


def test_an_image_a_unit_did_not_answer_is_left_out_of_that_units_fit_only():
    """Unit 1 lost its channel for 15 of 60 images and unit 0 missed single repeats: each readout is the ridge
    fit, computed here by the normal equations, of the means of the responses that unit gave, on the images it
    gave any; unit 0 still has every image. Zeros in unit 1's place would make another readout."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(60, 4)) * [1.0, 2.0, 0.5, 3.0] + 2
    samples = x @ rng.normal(size=(4, 2)) + rng.normal(size=(3, 60, 2))
    lost = np.zeros(60, dtype=bool)
    lost[rng.choice(60, 15, replace=False)] = True
    samples[:, lost, 1] = np.nan
    samples[0, :7, 0] = np.nan  # one repeat missing: the mean of the other two
    fit = fit_ridge(x, trials_from(samples))
    with np.errstate(invalid="ignore"):  # the means of the responses given (NaN where there are none)
        means = np.nansum(samples, axis=0) / np.isfinite(samples).sum(axis=0)
    for unit, rows in ((0, np.ones(60, dtype=bool)), (1, ~lost)):
        weights, intercept = closed_form(x[rows], means[rows, unit], fit.alphas[unit])
        np.testing.assert_allclose(fit.weights[unit], weights, rtol=1e-8, atol=1e-10)
        assert np.isclose(fit.intercepts[unit], intercept)
        np.testing.assert_allclose(fit.feature_sd[unit], x[rows].std(axis=0))
        assert np.isfinite(fit.held_out[unit, rows]).all() and np.isnan(fit.held_out[unit, ~rows]).all()
        assert fit.held_out_r[unit] == pytest.approx(np.corrcoef(fit.held_out[unit, rows], means[rows, unit])[0, 1])
        given = np.isfinite(samples[:, rows, unit])
        values = np.where(given, samples[:, rows, unit], 0.0)
        assert fit.r2_er[unit] == pytest.approx(r2_er(fit.held_out[unit, rows], values.sum(axis=0),
                                                      (values**2).sum(axis=0), given.sum(axis=0)))
    assert list(fit.images_fitted) == [60, 45] and fit.n_images == 60
    alone = fit_ridge(x[~lost], trials_from(samples[:, ~lost, 1:]))
    assert fit.alphas[1] == alone.alphas[0], "the penalty is chosen on the unit's own images, as if alone"
    np.testing.assert_allclose(fit.held_out[1, ~lost], alone.held_out[0], rtol=1e-10)

    zeros = fit_ridge(x, trials_from(np.nan_to_num(samples)))  # the missing responses taken as zeros
    assert not np.allclose(zeros.weights[1], fit.weights[1], rtol=0.1)

    committee = committee_predictions(x, trials_from(samples), fit.alphas, x[:5], members=4)
    np.testing.assert_allclose(committee[..., 1:], committee_predictions(x[~lost], trials_from(samples[:, ~lost, 1:]),
                                                                         fit.alphas[1:], x[:5], members=4))
    assert response_variance(trials_from(samples))[1] == pytest.approx(means[~lost, 1].var())


def test_the_committee_disagrees_more_far_from_the_data():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(60, 8))
    y = trials_from((x @ rng.normal(size=(8, 2)) + rng.normal(size=(60, 2)))[None])
    fit = fit_ridge(x, y)
    near, far = rng.normal(size=(30, 8)), 6 * rng.normal(size=(30, 8))
    predictions = committee_predictions(x, y, fit.alphas, np.concatenate([near, far]), members=10)
    assert predictions.shape == (10, 60, 2)
    spread = disagreement(predictions, response_variance(y))
    assert spread[30:].mean() > 4 * spread[:30].mean()
