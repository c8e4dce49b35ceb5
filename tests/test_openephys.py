"""The Open Ephys source against a loopback ZMQ publisher speaking the ZMQ Interface format."""

from __future__ import annotations

import json
import threading
import time

import pylsl
import pytest
import zmq

from plugins.sources.base import Presentation
from plugins.sources.guard import GuardedSource
from plugins.sources.openephys import OpenEphysSource

RATE = 30000.0


class FakeOpenEphys:
    """PUB on the data port, REP on data port + 1 answering heartbeats, as the plugin does."""

    def __init__(self, port: int | None = None) -> None:
        context = zmq.Context.instance()
        self.publisher = context.socket(zmq.PUB)
        self.publisher.setsockopt(zmq.LINGER, 0)
        self.port = port or self.publisher.bind_to_random_port("tcp://127.0.0.1", 20000, 40000, 200)
        if port:
            self.publisher.bind(f"tcp://127.0.0.1:{port}")
        self.replier = context.socket(zmq.REP)
        self.replier.setsockopt(zmq.LINGER, 0)
        self.replier.bind(f"tcp://127.0.0.1:{self.port + 1}")
        self.heartbeats: list[dict] = []
        self.answering = True
        self.zero = pylsl.local_clock()  # the acquisition clock starts here
        self.message_num = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            if self.answering and self.replier.poll(20, zmq.POLLIN):
                self.heartbeats.append(json.loads(self.replier.recv().decode()))
                self.replier.send(b"heartbeat received")
            else:
                time.sleep(0.02)

    def spike(self, electrode: str, sorted_id: int, at: float) -> None:
        """Publish one spike that happened at LSL time ``at`` (sample numbers count from ``zero``)."""
        header = {"message_num": self.message_num, "type": "spike",
                  "content": {"stream": "example", "source_node": 104, "electrode": electrode,
                              "sample_num": int(round((at - self.zero) * RATE)), "num_channels": 4,
                              "num_samples": 40, "sorted_id": sorted_id, "threshold": [-50.0] * 4},
                  "data_size": 4 * 40 * 4}
        self.message_num += 1
        self.publisher.send_multipart([b"spike", json.dumps(header).encode(), bytes(4 * 40 * 4)])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)
        self.publisher.close(0)
        self.replier.close(0)


def pump(guard: GuardedSource, until: float) -> list:
    got = []
    while pylsl.local_clock() < until:
        got += guard.collect(pylsl.local_clock())
        time.sleep(0.005)
    return got


@pytest.fixture()
def fake():
    server = FakeOpenEphys()
    yield server
    server.close()


def test_spikes_are_counted_per_onset_window_and_heartbeats_sent(fake):
    guard = GuardedSource(OpenEphysSource(data_port=fake.port, heartbeat_s=0.2, latency_allowance_s=0.1))
    guard.connect(pylsl.local_clock())
    pump(guard, pylsl.local_clock() + 0.5)  # subscription settles, heartbeats flow
    onset = pylsl.local_clock()
    guard.submit(Presentation(0, 0, "image0001", onset), onset)
    plan = [("Electrode 1", 0, 0.03), ("Electrode 1", 0, 0.06), ("Electrode 1", 1, 0.1),
            ("Electrode 2", 0, 0.12), ("Electrode 1", 0, 0.2)]
    for electrode, sorted_id, delay in plan:
        while pylsl.local_clock() < onset + delay:
            guard.collect(pylsl.local_clock())
            time.sleep(0.002)
        fake.spike(electrode, sorted_id, onset + delay)
    got = pump(guard, onset + 0.6)
    assert len(got) == 1
    assert got[0].counts == {"Electrode 1:0": 1.0, "Electrode 1:1": 1.0, "Electrode 2:0": 1.0}
    assert len(fake.heartbeats) >= 2
    assert fake.heartbeats[0]["type"] == "heartbeat" and fake.heartbeats[0]["application"] == "CompactRig"
    guard.close()


def test_unanswered_heartbeats_mark_missing_then_reconnect(fake):
    guard = GuardedSource(OpenEphysSource(data_port=fake.port, heartbeat_s=0.1, timeout_s=5.0,
                                          latency_allowance_s=2.0))
    guard.connect(pylsl.local_clock())
    pump(guard, pylsl.local_clock() + 0.3)
    fake.answering = False
    now = pylsl.local_clock()
    guard.submit(Presentation(0, 0, "image0001", now), now)
    got = pump(guard, now + 1.0)
    assert got and got[0].counts is None and "has not answered a heartbeat" in got[0].missing
    assert any("retrying" in m for m in guard.messages())
    fake.answering = True
    pump(guard, pylsl.local_clock() + 3.0)
    answered = len(fake.heartbeats)
    pump(guard, pylsl.local_clock() + 0.5)
    assert guard.connected and len(fake.heartbeats) > answered, "heartbeats flow again"
    guard.close()


def test_a_publisher_that_stalls_times_out_to_missing(fake):
    guard = GuardedSource(OpenEphysSource(data_port=fake.port, heartbeat_s=0.2, timeout_s=0.3,
                                          latency_allowance_s=5.0))
    guard.connect(pylsl.local_clock())
    now = pylsl.local_clock()
    guard.submit(Presentation(0, 0, "image0001", now), now)
    got = pump(guard, now + 1.0)
    assert got[0].counts is None and "no response within 0.3 s" in got[0].missing


def test_a_malformed_frame_is_a_fault_not_a_crash(fake):
    guard = GuardedSource(OpenEphysSource(data_port=fake.port, heartbeat_s=0.2, latency_allowance_s=2.0))
    guard.connect(pylsl.local_clock())
    pump(guard, pylsl.local_clock() + 0.4)
    now = pylsl.local_clock()
    guard.submit(Presentation(0, 0, "image0001", now), now)
    fake.publisher.send_multipart([b"spike", b"{not json", b""])
    got = pump(guard, now + 0.5)
    assert got and got[0].counts is None and "source failed" in got[0].missing
    assert any("collect failed" in m for m in guard.messages())
    pump(guard, pylsl.local_clock() + 1.5)
    assert guard.connected, "reconnected after the backoff"
    guard.close()
