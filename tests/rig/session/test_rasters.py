"""The rasters and PSTHs kept at the rig: fed a session's events as the Live fits view's live session is,
they give the rows, rates and counts an independent numpy computation gets from the same spike trains;
a window adopted (the same session recounted) keeps them; a session counted only says it has none."""

from __future__ import annotations

import numpy as np
import pytest

from compactrig.rig.session.events import ResponseStored, SessionStarted, UnitsDiscovered
from compactrig.rig.session.live import LiveSession

UNITS = ["unit0", "unit1", "unit2"]
IMAGES = [f"img{i}" for i in range(5)]
SPAN = (-0.1, 0.4)


def trains(seed: int = 0, n: int = 60) -> list[tuple[int, str, dict[str, np.ndarray]]]:
    """(order, image, unit -> spike times) with a response 60..160 ms growing with the image's number;
    unit2 never fires (left out, as sources leave out a silent unit)."""
    rng = np.random.default_rng(seed)
    out = []
    for order in range(n):
        image = int(rng.integers(len(IMAGES)))
        spikes = {}
        for unit in UNITS[:2]:
            baseline = rng.uniform(*SPAN, rng.poisson(5))
            response = rng.uniform(0.06, 0.16, rng.poisson(2 + 3 * image))
            spikes[unit] = np.sort(np.concatenate([baseline, response])).astype(np.float32)
        out.append((order, IMAGES[image], spikes))
    return out


def started(predictions: dict[str, np.ndarray], recount: bool = False) -> SessionStarted:
    return SessionStarted(UNITS, IMAGES, predictions, {u: "demo:0" for u in predictions}, [], 100,
                          recount=recount)


def fed(presentations, predictions=None) -> LiveSession:
    live = LiveSession()
    predictions = {"unit0": np.array([3.0, 1.0, 4.0, 0.0, 2.0])} if predictions is None else predictions
    live.take_events([started(predictions)] + [
        ResponseStored(image, {u: float(len(spikes.get(u, ()))) for u in UNITS}, order, spikes, SPAN)
        for order, image, spikes in presentations])
    return live


def test_raster_rows_are_the_presentations_grouped_by_image_in_the_order_of_the_predictions():
    presentations = trains()
    live = fed(presentations)
    order = live.raster_order("unit0")
    assert order == [IMAGES[k] for k in np.argsort([3.0, 1.0, 4.0, 0.0, 2.0])], "by the model's prediction"
    x, y = live.rasters.raster("unit0", order)
    expected = []
    row = 0
    for image in order:
        for _, shown, spikes in presentations:
            if shown == image:
                expected += [(float(t), row) for t in spikes["unit0"]]
                row += 1
    assert sorted(zip(x.tolist(), y.tolist())) == sorted(expected)

    # unit1 has no model: its images go by its mean response (here: the image's number, as simulated)
    means = {image: np.mean([len(s["unit1"]) for _, i, s in presentations if i == image]) for image in IMAGES}
    assert live.raster_order("unit1") == sorted(IMAGES, key=means.__getitem__)


def test_psth_population_and_counts_equal_numpy_on_the_trains():
    presentations = trains(seed=1)
    live = fed(presentations)
    rasters = live.rasters
    for bin_s in (0.001, 0.01, 0.025):
        for unit in UNITS:
            centres, rate = rasters.psth(unit, bin_s)
            edges = np.arange(SPAN[0], SPAN[1] + bin_s / 2, bin_s)
            pooled = np.concatenate([s.get(unit, np.zeros(0)) for _, _, s in presentations]).astype(np.float64)
            expected = np.histogram(pooled, edges)[0] / (len(presentations) * bin_s)
            np.testing.assert_allclose(centres, (edges[:-1] + edges[1:]) / 2, atol=1e-9)
            np.testing.assert_allclose(rate, expected, rtol=1e-9)
    centres, image = rasters.population_psth(0.01)
    assert image.shape == (3, len(centres))
    for k, unit in enumerate(UNITS):
        rate = rasters.psth(unit, 0.01)[1]
        np.testing.assert_allclose(image[k], rate / rate.max() if rate.max() > 0 else 0 * rate)
    window = (0.05, 0.15)
    for unit in UNITS:
        independent = [np.count_nonzero((s[unit] >= window[0]) & (s[unit] < window[1])) if unit in s else 0
                       for _, _, s in presentations]
        np.testing.assert_array_equal(rasters.counts(unit, window), independent)


def test_psth_catches_up_with_spikes_added_after_it_was_drawn():
    presentations = trains(seed=2)
    live = fed(presentations[:20])
    live.rasters.psth("unit0", 0.01)
    live.take_events([ResponseStored(image, {}, order, spikes, SPAN) for order, image, spikes in presentations[20:]])
    pooled = np.concatenate([s["unit0"] for _, _, s in presentations]).astype(np.float64)
    edges = np.arange(SPAN[0], SPAN[1] + 0.005, 0.01)
    np.testing.assert_allclose(live.rasters.psth("unit0", 0.01)[1],
                               np.histogram(pooled, edges)[0] / (len(presentations) * 0.01))


def test_an_adopted_window_keeps_the_rasters_and_a_new_session_starts_empty():
    live = fed(trains())
    kept = live.rasters
    live.take_events([started({"unit0": np.zeros(5)}, recount=True)])
    assert live.rasters is kept and live.has_spikes and live.rasters.n_presentations == 60
    live.take_events([started({})])
    assert not live.has_spikes and live.rasters.n_presentations == 0


def test_a_session_counted_only_says_it_kept_no_spike_times():
    live = LiveSession()
    live.take_events([started({})] + [ResponseStored("img0", {"unit0": 3.0}, order) for order in range(5)])
    assert live.sums is not None and live.sums.n_presentations == 5
    assert not live.has_spikes


def test_a_unit_heard_of_later_is_rated_over_the_presentations_since():
    presentations = trains(seed=3, n=20)
    live = fed(presentations)
    late = {"unit9": np.array([0.1, 0.2], dtype=np.float32)}
    live.take_events([UnitsDiscovered(["unit9"])]
                     + [ResponseStored("img0", {}, 100 + k, late, SPAN) for k in range(4)])
    centres, rate = live.rasters.psth("unit9", 0.1)
    assert rate.sum() * 0.1 == pytest.approx(2.0), "2 spikes per presentation since it was heard of"
    assert live.rasters.latency("unit9").n_presentations == 4
