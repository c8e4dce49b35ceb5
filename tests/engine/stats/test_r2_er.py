"""r2_ER and the live fit of one unit, against direct computation from trials and known ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from compactrig.engine.files.image_files import read_images
from compactrig.engine.models.bank import load_bank
from compactrig.engine.models.fast_predict import Predictor
from compactrig.engine.stats.population_fit import PopulationFit

from support.independent_stats import direct_r2_er


def one_unit(predictions: dict[str, float]) -> PopulationFit:
    return PopulationFit(["unit"], list(predictions), np.array([list(predictions.values())]))


@pytest.fixture(scope="module")
def recording_210325(shared_data):
    raw = np.load(shared_data / "data_V4_responses/responses_raw/responses_210325.npy")
    images = read_images(shared_data / "data_V4_responses/images/images_210325.zip")
    predictions = Predictor(load_bank()).predict(images.pixels, ["demo:0"])[0].astype(np.float64)
    return raw, images.ids, predictions


def test_incremental_matches_batch_on_recorded_repeats(recording_210325):
    raw, ids, predictions = recording_210325
    rng = np.random.default_rng(0)
    for unit in (0, 7, 31):
        fit = one_unit(dict(zip(ids, predictions)))
        presentations = [(i, r) for i in range(len(ids)) for r in range(raw.shape[2]) if not np.isnan(raw[unit, i, r])]
        order = rng.permutation(len(presentations))
        for batch in np.array_split(order, 7):  # presentations in random order, in uneven batches
            fit.add([ids[presentations[k][0]] for k in batch], [[raw[unit, *presentations[k]]] for k in batch])
        seen = ~np.isnan(raw[unit]).all(axis=1)
        means = np.nanmean(raw[unit][seen], axis=1)
        x = predictions[seen]
        summary = fit.summary()
        assert summary.n_images[0] == seen.sum() and summary.n_presentations[0] == len(presentations)
        assert summary.r[0] == pytest.approx(np.corrcoef(x, means)[0, 1], abs=1e-9)
        slope, intercept = np.polyfit(x, means, 1)
        assert (summary.slope[0], summary.intercept[0]) == (pytest.approx(slope), pytest.approx(intercept))
        trials = [raw[unit, i][~np.isnan(raw[unit, i])] for i in np.flatnonzero(seen)]
        keep = [k for k, t in enumerate(trials) if len(t) >= 2]
        expected = direct_r2_er(x[keep], [trials[k] for k in keep])
        assert summary.r2_er[0] == pytest.approx(expected, rel=1e-9)
        low, high = fit.r2_er_interval(0, n_boot=100)
        assert low < expected < high


def test_r2_er_recovers_known_ground_truth_where_naive_r2_is_biased():
    rng = np.random.default_rng(1)
    estimates, naive = [], []
    image_ids = [f"image{i:04d}" for i in range(120)]
    for _ in range(60):
        x = rng.normal(size=120)
        truth = np.sqrt(0.5) * x + np.sqrt(0.5) * rng.normal(size=120)
        truth = (truth - truth.mean()) / truth.std()
        x = (x - x.mean()) / x.std()
        fit = one_unit(dict(zip(image_ids, x)))
        expected = 5 + 2 * truth  # spikes per window
        for _ in range(4):
            fit.add(image_ids, (expected + rng.normal(size=120) * 3)[:, None])
        summary = fit.summary()
        estimates.append(summary.r2_er[0] - np.corrcoef(x, expected)[0, 1] ** 2)
        naive.append(summary.r[0] ** 2 - np.corrcoef(x, expected)[0, 1] ** 2)
    assert abs(np.mean(estimates)) < 0.03, "unbiased around the true r^2"
    assert np.mean(naive) < -0.1, "the uncorrected r^2 is biased low by trial noise"


def test_too_little_data_gives_nan_not_an_error():
    fit = one_unit({"a": 1.0, "b": 2.0, "c": 3.0})
    assert np.isnan(fit.summary().r[0])
    fit.add(["a", "b"], [[1.0], [3.0]])
    summary = fit.summary()
    assert summary.r[0] == pytest.approx(1.0) and summary.slope[0] == pytest.approx(2.0)
    assert np.isnan(summary.r2_er[0]) and np.isnan(fit.r2_er_interval(0)[0])
