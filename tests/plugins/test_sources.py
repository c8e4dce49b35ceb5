"""Response sources: simulated, replay and LSL (real outlets on loopback), and their faults."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import pylsl
import pytest

from compactrig.engine.errors import CompactRigError
from compactrig.engine.models.bank import load_bank
from compactrig.plugins.registry import RESPONSE_SOURCES, load_plugin
from compactrig.plugins.sources.base import Presentation, ResponseSource
from compactrig.plugins.sources.guard import GuardedSource
from compactrig.plugins.sources.lsl_source import LslSource
from compactrig.plugins.sources.replay import ReplaySource
from compactrig.plugins.sources.simulated import SimulatedSource
from compactrig.stimuli.probes import colour_blob, dot_lattice, grating, probe_family
from compactrig.stimuli.textures import pink_noise_images

from support.commands import run_cli
from support.independent_model import evaluate


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
    assert source.collect(now=10.39) == [], "not before the end of the span of spike times (0.4 s)"
    assert len(source.collect(now=10.41)) == 1


def test_simulated_spikes_fall_after_each_units_latency_and_the_window_counts_them():
    """Three units of one neuron with latencies 50, 90 and 200 ms: over 300 presentations the mean count in the
    default window (50-150 ms) is the whole response for the first, the part the window still holds for the
    second, and only spontaneous firing for the third; the PSTH of each rises at its latency."""
    source = SimulatedSource(neurons="demo:0,demo:0,demo:0", latency_s="0.05,0.09,0.2", baseline="1.0", seed=2)
    source.prepare(["g"], grating(0)[None])
    rate = float(source.true_rates(grating(0)[None])[0, 0])
    for k in range(300):
        source.submit(Presentation(k, 0, "g", 0.0))
    responses = source.collect(now=1.0)
    assert len(responses) == 300 and all(r.span == (-0.1, 0.4) for r in responses)
    for response in responses:
        for unit in source.units:
            times = response.spikes[unit]
            assert ((times >= -0.1) & (times < 0.4)).all() and (np.diff(times) >= 0).all()
            assert response.counts[unit] == np.count_nonzero((times >= 0.05) & (times < 0.15)), "counted from spikes"
    counts = np.array([[r.counts[u] for u in source.units] for r in responses]).mean(axis=0)
    spontaneous = 1.0  # baseline counts per 100 ms
    assert counts[0] == pytest.approx(rate, rel=0.1)
    assert spontaneous * 1.2 < counts[1] < rate * 0.95
    assert counts[2] == pytest.approx(spontaneous, rel=0.25)
    edges = np.arange(-0.1, 0.4001, 0.01)
    for unit, latency in zip(source.units, (0.05, 0.09, 0.2)):
        psth = np.histogram(np.concatenate([r.spikes[unit] for r in responses]), edges)[0] / 300 / 0.01
        before, after = psth[(edges[:-1] >= latency - 0.03) & (edges[:-1] < latency)], \
            psth[(edges[:-1] >= latency) & (edges[:-1] < latency + 0.03)]
        assert after.mean() > 2 * before.mean(), f"{unit}: the PSTH rises at {latency} s"
    with pytest.raises(CompactRigError, match="latency_s = 0.35"):
        SimulatedSource(latency_s="0.35")
    with pytest.raises(CompactRigError, match="must hold the counting window"):
        SimulatedSource(spikes_from_s=0.06)


def test_mixture_units_fire_like_the_bank_units_over_the_reference_images():
    """A raw mixture (weights summing to 1 in absolute value) hardly moves; by default each mixture unit
    gets the bank units' mean and spread of expected counts over the probe family and 18 textures. The
    bank units' counts here come from the independent float64 model."""
    bank = load_bank()
    reference = np.concatenate([np.stack([p.pixels for p in probe_family()]), pink_noise_images(18, seed=20260)])
    known = np.maximum(0, 2.0 + np.stack([evaluate(bank.state_dict(n), reference) for n in bank.neuron_ids]))
    source = SimulatedSource(unknown=2, mixture_size=2, seed=4)
    rates = source.true_rates(reference)
    np.testing.assert_allclose(rates[:3], known, atol=1e-3)
    assert abs(rates[3:].mean() - known.mean()) < 0.1 * known.mean()
    np.testing.assert_allclose(rates[3:].std(axis=1), known.std(axis=1).mean(), rtol=0.15)
    source.prepare([f"r{i}" for i in range(len(reference))], reference)
    for k in range(len(reference) * 20):
        source.submit(Presentation(k, 0, f"r{k % len(reference)}", 0.0))
    counts = np.array([[r.counts[u] for u in source.units] for r in source.collect(now=1.0)])
    means = counts.reshape(20, len(reference), 5).mean(axis=0)
    assert (means[:, 3:].std(axis=0) > 0.5 * known.std(axis=1).mean()).all(), "the mixtures' counts really vary"
    raw = SimulatedSource(unknown=2, mixture_size=2, seed=4, mixture_counts="raw")
    np.testing.assert_allclose(raw.true_rates(reference)[3:], np.maximum(0, 2.0 + raw.mixing[3:] @ (known - 2.0)),
                               atol=1e-3)
    fixed = SimulatedSource(unknown=2, mixture_size=2, seed=4, mixture_counts="8,3").true_rates(reference)
    np.testing.assert_allclose(fixed[3:].std(axis=1), 3.0, rtol=0.1)
    with pytest.raises(CompactRigError, match="mixture_counts = 'lots'"):
        SimulatedSource(unknown=1, mixture_counts="lots")


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
    assert responses[0].span == (-0.1, 0.4)
    for response, shift in zip(responses, (0.0, 0.2)):  # spike times relative to each onset, within the span
        for unit, times in spikes.items():
            expected = [t - shift for t in times if -0.1 <= t - shift < 0.4]
            np.testing.assert_allclose(response.spikes[str(unit)], expected, atol=2e-4)  # clock correction: µs
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
    revived = spike_outlet(stream_name, stream_name)  # the acquisition system is back
    deadline = time.monotonic() + 20
    while not guard.connected and time.monotonic() < deadline:
        guard.collect(pylsl.local_clock())
        time.sleep(0.05)
    assert guard.connected and any("reconnected" in m for m in guard.messages())
    guard.close()
    del revived  # kept alive until here: an outlet that is collected closes its stream


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


