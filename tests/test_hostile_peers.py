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

import pylsl
import pytest
from compactrig.plugins.gates import LslGate
from peer_processes import command, start_peer


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

