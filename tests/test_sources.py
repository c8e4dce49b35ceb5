"""Response sources: simulated, replay and LSL (real outlets on loopback), and their faults."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pylsl
import pytest

from conftest import run_cli
from engine.bank import load_bank
from engine.errors import CompactRigError
from independent_model import evaluate
from plugins.registry import RESPONSE_SOURCES, load_plugin
from plugins.sources.base import Presentation, ResponseSource
from plugins.sources.guard import GuardedSource
from plugins.sources.lsl_source import LslSource
from plugins.sources.replay import ReplaySource
from plugins.sources.simulated import SimulatedSource
from stimuli.probes import colour_blob, dot_lattice, grating


def test_builtins_register_by_entry_point_and_describe_their_options():
    listing = run_cli("sources", "list")
    assert listing.returncode == 0
    for name in ("simulated", "replay", "lsl", "openephys"):
        assert name in listing.stdout
    source = load_plugin(RESPONSE_SOURCES, "simulated")
    assert source is SimulatedSource
    assert {"gain", "baseline", "latency_s", "seed", "window_start_s"} <= {o.name for o in source.options}
    with pytest.raises(CompactRigError, match="has no option 'gian'"):
        SimulatedSource(gian="2")
    with pytest.raises(CompactRigError, match="not installed"):
        load_plugin(RESPONSE_SOURCES, "nope")


def test_simulated_counts_follow_the_model_predictions():
    bank = load_bank()
    pixels = np.stack([grating(0), dot_lattice(), colour_blob((1, -1, 0))])
    source = SimulatedSource(gain="0.5,1.0,2.0", baseline="1.0", seed=3)
    source.prepare(["g", "d", "b"], pixels)
    expected = np.stack([evaluate(bank.state_dict(n), pixels) for n in bank.neuron_ids])
    expected = np.maximum(0, 1.0 + np.array([0.5, 1.0, 2.0])[:, None] * expected)
    totals = np.zeros((3, 3))
    repeats = 400
    for k in range(repeats * 3):
        source.submit(Presentation(k, 0, "gdb"[k % 3], 0.0))
    responses = source.collect(now=1.0)
    assert len(responses) == repeats * 3 and source.collect(now=2.0) == []
    for response in responses:
        totals[:, "gdb".index(response.image_id)] += [response.counts[u] for u in source.units]
    np.testing.assert_allclose(totals / repeats, expected, rtol=0.1, atol=0.15)
    again = SimulatedSource(gain="0.5,1.0,2.0", baseline="1.0", seed=3)
    again.prepare(["g", "d", "b"], pixels)
    again.submit(Presentation(0, 0, "g", 0.0))
    assert again.collect(1.0)[0].counts == responses[0].counts, "seeded"


def test_simulated_unknown_units_are_mixtures_and_wait_for_their_window():
    source = SimulatedSource(neurons="demo:0", unknown=2, seed=1)
    assert source.units == ["unit0", "unit1", "unit2"]
    assert source.ground_truth() == {"unit0": "demo:0", "unit1": "mixture", "unit2": "mixture"}
    assert np.allclose(np.abs(source.mixing[1:]).sum(axis=1), 1.0)
    source.prepare(["g"], grating(0)[None])
    source.submit(Presentation(0, 0, "g", 10.0))
    assert source.collect(now=10.1) == [], "not before onset + latency + window end"
    assert len(source.collect(now=10.25)) == 1


def test_replay_returns_the_next_unused_repeat_and_reports_running_out(shared_data):
    path = shared_data / "data_V4_responses/responses_raw/responses_210325.npy"
    raw = np.load(path)
    source = ReplaySource(responses=str(path))
    assert len(source.units) == 50
    row = 6
    repeats = np.flatnonzero(~np.isnan(raw[:, row]).all(axis=0))
    for k in range(len(repeats) + 1):
        source.submit(Presentation(k, 0, "image0007", 0.0))
    responses = source.collect(now=1.0)
    for k, repeat in enumerate(repeats):
        assert [responses[k].counts[u] for u in source.units] == pytest.approx(raw[:, row, repeat], nan_ok=True)
    assert responses[-1].counts is None and "no recorded repeats left for image0007" in responses[-1].missing
    source.submit(Presentation(99, 0, "image9999", 0.0))
    assert "not in the recording" in source.collect(now=1.0)[0].missing
    with pytest.raises(CompactRigError, match="not found"):
        ReplaySource(responses="/nowhere.npy")


def spike_outlet(name: str, source_id: str, channel_format=pylsl.cf_int32, channels: int = 1):
    info = pylsl.StreamInfo(name, "Spikes", channels, pylsl.IRREGULAR_RATE, channel_format, source_id)
    return pylsl.StreamOutlet(info)


def wait_collect(guard: GuardedSource, count: int, timeout: float = 5.0):
    responses, deadline = [], time.monotonic() + timeout
    while len(responses) < count and time.monotonic() < deadline:
        responses += guard.collect(pylsl.local_clock())
        time.sleep(0.01)
    return responses


@pytest.fixture()
def stream_name():
    return f"compactrig-test-{uuid.uuid4().hex[:12]}"


def test_lsl_events_are_counted_per_onset_window(stream_name):
    outlet = spike_outlet(stream_name, stream_name)
    guard = GuardedSource(LslSource(stream_name=stream_name, units="1,2", resolve_timeout_s=5,
                                    latency_allowance_s=0.2))
    assert guard.connect(pylsl.local_clock()) == [] and guard.connected
    time.sleep(0.3)
    onset = pylsl.local_clock()
    spikes = {1: [0.02, 0.06, 0.07, 0.149, 0.16], 2: [0.051, 0.3]}  # relative to onset
    for unit, times in spikes.items():
        for t in times:
            outlet.push_sample([unit], onset + t)
    guard.submit(Presentation(0, 0, "image0001", onset), pylsl.local_clock())
    guard.submit(Presentation(1, 0, "image0002", onset + 0.2), pylsl.local_clock())
    responses = sorted(wait_collect(guard, 2), key=lambda r: r.order)
    assert [r.counts for r in responses] == [{"1": 3.0, "2": 1.0}, {"1": 0.0, "2": 1.0}]
    guard.close()


def test_lsl_count_stream_matches_onsets(stream_name):
    outlet = spike_outlet(stream_name, stream_name, pylsl.cf_float32, channels=3)
    guard = GuardedSource(LslSource(stream_name=stream_name, mode="counts"))
    guard.connect(pylsl.local_clock())
    time.sleep(0.3)
    onset = pylsl.local_clock()
    guard.submit(Presentation(0, 0, "image0001", onset), onset)
    outlet.push_sample([4, 0, 7], onset)
    responses = wait_collect(guard, 1)
    assert responses[0].counts == {"0": 4.0, "1": 0.0, "2": 7.0}
    guard.close()


def test_lsl_disconnect_marks_missing_and_reconnects(stream_name):
    outlet = spike_outlet(stream_name, stream_name)
    guard = GuardedSource(LslSource(stream_name=stream_name, units="1", resolve_timeout_s=1,
                                    latency_allowance_s=0.3, timeout_s=1.0))
    guard.connect(pylsl.local_clock())
    time.sleep(0.3)
    onset = pylsl.local_clock()
    outlet.push_sample([1], onset + 0.1)
    guard.submit(Presentation(0, 0, "image0001", onset), pylsl.local_clock())
    first = wait_collect(guard, 1)
    assert first[0].counts == {"1": 1.0}
    guard.submit(Presentation(1, 0, "image0002", pylsl.local_clock()), pylsl.local_clock())
    del outlet  # the acquisition system goes away
    lost = wait_collect(guard, 1, timeout=10)
    assert lost and lost[0].counts is None and lost[0].order == 1
    assert any("failed" in m for m in guard.messages())
    assert first[0].counts == {"1": 1.0}, "what was received is kept"
    _revived = spike_outlet(stream_name, stream_name)  # the acquisition system is back (kept alive)
    deadline = time.monotonic() + 20
    while not guard.connected and time.monotonic() < deadline:
        guard.collect(pylsl.local_clock())
        time.sleep(0.05)
    assert guard.connected and any("reconnected" in m for m in guard.messages())
    guard.close()


def test_lsl_count_stream_stall_times_out(stream_name):
    outlet = spike_outlet(stream_name, stream_name, pylsl.cf_float32, channels=2)  # alive, never sends
    guard = GuardedSource(LslSource(stream_name=stream_name, mode="counts", timeout_s=0.5))
    guard.connect(pylsl.local_clock())
    guard.submit(Presentation(0, 0, "image0001", pylsl.local_clock()), pylsl.local_clock())
    responses = wait_collect(guard, 1, timeout=5)
    assert responses[0].counts is None and "no response within 0.5 s" in responses[0].missing
    assert outlet is not None


class Exploding(ResponseSource):
    name = "exploding"

    def __init__(self, fail_on: str) -> None:
        super().__init__()
        self.fail_on = fail_on
        self.connects = 0

    @property
    def units(self):
        return ["u"]

    def connect(self):
        self.connects += 1
        if self.fail_on == "connect" and self.connects == 1:
            raise RuntimeError("device busy")

    def submit(self, presentation):
        if self.fail_on == "submit":
            raise ValueError("bad onset")

    def collect(self, now):
        if self.fail_on == "collect":
            raise OSError("socket closed")
        return []


@pytest.mark.parametrize("fail_on", ["connect", "submit", "collect"])
def test_a_plugin_that_raises_never_takes_the_session_down(fail_on):
    guard = GuardedSource(Exploding(fail_on))
    missing = guard.connect(0.0)
    if fail_on == "connect":
        assert not guard.connected and "device busy" in guard.messages()[0]
        assert guard.submit(Presentation(0, 0, "x", 0.0), 0.1)[0].missing == "source disconnected"
        assert guard.collect(1.0) == [] and guard.connected, "retried after the backoff"
        return
    got = guard.submit(Presentation(0, 0, "x", 0.0), 0.0)
    if fail_on == "collect":
        got += guard.collect(0.1)
    assert missing == [] and len(got) == 1 and got[0].counts is None
    assert not guard.connected and "retrying" in guard.messages()[0]
