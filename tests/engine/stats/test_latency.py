"""Response latency from spike trains drawn here with a known onset (a sharp rise, then decay, over a
spontaneous rate), as a V4 unit's PSTH looks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from compactrig.engine.stats.latency import WINDOW_S, binned, response_latency

SPAN = (-0.1, 0.4)


def trains(latency: float, n: int, evoked: float = 8.0, spontaneous_hz: float = 5.0, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        response = latency + 0.1 * rng.beta(1.5, 2.5, rng.poisson(evoked))
        background = rng.uniform(*SPAN, rng.poisson(spontaneous_hz * (SPAN[1] - SPAN[0])))
        out.append(np.sort(np.concatenate([response, background])))
    return out


@pytest.mark.parametrize("latency", [0.05, 0.08, 0.12])
def test_the_latency_is_found_within_a_few_ms_and_its_interval_narrows_with_presentations(latency):
    few, many = response_latency(trains(latency, 12), SPAN), response_latency(trains(latency, 200), SPAN)
    for found in (few, many):
        assert abs(found.latency_s - latency) <= 0.006 and found.low_s <= found.latency_s <= found.high_s
    assert many.high_s - many.low_s < few.high_s - few.low_s
    assert many.window(SPAN[1]) == (many.latency_s, min(many.latency_s + WINDOW_S, SPAN[1]))


def test_no_response_no_baseline_or_no_presentation_gives_no_latency_and_says_why():
    silent = response_latency(trains(0.07, 50, evoked=0.0), SPAN)
    assert math.isnan(silent.latency_s) and silent.reason == "no response above the baseline"
    assert silent.window(SPAN[1]) is None
    assert "no baseline" in response_latency(trains(0.07, 20), (0.0, 0.4)).reason
    assert response_latency([], SPAN).reason == "no presentation with spike times"


def test_every_spike_inside_the_span_is_binned_even_one_just_before_its_end():
    """A spike kept at a time just under the span's end lands in the last bin: floating-point division put it on
    the next bin's edge and the PSTH dropped it (CI at stop 49: one spike of 557 missing from the Spikes page)."""
    span = (-0.1, 0.4)
    trains = [np.array([-0.1, 0.0, np.nextafter(0.4, 0.0)]), np.array([0.4, 0.2999999999999999])]
    counts = binned(trains, span)
    assert counts.shape == (2, 500)
    assert counts[0].sum() == 3 and counts[0, 0] == 1 and counts[0, 100] == 1 and counts[0, 499] == 1
    assert counts[1].sum() == 1, "the span's end itself is outside it"
