"""Peers on a bad day, each in its own process: what the session sees when they send garbage.

- ``tests/peers/hostile_tracker.py``: an eye tracker's LSL state stream sending NaN (track loss), -1,
  other numbers, text and wrong channel counts, and time stamps from the future or NaN (pylsl only,
  written from pylsl's examples @ e146d7d4ca2b5c6c3c274ea7fa4f23f851bed09d).
- ``tests/peers/hostile_lsl_source.py``: an acquisition system's LSL spike-event or count stream
  sending NaN, negative and text values, bad stamps and thousands of unit ids.
- ``tests/peers/hostile_open_ephys.py``: the Open Ephys ZMQ Interface plugin's framing
  (open-ephys-plugins/zmq-interface @ 38513917d6a7ee5791a47029d624a1b6110b01ee,
  Source/ZmqInterface.cpp) with bad content between honest blocks.
Expected counts come from what the peers logged as honestly sent, never from CompactRig's reading.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter

import pylsl
import pytest

from compactrig.plugins.gates import LslGate
from compactrig.plugins.sources.base import Presentation
from compactrig.plugins.sources.guard import GuardedSource
from compactrig.plugins.sources.lsl_source import LslSource
from compactrig.plugins.sources.openephys import OpenEphysSource

from support.onsets import Onsets, pump_for
from support.peer_processes import OpenEphysLog, command, free_port_pair, start_open_ephys, start_peer


def wait_until(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.002)
    return condition()


def stop(peer) -> None:
    if peer.poll() is None:
        command(peer, "quit")
        peer.wait(5)


# the fixation gate ---------------------------------------------------------------------------------
BAD_FIXATION = [  # (stream format, channels, value sent, what the break reason must say)
    ("float32", 1, "nan", "NaN"),
    ("float32", 1, "-1", "-1"),
    ("float32", 1, "0.5", "0.5"),
    ("float32", 1, "2", "2"),
    ("int32", 1, "-1", "-1"),
    ("string", 1, "0", "'0'"),
    ("string", 1, "yes", "'yes'"),
    ("string", 1, "", "''"),
    ("float32", 2, "1", "2 channels"),
]


@pytest.mark.parametrize("kind, channels, value, reason", BAD_FIXATION,
                         ids=[f"{k}x{c}:{v or 'empty'}" for k, c, v, _ in BAD_FIXATION])
def test_only_an_explicit_fixating_sample_opens_the_gate(kind, channels, value, reason):
    """NaN (what trackers send on track loss), -1, other numbers, text other than "1" and samples of
    two channels all keep the gate closed, with the reason; the same tracker sending 1 opens it."""
    name = f"hostile-fixation-{uuid.uuid4().hex[:8]}"
    peer = start_peer("hostile_tracker.py", name, kind, str(channels), value)
    gate = LslGate(stream_name=name)
    try:
        gate.connect()
        time.sleep(0.3)  # 150 samples of the bad value have arrived
        now = pylsl.local_clock()
        assert gate.break_time(now - 0.2, now) is not None and not gate.may_start(now), "a break"
        assert reason in gate.break_reason and "silent" not in gate.break_reason, gate.break_reason
        command(peer, "send 1")
        assert peer.stdout.readline().startswith("ok 1")
        opened = wait_until(lambda: gate.may_start(pylsl.local_clock()), 2.0)
        assert opened == (channels == 1), "1 opens the gate, but not on a stream of two channels"
    finally:
        stop(peer)
        gate.close()


@pytest.mark.parametrize("stamp", ["100", "nan"], ids=["stamped-100s-ahead", "stamped-nan"])
def test_stamps_from_the_future_or_nan_cannot_hold_the_gate_open_after_the_tracker_dies(stamp):
    """A fixating tracker whose stamps lie 100 s ahead (or are NaN) is SIGKILLed: the gate still closes
    within stale_after_s (0.1 s) of its last sample, as it does for an honest tracker."""
    name = f"hostile-stamps-{uuid.uuid4().hex[:8]}"
    peer = start_peer("hostile_tracker.py", name, "float32", "1", "1")
    gate = LslGate(stream_name=name)
    try:
        command(peer, f"stamp {stamp}")  # before the gate connects: every sample it reads is skewed
        assert peer.stdout.readline().startswith(f"ok {stamp}")
        gate.connect()
        assert wait_until(lambda: gate.may_start(pylsl.local_clock()), 2.0), "fixating, dated as it is read"
        time.sleep(0.2)
        killed_at = pylsl.local_clock()
        os.kill(peer.pid, signal.SIGKILL)
        peer.wait(5)
        assert wait_until(lambda: gate.must_abort(pylsl.local_clock()), 1.0), "fails closed"
        assert pylsl.local_clock() - killed_at <= 0.1 + 0.05
        assert "eye tracker silent" in gate.break_reason
    finally:
        stop(peer)
        gate.close()



# LSL spike and count streams --------------------------------------------------------------------
class LslPeer:
    """``tests/peers/hostile_lsl_source.py`` in its own process, told what to push line by line."""

    def __init__(self, kind: str, channels: int) -> None:
        self.name = f"hostile-spikes-{uuid.uuid4().hex[:8]}"
        self.process = start_peer("hostile_lsl_source.py", self.name, kind, str(channels))

    def send(self, line: str) -> None:
        command(self.process, line)
        assert self.process.stdout.readline().startswith("ok"), line

    def push(self, stamp: float | str, *values) -> None:
        self.send(f"push {stamp} {','.join(str(v) for v in values)}")


def pump(guard: GuardedSource, count: int, seconds: float = 5.0) -> list:
    got, deadline = [], time.monotonic() + seconds
    while len(got) < count and time.monotonic() < deadline:
        got += guard.collect(pylsl.local_clock())
        time.sleep(0.01)
    return got


def test_spike_events_with_garbage_unit_ids_stamps_and_a_flood_of_units_keep_the_honest_counts():
    """Between honest spikes the stream sends unit ids NaN, inf, -1 and 1.5, spikes stamped NaN and
    100 s ahead, and 5000 new unit ids: the windows count exactly the honest spikes, at most max_units
    units exist, the flood is told in one line and every drop is counted; the source stays connected."""
    peer = LslPeer("float32", 1)
    guard = GuardedSource(LslSource(stream_name=peer.name, units="1,2", latency_allowance_s=0.3, max_units=10))
    try:
        assert guard.connect(pylsl.local_clock()) == [] and guard.connected
        time.sleep(0.3)
        onset = pylsl.local_clock()
        honest = {"1": [0.06, 0.07, 0.149], "2": [0.1]}
        for unit, times in honest.items():
            for t in times:
                peer.push(onset + t, unit)
        for garbage in ("nan", "inf", "-1", "1.5", "-inf"):
            peer.push(onset + 0.08, garbage)
        peer.push("nan", 1)
        peer.push(onset + 100.0, 1)
        peer.send(f"flood 5000 1000 {onset + 0.5}")  # outside the window: only the unit cap is at stake
        guard.submit(Presentation(0, 0, "img0", onset), pylsl.local_clock())
        later = onset + 0.6
        peer.push(later + 0.09, 2)
        peer.push(later + 0.1, "nan")
        guard.submit(Presentation(1, 0, "img1", later), pylsl.local_clock())
        got = sorted(pump(guard, 2), key=lambda r: r.order)
        assert [r.order for r in got] == [0, 1]
        first, second = (dict(r.counts) for r in got)
        assert (first.pop("1"), first.pop("2")) == (3.0, 1.0) and not any(first.values()), got[0].counts
        assert (second.pop("1"), second.pop("2")) == (0.0, 1.0) and not any(second.values()), got[1].counts
        assert len(guard.units) == 10 and guard.units[:2] == ["1", "2"], "at most max_units units"
        assert not {"nan", "inf", "-1", "1.5", "-inf"} & set(guard.units)
        messages = guard.messages()
        assert guard.connected and not [m for m in messages if "failed" in m], messages
        assert len([m for m in messages if "max_units" in m]) == 1, messages
        dropped = guard.source.dropped.counts
        assert dropped["spike with a unit id that is not a whole number >= 0 or a short text"] == 6
        assert dropped["sample with a time stamp that is not finite or lies in the future"] == 2
        assert sum(n for reason, n in dropped.items() if "max_units" in reason) == 5000 - 8
    finally:
        command(peer.process, "quit")
        peer.process.wait(5)
        guard.close()


def test_a_text_spike_stream_with_empty_long_or_control_character_unit_ids_keeps_the_named_units():
    """A string spike stream: unit ids that are empty, 100 characters long or hold a control character
    are dropped and counted; the named units count exactly."""
    peer = LslPeer("string", 1)
    guard = GuardedSource(LslSource(stream_name=peer.name, latency_allowance_s=0.3))
    try:
        guard.connect(pylsl.local_clock())
        time.sleep(0.3)
        onset = pylsl.local_clock()
        for t, unit in ((0.06, "Tetrode 1:2"), (0.07, "Tetrode 1:2"), (0.1, "Tetrode 3:0")):
            peer.push(onset + t, unit)
        for garbage in ("", "x" * 100, "bad\tunit"):
            peer.push(onset + 0.08, garbage)
        guard.submit(Presentation(0, 0, "img0", onset), pylsl.local_clock())
        got = pump(guard, 1)
        assert [r.counts for r in got] == [{"Tetrode 1:2": 2.0, "Tetrode 3:0": 1.0}]
        assert guard.source.dropped.counts["spike with a unit id that is not a whole number >= 0 or a short text"] == 3
    finally:
        command(peer.process, "quit")
        peer.process.wait(5)
        guard.close()


def test_a_spike_flood_fills_the_buffer_to_its_cap_and_the_windows_it_touched_are_missing(monkeypatch):
    """With the spike buffer capped at 1000 (MAX_SPIKES lowered for the test), a peer sending 3000 spikes
    into a window: exactly 1000 are held, the rest are counted as dropped, and that window is missing
    (not undercounted); the source stays connected."""
    from compactrig.plugins.sources import spike_buffer
    monkeypatch.setattr(spike_buffer, "MAX_SPIKES", 1000)
    peer = LslPeer("float32", 1)
    guard = GuardedSource(LslSource(stream_name=peer.name, units="1", latency_allowance_s=0.5, max_units=5000))
    try:
        guard.connect(pylsl.local_clock())
        time.sleep(0.3)
        onset = pylsl.local_clock()
        peer.push(onset + 0.06, 1)
        peer.push(onset + 0.07, 1)
        peer.send(f"flood 3000 100 {onset + 0.1}")
        guard.submit(Presentation(0, 0, "img0", onset), pylsl.local_clock())
        got = pump(guard, 1, seconds=8.0)
        assert len(got) == 1 and got[0].counts is None and "spikes dropped" in got[0].missing, got
        assert guard.source.dropped.counts["spike buffer full"] == 3000 - (1000 - 2), "exactly 1000 held"
        assert guard.connected and not [m for m in guard.messages() if "failed" in m]
    finally:
        command(peer.process, "quit")
        peer.process.wait(5)
        guard.close()


def test_a_count_stream_sending_nan_negative_or_infinite_counts_marks_those_images_missing():
    """One sample per shown image: NaN, -1 and inf counts make that image's response missing, with the
    value named; the honest images around them get their counts and the source stays connected."""
    peer = LslPeer("float32", 3)
    guard = GuardedSource(LslSource(stream_name=peer.name, mode="counts"))
    try:
        guard.connect(pylsl.local_clock())
        time.sleep(0.3)
        sent = [(4, 0, 7), ("nan", 1, 2), (0, -1, 0), (1, 2, "inf"), (1, 2, 3)]
        for order, values in enumerate(sent):
            onset = pylsl.local_clock()
            guard.submit(Presentation(order, 0, f"img{order}", onset), onset)
            peer.push(onset, *values)
            time.sleep(0.05)
        got = {r.order: r for r in pump(guard, len(sent))}
        assert sorted(got) == list(range(len(sent)))
        assert got[0].counts == {"0": 4.0, "1": 0.0, "2": 7.0} and got[4].counts == {"0": 1.0, "1": 2.0, "2": 3.0}
        for order, value in ((1, "nan"), (2, "-1"), (3, "inf")):
            assert got[order].counts is None and value in got[order].missing, got[order]
        assert guard.connected and not [m for m in guard.messages() if "failed" in m]
        assert guard.source.dropped.counts["count samples with a value that is not a count"] == 3
    finally:
        command(peer.process, "quit")
        peer.process.wait(5)
        guard.close()


def test_a_count_stream_of_text_does_not_fail_the_source():
    """A string count stream ("abc", even "3") is not counts: each image is missing with the reason,
    and the source is not torn down (no reconnect, no other window lost)."""
    peer = LslPeer("string", 2)
    guard = GuardedSource(LslSource(stream_name=peer.name, mode="counts"))
    try:
        guard.connect(pylsl.local_clock())
        time.sleep(0.3)
        for order, values in enumerate([("abc", "1"), ("3", "4")]):
            onset = pylsl.local_clock()
            guard.submit(Presentation(order, 0, f"img{order}", onset), onset)
            peer.push(onset, *values)
            time.sleep(0.05)
        got = sorted(pump(guard, 2), key=lambda r: r.order)
        assert [r.order for r in got] == [0, 1] and all(r.counts is None for r in got)
        assert "'abc'" in got[0].missing and "not a number" in got[1].missing
        assert guard.connected and not [m for m in guard.messages() if "failed" in m]
    finally:
        command(peer.process, "quit")
        peer.process.wait(5)
        guard.close()


# the Open Ephys ZMQ Interface plugin's framing, bad content ----------------------------------------
GARBAGE = ["garbage_json", "json_list", "huge_header", "too_many_parts", "wrong_length", "nan_values",
           "forged_samples", "forged_number", "flood_units"]
UNREADABLE_PER_ATTACK = {"garbage_json": 1, "json_list": 1, "huge_header": 1, "too_many_parts": 1,
                         "wrong_length": 2, "nan_values": 4}


def hostile_open_ephys(folder, **config):
    port, markers = free_port_pair(), f"markers-hostile-{os.getpid()}-{time.monotonic_ns()}"
    config = {"sync_line": 2, "latency_s": 0.04, **config}
    peer = start_open_ephys(folder, port, script="hostile_open_ephys.py", marker_stream=markers, **config)
    onsets = Onsets(markers)
    assert peer.stdout.readline().startswith("watching"), "the peer's photodiode follows the onsets"
    return peer, port, onsets


def attacks_sent(log_path) -> Counter:
    return Counter(line.split()[1] for line in log_path.read_text().splitlines() if line.startswith("attack "))


@pytest.mark.needs_display
def test_garbage_forged_numbers_and_a_unit_flood_between_honest_blocks_leave_every_window_exact(tmp_path):
    """Between the plugin's honest blocks: headers that are not JSON or not objects, a 100 kB header, five
    parts, wrong payload lengths, NaN/-5/1e400 fields, spikes and a block 10^9 samples ahead, a spike long
    past, a block at another rate, a message numbered 10^12 and 500 new electrodes at a time (max_units 10).
    Every window is counted, exactly as the peer fired its honest units; no restart, loss or fault is
    reported; each malformed message is counted; the flood is told once. Then the peer dies mid-window:
    that window is missing, the counted ones stay."""
    # 500 at a time: more would exceed the PUB socket's send queue (1000, as in the plugin) and be lost
    peer, port, onsets = hostile_open_ephys(tmp_path, attacks=GARBAGE, attack_every=2, flood_size=500)
    log_path = tmp_path / "open_ephys.log"
    source = OpenEphysSource(data_port=port, sync_line=2, heartbeat_s=0.2, max_units=10, timeout_s=3.0)
    guard = GuardedSource(source)
    try:
        guard.connect(pylsl.local_clock())
        pump_for(guard, 0.5)
        command(peer, "fire")  # the attacks begin once CompactRig listens
        got = []
        for _ in range(12):
            onsets.show(guard)
            got += pump_for(guard, 0.3)
        got += pump_for(guard, 1.0)
        assert sorted(r.order for r in got) == list(range(12)), [(r.order, r.missing) for r in got]
        assert all(r.counts is not None for r in got), [(r.order, r.missing) for r in got if r.counts is None]
        log = OpenEphysLog(log_path)
        pulsed = [r for r in got if r.order in log.pulses]  # a peer busy with a flood may miss a photodiode flip
        assert len(pulsed) >= 9, sorted(log.pulses)
        for response in pulsed:
            fired = log.counts(response.order)
            assert {u: response.counts[u] for u in log.units} == {u: fired[u] for u in log.units}, response.order
        assert sum(sum(log.counts(r.order).values()) for r in pulsed) > 0, "the honest units fired"
        assert len(source.units) == 10 and {"Electrode 1:1", "Electrode 2:0"} <= set(source.units)
        messages = guard.messages()
        assert guard.connected and not [m for m in messages if "failed" in m or "restarted" in m or "lost" in m], \
            messages
        assert len([m for m in messages if "max_units" in m]) == 1, messages
        command(peer, "stop")  # no more attacks: the counters can be compared with what was sent
        time.sleep(0.3)
        pump_for(guard, 0.3)
        sent = attacks_sent(log_path)
        assert set(sent) == set(GARBAGE), sent
        dropped = source.dropped.counts
        assert dropped["unreadable message from Open Ephys"] == \
            sum(n * UNREADABLE_PER_ATTACK.get(name, 0) for name, n in sent.items())
        assert dropped["sample number ahead of the clock (forged or corrupt)"] == 2 * sent["forged_samples"]
        assert dropped["spike or TTL behind data already complete (forged or corrupt sample number)"] == \
            sent["forged_samples"]
        assert dropped["data block with another sample rate mid-acquisition (forged or corrupt)"] == \
            sent["forged_samples"]
        assert dropped["message number far ahead of the last (forged or corrupt)"] == sent["forged_number"]
        command(peer, "start")
        pump_for(guard, 0.5)
        last = onsets.show(guard)
        os.kill(peer.pid, signal.SIGKILL)  # the plugin dies while the window is open
        peer.wait(5)
        lost = pump_for(guard, 5.0)
        assert [r.order for r in lost] == [last] and lost[0].counts is None
        assert all(r.counts is not None for r in got), "what was counted stays counted"
    finally:
        if peer.poll() is None:
            command(peer, "quit")
            peer.wait(5)
        guard.close()


@pytest.mark.needs_display
def test_an_oversized_message_is_refused_by_the_socket_and_costs_at_most_the_windows_it_cut(tmp_path):
    """Every second the peer sends a data message of 8 MB (the cap is 4 MiB per part): the socket refuses
    it (ZMQ drops the connection and reconnects at once), so it is never read whole nor taken for a
    message; the messages lost meanwhile make the windows they fell in missing, never miscounted;
    every other window is exact and no restart is seen."""
    peer, port, onsets = hostile_open_ephys(tmp_path, attacks=["oversized"], attack_every=30, oversized_mb=8)
    source = OpenEphysSource(data_port=port, sync_line=2, heartbeat_s=0.2, timeout_s=3.0)
    guard = GuardedSource(source)
    try:
        guard.connect(pylsl.local_clock())
        pump_for(guard, 0.5)
        command(peer, "fire")  # the attacks begin once CompactRig listens
        got = []
        for _ in range(12):
            onsets.show(guard)
            got += pump_for(guard, 0.3)
        got += pump_for(guard, 1.0)
        assert attacks_sent(tmp_path / "open_ephys.log")["oversized"] >= 3
        assert sorted(r.order for r in got) == list(range(12))
        log = OpenEphysLog(tmp_path / "open_ephys.log")
        counted = [r for r in got if r.counts is not None]
        for response in (r for r in counted if r.order in log.pulses):  # a busy peer may miss a photodiode flip
            fired = log.counts(response.order)
            assert {u: response.counts[u] for u in log.units} == {u: fired[u] for u in log.units}, response.order
        for response in got:
            assert response.counts is not None or "lost in transit" in response.missing, response
        assert len(counted) >= 6 and len([r for r in counted if r.order in log.pulses]) >= 5, \
            [(r.order, r.missing) for r in got]
        messages = guard.messages()
        assert guard.connected and not [m for m in messages if "failed" in m or "restarted" in m], messages
        assert sum(n for reason, n in source.dropped.counts.items() if "data connection dropped" in reason) >= 3
    finally:
        command(peer, "quit")
        peer.wait(5)
        guard.close()


@pytest.mark.needs_display
def test_forged_sample_numbers_do_not_move_the_arrival_clock(tmp_path):
    """No sync pulses: windows are placed by the arrival clock alone. Every 4 blocks the peer sends
    spikes and a data block 10^9 samples ahead, a spike at sample 5 and a block at another rate. Each
    window still counts, within the clock's latency (2 ms of buffering, 10 ms margin), what the peer fired,
    and every forged message is counted as refused."""
    peer, port, onsets = hostile_open_ephys(tmp_path, attacks=["forged_samples"], attack_every=4, latency_s=0.002,
                                            units=[["Electrode 1", 1, 300.0, 0.0]])
    source = OpenEphysSource(data_port=port, heartbeat_s=0.2)
    guard = GuardedSource(source)
    try:
        guard.connect(pylsl.local_clock())
        pump_for(guard, 0.5)
        command(peer, "fire")
        shown, got = [], []
        for order in range(10):
            shown.append(pylsl.local_clock())
            guard.submit(Presentation(order, 0, "img", shown[-1]), shown[-1])
            got += pump_for(guard, 0.2)
        got += pump_for(guard, 0.6)
        command(peer, "stop")
        time.sleep(0.2)
        pump_for(guard, 0.2)
        text = (tmp_path / "open_ephys.log").read_text().splitlines()
        t0 = float(next(line.split()[2] for line in text if line.startswith("epoch 0")))
        times = [t0 + sample / 30000 for sample, _ in OpenEphysLog(tmp_path / "open_ephys.log").spikes[0]]
        assert sorted(r.order for r in got) == list(range(10)) and all(r.counts is not None for r in got), got
        for response in got:
            onset = shown[response.order]
            sure = sum(onset + 0.05 + 0.01 <= t < onset + 0.15 - 0.01 for t in times)
            possible = sum(onset + 0.05 - 0.01 <= t < onset + 0.15 + 0.01 for t in times)
            assert sure <= response.counts["Electrode 1:1"] <= possible, (response.order, sure, possible)
        sent = attacks_sent(tmp_path / "open_ephys.log")["forged_samples"]
        assert sent >= 10
        assert source.dropped.counts["sample number ahead of the clock (forged or corrupt)"] == 2 * sent
        assert not [m for m in guard.messages() if "restarted" in m or "lost" in m or "failed" in m]
    finally:
        command(peer, "quit")
        peer.wait(5)
        guard.close()
