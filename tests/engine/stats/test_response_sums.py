"""The one per-image accumulator: its missing-data rule, shared by live fits, readouts and stored sessions."""

from __future__ import annotations

import numpy as np
import pytest

from compactrig.engine.stats.population_fit import PopulationFit
from compactrig.engine.stats.response_sums import PerImageSums
from compactrig.rig.session.fits import fits_from_store
from compactrig.rig.session.trial_store import StoredPresentation
from compactrig.stimuli.closed_loop import ResponseLog


def test_a_missing_count_is_skipped_for_that_unit_only_and_rows_grow_past_their_capacity():
    sums = PerImageSums(["u0", "u1"])
    rng = np.random.default_rng(0)
    ids = [f"im{k}" for k in rng.integers(0, 40, 300)]  # new images keep arriving: rows grow many times
    values = rng.poisson(3.0, (300, 2)).astype(float)
    values[rng.random((300, 2)) < 0.1] = np.nan
    for start in range(0, 300, 7):
        sums.add(ids[start:start + 7], values[start:start + 7])
    for row, image in enumerate(sums.image_ids):
        mine = values[[k for k, i in enumerate(ids) if i == image]]
        np.testing.assert_array_equal(sums.counts[row], np.isfinite(mine).sum(axis=0))
        np.testing.assert_allclose(sums.sums[row], np.nansum(mine, axis=0))
        np.testing.assert_allclose(sums.sumsq[row], np.nansum(mine**2, axis=0))
        assert sums.presentations[row] == len(mine)
        assert sums.answered_by_all()[row] == np.isfinite(mine).any(axis=0).all()
    assert sums.n_presentations == 300 and sums.image_ids == list(dict.fromkeys(ids))


def test_live_fits_readouts_and_a_stored_session_see_the_same_sums():
    """The same presentations (one unit silent in one of them) reach the live fits, the closed-loop log
    and a stored session's fits: each holds the same per-image numbers for each unit."""
    ids = ["a", "b", "c"]
    shown = [("a", {"u0": 1.0, "u1": 4.0}), ("b", {"u0": 2.0}), ("a", {"u0": 3.0, "u1": 6.0}),
             ("c", {"u0": 5.0, "u1": 1.0})]
    matrix = np.array([[c.get(u, np.nan) for u in ("u0", "u1")] for _, c in shown])
    predictions = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    live = PopulationFit(["u0", "u1"], ids, predictions)
    live.add([i for i, _ in shown], matrix)
    log = ResponseLog(PerImageSums(["u0", "u1"]))
    log.add_features(ids, np.eye(3))
    log.sums.add([i for i, _ in shown], matrix)
    presentations = [StoredPresentation(order, order, 0, image, 0.0, 60, 0, True, False, None)
                     for order, (image, _) in enumerate(shown)]
    responses = [(order, unit, count) for order, (_, counts) in enumerate(shown) for unit, count in counts.items()]
    stored = fits_from_store({"u0": predictions[0], "u1": predictions[1]}, ids, presentations, responses)
    trials = log.snapshot().responses
    for fit in (live, stored):
        np.testing.assert_array_equal(fit.counts, trials.counts.T)
        np.testing.assert_array_equal(fit.sums, trials.sums.T)
        np.testing.assert_array_equal(fit.sumsq, trials.sumsq.T)
    np.testing.assert_array_equal(trials.counts, [[2, 2], [1, 0], [1, 1]])
    np.testing.assert_array_equal(trials.answered_by_all(), [True, False, True])
    np.testing.assert_array_equal(trials.answered(), [[True, True], [True, False], [True, True]])
    np.testing.assert_array_equal(trials.means(), [[2.0, 5.0], [2.0, np.nan], [5.0, 1.0]])


def test_a_copy_of_some_rows_stays_as_it_was_while_the_sums_grow_and_sums_made_elsewhere_are_checked():
    sums = PerImageSums(["u0", "u1"])
    sums.add(["a", "b", "c", "a"], [[1.0, 2.0], [3.0, np.nan], [5.0, 6.0], [7.0, 8.0]])
    taken = sums.take([2, 0])
    sums.add(["a", "d"], [[10.0, 10.0], [1.0, 1.0]])
    assert taken.image_ids == ["c", "a"] and taken.index == {"c": 0, "a": 1} and taken.units == ["u0", "u1"]
    np.testing.assert_array_equal(taken.counts, [[1, 1], [2, 2]])
    np.testing.assert_array_equal(taken.sums, [[5.0, 6.0], [8.0, 10.0]])
    np.testing.assert_array_equal(taken.sumsq, [[25.0, 36.0], [50.0, 68.0]])
    assert taken.n_presentations == 3 and list(taken.presentations) == [1, 2]
    assert sums.copy().image_ids == ["a", "b", "c", "d"] and sums.copy().counts[0, 0] == 3
    with pytest.raises(ValueError, match="distinct rows"):
        sums.take([0, 0])

    made = PerImageSums.from_counts(["u0"], ["x", "y"], [[2], [0]], [[3.0], [0.0]], [[5.0], [0.0]])
    np.testing.assert_array_equal(made.means(), [[1.5], [np.nan]])
    assert made.n_presentations == 2 and made.index == {"x": 0, "y": 1}
    made.add(["y"], [[4.0]])
    np.testing.assert_array_equal(made.means(), [[1.5], [4.0]])
    with pytest.raises(ValueError, match="whole numbers"):
        PerImageSums.from_counts(["u0"], ["x"], [[0.5]], [[1.0]], [[1.0]])
    with pytest.raises(ValueError, match=r"\(images, units\) = \(2, 1\)"):
        PerImageSums.from_counts(["u0"], ["x", "y"], [[1]], [[1.0]], [[1.0]])
    with pytest.raises(ValueError, match="finite"):
        PerImageSums.from_counts(["u0"], ["x"], [[1]], [[np.nan]], [[1.0]])
