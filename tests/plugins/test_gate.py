"""The LSL fixation gate against an eye tracker in its own process (pylsl only, ``tests/peers/eye_tracker.py``,
written from pylsl's examples @ e146d7d4ca2b5c6c3c274ea7fa4f23f851bed09d: SendData.py, SendDataAdvanced.py)."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pylsl
import pytest

from compactrig.plugins.gates import LslGate

from support.peer_processes import command, start_peer


def tracker(name: str, state: int = 1):
    return start_peer("eye_tracker.py", name, "500", str(state))


def wait_until(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.002)
    assert condition()


@pytest.fixture()
def tracked():
    """A running tracker (``tracked["peer"]``, replaceable by a test) and a gate on its stream."""
    name = f"fixation-{uuid.uuid4().hex[:8]}"
    running = {"name": name, "peer": tracker(name)}
    gate = LslGate(stream_name=name)
    gate.connect()
    yield running, gate
    if running["peer"].poll() is None:
        command(running["peer"], "quit")
        running["peer"].wait(5)
    gate.close()


def test_the_gate_closes_within_a_tenth_of_a_second_of_the_trackers_death_and_reopens_on_its_return(tracked):
    running, gate = tracked
    peer = running["peer"]
    wait_until(lambda: gate.may_start(pylsl.local_clock()))
    time.sleep(0.3)
    assert gate.may_start(pylsl.local_clock())
    killed_at = pylsl.local_clock()
    os.kill(peer.pid, signal.SIGKILL)
    peer.wait(5)
    wait_until(lambda: gate.must_abort(pylsl.local_clock()), 1.0)
    closed_at = pylsl.local_clock()
    assert closed_at - killed_at <= 0.1 + 0.01, "fails closed within stale_after_s of the last sample"
    assert "eye tracker silent" in gate.break_reason
    assert killed_at - 0.01 <= gate.break_time(killed_at - 1.0, closed_at) <= killed_at + 0.1
    time.sleep(0.5)
    assert not gate.may_start(pylsl.local_clock()), "stays closed while the tracker is dead"
    running["peer"] = tracker(running["name"])  # the same source id: the inlet recovers by itself
    wait_until(lambda: gate.may_start(pylsl.local_clock()), 15.0)


def test_a_break_between_polls_is_seen_and_dated_by_the_trackers_time_stamps(tracked):
    running, gate = tracked
    peer = running["peer"]
    wait_until(lambda: gate.may_start(pylsl.local_clock()))
    since = pylsl.local_clock()
    command(peer, "break")
    time.sleep(0.02)
    command(peer, "fix")
    changes = [peer.stdout.readline().split() for _ in range(2)]
    assert [c[1] for c in changes] == ["0", "1"]
    time.sleep(0.3)  # the runner polls late: fixation is already back
    now = pylsl.local_clock()
    assert gate.may_start(now), "fixation is held again now"
    assert gate.break_time(since, now) == pytest.approx(float(changes[0][2]), abs=1e-3), \
        "the break is dated by the first sample that carried it (to within LSL's clock correction)"
    assert gate.break_reason == "fixation break"
    assert gate.break_time(float(changes[1][2]) + 0.001, now) is None