def peer_spikes(log_path: Path) -> dict[str, list[float]]:
    spikes: dict[str, list[float]] = {}
    for line in log_path.read_text().splitlines():
        unit, when = line.split()
        spikes.setdefault(unit, []).append(float(when))
    return spikes


def check_counts_as_fired(folder: Path, spikes: dict[str, list[float]], margin: float = 1e-4,
                          starts: dict[int, float] | None = None, adopted: tuple[float, float] | None = None) -> int:
    """Every stored count is what the peer fired in the window after the onset (or after ``starts[order]``),
    to LSL's clock correction (``margin``: a spike that close to a window edge may fall either side); with
    ``adopted``, every count as the session reads it (``counted_responses``) is what the peer fired in that
    window instead; returns how many counts were checked."""
    import sqlite3

    from support.sessions import counted_in
    with sqlite3.connect(folder / "trials.sqlite") as db:
        rows = db.execute("SELECT p.ord, p.onset_time, r.unit, r.count FROM presentations p JOIN responses r ON "
                          "r.ord = p.ord WHERE p.aborted = 0").fetchall()
    window = adopted or (0.05, 0.15)
    if adopted is not None:
        counted = {(c.order, c.unit): c for c in counted_in(folder)}
        assert all(counted[(order, unit)].window == pytest.approx(adopted) for order, _, unit, _ in rows)
        rows = [(order, onset, unit, counted[(order, unit)].count) for order, onset, unit, _ in rows]
    exact = 0
    for order, onset, unit, count in rows:
        onset = starts[order] if starts is not None else onset
        times = np.array(spikes.get(unit, []))
        sure = int(((times >= onset + window[0] + margin) & (times < onset + window[1] - margin)).sum())
        possible = int(((times >= onset + window[0] - margin) & (times < onset + window[1] + margin)).sum())
        assert sure <= count <= possible, (onset, unit, count, sure, possible)
        exact += sure == possible
    assert exact >= len(rows) // 2, "most windows have no spike within the clock correction of an edge"
    return len(rows)


