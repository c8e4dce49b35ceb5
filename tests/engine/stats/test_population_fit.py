"""Vectorized population fits agree with per-unit computations done independently."""

from __future__ import annotations

import numpy as np
import pytest

from compactrig.engine.stats.population_fit import PopulationFit
from compactrig.engine.stats.r2_er import r2_er


def simulated(seed: int = 0, units: int = 7, images: int = 40, presentations: int = 400):
    rng = np.random.default_rng(seed)
    predictions = rng.normal(size=(units, images))
    ids = [f"im{i}" for i in range(images)]
    shown = rng.integers(0, images, presentations)
    rates = np.maximum(0.0, 3 + 2 * predictions[:, shown].T)
    counts = rng.poisson(rates).astype(float)
    counts[rng.random(counts.shape) < 0.05] = np.nan  # a few missing responses
    return predictions, ids, shown, counts


def test_batches_give_the_same_r_affine_fit_and_r2er_as_per_unit_numpy():
    predictions, ids, shown, counts = simulated()
    fit = PopulationFit([f"u{k}" for k in range(len(predictions))], ids, predictions)
    for start in range(0, len(shown), 37):  # uneven batches
        fit.add([ids[i] for i in shown[start:start + 37]], counts[start:start + 37])
    summary = fit.summary()
    for unit in range(len(predictions)):
        finite = np.isfinite(counts[:, unit])
        per_image = {}
        for image, value in zip(shown[finite], counts[finite, unit]):
            per_image.setdefault(image, []).append(value)
        images = sorted(per_image)
        x = predictions[unit, images]
        y = np.array([np.mean(per_image[i]) for i in images])
        assert summary.n_images[unit] == len(images)
        assert summary.n_presentations[unit] == finite.sum()
        assert summary.r[unit] == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-10)
        slope, intercept = np.polyfit(x, y, 1)
        assert summary.slope[unit] == pytest.approx(slope, abs=1e-9)
        assert summary.intercept[unit] == pytest.approx(intercept, abs=1e-9)
        sums = np.array([np.sum(per_image.get(i, [])) for i in range(len(ids))])
        sumsq = np.array([np.sum(np.square(per_image.get(i, []))) for i in range(len(ids))])
        n = np.array([len(per_image.get(i, [])) for i in range(len(ids))])
        assert summary.r2_er[unit] == pytest.approx(r2_er(predictions[unit], sums, sumsq, n), abs=1e-10)
        assert summary.r_low[unit] < summary.r[unit] < summary.r_high[unit]
        px, py, pid = fit.points(unit)
        assert len(px) == len(images) and np.allclose(sorted(py), sorted(y))
        ends, line = fit.fit_line(unit, summary)
        assert np.allclose(line, intercept + slope * ends)


def test_history_has_one_row_per_batch_and_undefined_fits_are_nan():
    predictions, ids, shown, counts = simulated(units=2, images=10, presentations=30)
    fit = PopulationFit(["a", "b"], ids, predictions)
    empty = fit.record_history()
    assert np.isnan(empty.r).all() and np.isnan(empty.r2_er).all()
    fit.add([ids[shown[0]]], counts[:1])
    assert np.isnan(fit.summary().r).all(), "one image: no correlation yet"
    fit.record_history()
    fit.add([ids[i] for i in shown[1:]], counts[1:])
    fit.record_history()
    history = fit.history.of_unit(1)
    assert list(history["n_presentations"]) == [0, 1, 30]
    assert np.isfinite(history["r"][-1])
    with pytest.raises(ValueError, match="predictions must be"):
        PopulationFit(["a"], ids, predictions)


def test_images_added_during_a_session_fit_as_if_known_from_the_start():
    predictions, ids, shown, counts = simulated(seed=3)
    units = [f"u{k}" for k in range(len(predictions))]
    whole = PopulationFit(units, ids, predictions)
    grown = PopulationFit(units, ids[:30], predictions[:, :30])
    early = shown < 30
    grown.add([ids[i] for i in shown[early]], counts[early])
    grown.add_images(ids[25:], predictions[:, 25:])  # overlaps: ids already present are kept as they are
    grown.add([ids[i] for i in shown[~early]], counts[~early])
    whole.add([ids[i] for i in shown[early]], counts[early])
    whole.add([ids[i] for i in shown[~early]], counts[~early])
    assert grown.image_ids == ids
    a, b = grown.summary(), whole.summary()
    for name in ("n_images", "r", "slope", "r2_er"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), equal_nan=True)


def test_a_unit_mapped_mid_session_counts_zero_in_the_presentations_before_it():
    fit = PopulationFit(["a"], ["i0", "i1", "i2"], np.array([[1.0, 2.0, 3.0]]))
    fit.add(["i0", "i1", "i1"], [[1.0], [2.0], [np.nan]])
    fit.add_unit("b", np.array([3.0, 1.0, 2.0]))
    fit.add(["i2", "i0"], [[3.0, 5.0], [1.0, 2.0]])
    assert fit.units == ["a", "b"]
    np.testing.assert_array_equal(fit.counts, [[2, 1, 1], [2, 2, 1]])  # b: 0 in the 3 presentations before
    np.testing.assert_array_equal(fit.sums, [[2.0, 2.0, 3.0], [2.0, 0.0, 5.0]])
    summary = fit.summary()
    assert summary.r[1] == pytest.approx(np.corrcoef([3.0, 1.0, 2.0], [1.0, 0.0, 5.0])[0, 1])
