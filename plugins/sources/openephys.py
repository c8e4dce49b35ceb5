"""Spikes from the Open Ephys GUI's ZMQ Interface plugin.

The plugin publishes multi-part messages on its data port (PUB): an envelope naming
the kind (``data``, ``event`` or ``spike``), a JSON header and the payload. Spike headers
carry ``electrode``, ``sorted_id`` and ``sample_num``; a unit is ``ELECTRODE:SORTED_ID``.
The plugin lists a client only while it receives heartbeats on its listening port (data
port + 1, REQ/REP): ``{"application", "uuid", "type": "heartbeat"}`` every 2 s.

Sample numbers are put on the LSL clock by the smallest observed lag between a spike's
sample time and its arrival (network delay bounds it from below), refreshed continuously;
on a local network that is accurate to a few milliseconds, well inside a 100 ms window.
A heartbeat that stays unanswered raises, so the guard reconnects with backoff.
"""

from __future__ import annotations

import json
import uuid
from collections import deque
from typing import Any

import zmq

from plugins.sources.base import WINDOW_OPTIONS, Option, Presentation, Response, ResponseSource
from plugins.sources.spike_buffer import SpikeBuffer

LAG_MEMORY = 500
"""Recent spikes whose arrival lag estimates the sample-clock offset."""


class OpenEphysSource(ResponseSource):
    name = "openephys"
    description = "spikes from the Open Ephys GUI's ZMQ Interface plugin"
    options = WINDOW_OPTIONS + (
        Option("host", str, "127.0.0.1", "computer running the Open Ephys GUI"),
        Option("data_port", int, 5556, "the plugin's data port (heartbeats go to data_port + 1)"),
        Option("sample_rate", float, 30000.0, "sampling rate of the spike stream, Hz"),
        Option("units", str, "", "comma-separated ELECTRODE:SORTED_ID units (default: those seen)"),
        Option("heartbeat_s", float, 2.0, "heartbeat interval, s"),
        Option("latency_allowance_s", float, 0.1, "wait this long after a window for its spikes, s"),
    )

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        units = [u.strip() for u in self.settings["units"].split(",") if u.strip()]
        self._spikes = SpikeBuffer(self.window, self.settings["latency_allowance_s"], units)
        self._lags: deque[float] = deque(maxlen=LAG_MEMORY)
        self._identity = str(uuid.uuid4())
        self._context = zmq.Context.instance()
        self._data = self._beats = None
        self._beat_sent_at: float | None = None
        self._last_answer = float("-inf")

    @property
    def units(self) -> list[str]:
        return list(self._spikes.units)

    def connect(self) -> None:
        host, port = self.settings["host"], self.settings["data_port"]
        self._data = self._context.socket(zmq.SUB)
        self._data.setsockopt(zmq.LINGER, 0)
        self._data.connect(f"tcp://{host}:{port}")
        self._data.setsockopt(zmq.SUBSCRIBE, b"")
        self._beats = self._context.socket(zmq.REQ)
        self._beats.setsockopt(zmq.LINGER, 0)
        self._beats.connect(f"tcp://{host}:{port + 1}")
        self._beat_sent_at, self._last_answer = None, float("-inf")

    def _heartbeat(self, now: float) -> None:
        """One heartbeat in flight at a time (REQ/REP); an answer late by 3 intervals is a fault."""
        interval = self.settings["heartbeat_s"]
        if self._beat_sent_at is not None:
            if self._beats.poll(0, zmq.POLLIN):
                self._beats.recv()
                self._beat_sent_at, self._last_answer = None, now
            elif now - self._beat_sent_at > 3 * interval:
                raise ConnectionError(f"Open Ephys at {self.settings['host']}:{self.settings['data_port'] + 1} "
                                      f"has not answered a heartbeat for {3 * interval:g} s")
            return
        if now - self._last_answer >= interval:
            message = {"application": "CompactRig", "uuid": self._identity, "type": "heartbeat"}
            self._beats.send(json.dumps(message).encode())
            self._beat_sent_at = now

    def _receive(self, now: float) -> None:
        while self._data.poll(0, zmq.POLLIN):
            frames = self._data.recv_multipart()
            if len(frames) < 2:
                continue
            header = json.loads(frames[1].decode())
            kind = header.get("type") or frames[0].decode(errors="replace")
            if "spike" not in kind:
                continue
            content = header.get("content", header)
            sample_time = content["sample_num"] / self.settings["sample_rate"]
            self._lags.append(now - sample_time)
            unit = f"{content.get('electrode', '?')}:{content.get('sorted_id', 0)}"
            self._spikes.add(unit, sample_time + min(self._lags))

    def submit(self, presentation: Presentation) -> None:
        self._spikes.pending.append(presentation)

    def collect(self, now: float) -> list[Response]:
        self._heartbeat(now)
        self._receive(now)
        return self._spikes.ready(now)

    def close(self) -> None:
        for socket in (self._data, self._beats):
            if socket is not None:
                socket.close(0)
        self._data = self._beats = None