def check_spikes_as_fired(folder: Path, spikes: dict[str, list[float]], margin: float = 2e-4) -> int:
    """Every presentation shown has its spike times kept, each the peer's (s from the onset, to LSL's clock
    correction), none lost and none invented; returns how many spikes were checked."""
    from support.sessions import stored_spikes, table

    kept = stored_spikes(folder)
    checked = 0
    for order, onset in table(folder, "SELECT ord, onset_time FROM presentations WHERE aborted = 0"):
        (start, end), trains = kept[order]
        for unit, fired in spikes.items():
            relative = np.array(fired) - onset
            stored = trains.get(unit, np.zeros(0))
            inside = relative[(relative >= start + margin) & (relative < end - margin)]
            near = relative[(relative >= start - margin) & (relative < end + margin)]
            assert len(inside) <= len(stored) <= len(near), (order, unit)
            assert all(np.abs(near - t).min() <= margin for t in stored), (order, unit, "a spike the peer never fired")
            checked += len(stored)
    return checked


@pytest.mark.slow
@pytest.mark.needs_display
@pytest.mark.parametrize("frames_on", [6, 180], ids=["0.1s", "3s"])
def test_lsl_session_counts_every_window_as_fired_whatever_the_on_time(tmp_path, frames_on):
    """An acquisition system in its own process (``tests/peers/lsl_acquisition.py``, pylsl only): images
    on for 0.1 s or 3 s, three per trial; a unit first heard from mid-session; with 0.1 s images the
    acquisition process is killed (SIGKILL) and started again mid-session."""
    from compactrig.stimuli.probes import grating
    from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

    from support.commands import compactrig_command
    from support.peer_processes import paced_rig, start_peer
    from support.sessions import count_so_far, table

    n_images = 9 if frames_on == 6 else 2  # 3 s images: a trial of two is long enough
    stimuli = tmp_path / "set"
    StimulusSet([StimulusRecord(image_id=f"img{i}", kind="natural") for i in range(n_images)],
                np.stack([grating(20 * i) for i in range(n_images)])).save(stimuli)
    name, log = f"spikes-{uuid.uuid4().hex[:8]}", tmp_path / "spikes.log"
    late_after = 3.0 if frames_on == 6 else 6.0
    args = (name, f"{name}-source", str(log), "1,2,3", "30", "5", "3", str(late_after))
    peer = start_peer("lsl_acquisition.py", *args)
    out = tmp_path / "session"
    rig = tmp_path / "rig.toml"
    rig.write_text(paced_rig(frames_on, 6, 3))
    process = subprocess.Popen(compactrig_command("session", "run", "--stimuli", str(stimuli), "--rig", str(rig),
                                          "--source", "lsl", "--source-opt", f"stream_name={name}",
                                          "--source-opt", "units=1,2", "--out", str(out)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if frames_on == 6:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and count_so_far(out, "SELECT COUNT(*) FROM responses") < 6:
                time.sleep(0.05)
            os.kill(peer.pid, signal.SIGKILL)
            peer.wait(5)
            time.sleep(1.0)
            peer = start_peer("lsl_acquisition.py", name, f"{name}-source", str(log), "1,2,3", "30", "6")
        stdout, stderr = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.kill()
        peer.kill()
        peer.wait(5)
    assert process.returncode == 0, stderr
    check_counts_as_fired(out, peer_spikes(log))
    assert check_spikes_as_fired(out, peer_spikes(log)) > 0
    adopted = subprocess.run(compactrig_command("session", "windows", str(out), "--adopt", "80,200"),
                             capture_output=True, text=True)
    assert adopted.returncode == 0 and "every unit: counted 80..200 ms after the onset" in adopted.stdout, adopted
    check_counts_as_fired(out, peer_spikes(log), adopted=(0.08, 0.2))
    complete = table(out, "SELECT COUNT(DISTINCT p.item) FROM presentations p JOIN responses r ON r.ord = p.ord "
                          "WHERE p.aborted = 0")[0][0]
    assert complete == n_images
    units = table(out, "SELECT unit, declared FROM units ORDER BY rowid")
    assert units == [("1", 1), ("2", 1), ("3", 0)], "declared units first, the late one when first heard"
    per_order = table(out, "SELECT ord, COUNT(*) FROM responses GROUP BY ord")
    assert {n for _, n in per_order} == {3}, "every response has every unit (0 before unit 3 was heard)"
    durations = [off - on for on, off in table(out, "SELECT onset_time, offset_time FROM presentations "
                                                    "WHERE aborted = 0")]
    assert min(durations) >= (frames_on - 1) / 60, "the images really stayed up that long (to a frame)"
    if frames_on == 6:
        reasons = [r for (r,) in table(out, "SELECT abort_reason FROM presentations WHERE aborted = 1")]
        assert any("source" in r for r in reasons), "windows while the acquisition was dead were given up"


@pytest.mark.slow
@pytest.mark.needs_display
def test_lsl_windows_are_counted_from_the_recorded_code_words_matched_by_identity(tmp_path):
    """The rig's serial event codes reach the strobed-word board (``tests/peers/strobed_word_arduino.py``), whose
    pins feed a recording system's digital input that streams the stored words over LSL
    (``tests/peers/lsl_digital_input.py``, 30 ms after each strobe); spikes come from their own acquisition
    process. Every stored count is what the peer fired after that presentation's own recorded word, the lost
    onset word makes its presentation missing with the reason (never counted from another word), and the word
    recorded twice is named."""
    from compactrig.stimuli.probes import grating
    from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

    from support.commands import compactrig_command
    from support.peer_processes import paced_rig, start_peer
    from support.serial_board import SerialBoard
    from support.sessions import check_exactly_once, table

    stimuli = tmp_path / "set"
    StimulusSet([StimulusRecord(image_id=f"img{i}", kind="natural") for i in range(4)],
                np.stack([grating(40 * i) for i in range(4)])).save(stimuli)
    board = SerialBoard(tmp_path, tmp_path / "rig-port")
    name = f"spikes-{uuid.uuid4().hex[:8]}"
    spikes, words = tmp_path / "spikes.log", tmp_path / "words.log"
    acquisition = start_peer("lsl_acquisition.py", name, f"{name}-source", str(spikes), "1,2", "40", "9")
    digital = start_peer("lsl_digital_input.py", f"{name}-words", str(board.log), str(words), "0.03", "32768", "32770")
    rig = tmp_path / "rig.toml"
    rig.write_text(paced_rig(9, 6, 2, f'[markers]\noutputs = ["serial"]\n[markers.serial]\nport = "{board.port}"\n'
                                      'reset_wait_s = 0.0\n'))
    out = tmp_path / "session"
    try:
        process = subprocess.run(compactrig_command("session", "run", "--stimuli", str(stimuli), "--rig", str(rig),
                                                    "--source", "lsl", "--source-opt", f"stream_name={name}",
                                                    "--source-opt", f"words_stream={name}-words",
                                                    "--source-opt", "units=1,2", "--out", str(out)),
                                 capture_output=True, text=True, timeout=180)
    finally:
        for peer in (acquisition, digital):
            peer.kill()
            peer.wait(5)
        board.close()
    assert process.returncode == 0, process.stderr
    pushed = [line.split() for line in words.read_text().splitlines()]
    lost = [int(w) for tag, w in (p for p in pushed if p[0] == "lost")]
    assert len(lost) == 1 and lost[0] >= 32768, "the lost word is an onset's (the README's table)"
    aborted = dict(table(out, "SELECT ord, abort_reason FROM presentations WHERE aborted = 1"))
    assert f"no onset word ({lost[0]})" in aborted[lost[0] - 32768], aborted
    check_exactly_once(out, 4, n_units=2)
    onsets = [(int(w), float(t)) for w, t in (p for p in pushed if p[0] != "lost") if int(w) >= 32768]
    starts: dict[int, float] = {}
    for word, when in onsets:
        starts.setdefault(word - 32768, when)  # a repeated word: its first
    assert check_counts_as_fired(out, peer_spikes(spikes), margin=1e-3, starts=starts) >= 8
    repeated = [w for w in {w for w, _ in onsets} if [v for v, _ in onsets].count(w) > 1]
    assert len(repeated) == 1 and f"onset word of identity {repeated[0] - 32768} at" in process.stdout
