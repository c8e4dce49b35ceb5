"""The Open Ephys GUI's ZMQ Interface plugin, as the bytes it puts on the wire.

Written from the plugin's C++ source, open-ephys-plugins/zmq-interface @
38513917d6a7ee5791a47029d624a1b6110b01ee, Source/ZmqInterface.cpp:
- ``sendData``: envelope ``DATA\\0``; header ``message_num, type "data", content {stream, channel_num,
  channel_name, num_samples, sample_num, sample_rate}, data_size, timestamp``; payload float32 samples.
- ``sendSpikeEvent``: envelope ``EVENT\\0``; header ``message_num, type "spike", spike {stream,
  source_node, electrode, sample_num, num_channels, num_samples, sorted_id, threshold[]}, timestamp``
  (the fields under "spike": no "content", no "data_size"); payload the waveform (float32).
- ``sendEvent`` (TTL, from ``handleTTLEvent``): envelope ``EVENT\\0``; header ``message_num, type
  "event", content {stream, source_node, type, sample_num}, data_size, timestamp``; payload the
  event's 10 data bytes when data_size > 0.
- ``process``: each block's TTL events and spikes first (``checkForEvents``), then one DATA
  message per selected channel; ``startAcquisition`` sets ``messageNumber = 0`` (numbers start at 1).
- ``run``: the listening REP socket on data port + 1 answers "heartbeat received" (or "message
  correctly parsed" for events, "JSON message could not be read").
The header text is JUCE's ``JSON::toString(var)`` (multi-line): open-ephys/plugin-GUI @
7d8c513ae643d2d5cd37a7f95558343c8422873e, JuceLibraryCode/modules/juce_core/json/juce_JSON.cpp
(``JSONFormatter``, ``serialiseDouble``), containers/juce_DynamicObject.cpp (``writeAsJSON``),
text/juce_NewLine.h (``\\r\\n``). TTL payload layout: Source/Processors/Events/Event.cpp
(``TTLEvent::createTTLEvent``: line, state, uint64 word), EventChannel.h (``TTL = 3``).

Acquisition is simulated on ``pylsl.local_clock``: sample s of an acquisition started at t0 was
taken at t0 + s / RATE; a block is sent ``latency`` after its last sample (hardware buffering).
A photodiode on the rig is emulated from the rig's LSL onset markers: each onset toggles TTL line
``sync_line`` at the onset's sample plus ``display_latency``. With ``digital_input`` configured, the
acquisition board's digital inputs are wired to a strobed-word board (``strobed_word_arduino.py``, whose
log of strobes stands for the wires): each strobed word sets the data lines ``first_line``.. at its
strobe's sample plus ``wire_latency_s`` (one TTL event per line that changes, each carrying the word of
every line's state, as ``TTLEvent`` does), then the strobe line rises, and falls a sample later. The first
strobe of each word in ``lose`` is not recorded, and that of each word in ``repeat`` is recorded twice,
2 ms apart (a bouncing strobe). Commands on stdin: ``stop`` (end
acquisition; heartbeats still answered, as the plugin's thread keeps running), ``start`` (a new
acquisition: message and sample numbers from 0), ``fire`` (units configured to start after -1 s
begin firing now), ``quit``. Everything sent is logged:
``epoch E T0``, ``spike E SAMPLE ELECTRODE SORTED_ID``, ``ttl E SAMPLE LINE STATE ORDER``, ``code E SAMPLE
WORD`` (a strobe recorded), ``lostcode WORD`` (a word not recorded), and the
rig's abort markers as ``abort ORDER REASON`` (a recording system keeps them beside the spikes).
Usage: python open_ephys_zmq.py CONFIG.json
"""

from __future__ import annotations

import json
import struct
import sys
import threading
import time

import numpy as np
import pylsl
import zmq

NEWLINE = "\r\n"


def juce_double(value: float) -> str:
    """``serialiseDouble``: whole numbers keep one decimal; large and tiny ones go scientific."""
    magnitude = abs(value)
    if magnitude >= 1e6 or magnitude <= 1e-5:
        if value == 0:
            return "0.0"
        mantissa, exponent = f"{value:.15e}".split("e")
        mantissa = mantissa.rstrip("0")
        mantissa = mantissa + "0" if mantissa.endswith(".") else mantissa
        return f"{mantissa}e{int(exponent)}"
    if float(int(value)) == value:
        return f"{value:.1f}"
    return repr(value)


def juce_json(value, indent: int = 0) -> str:
    """``JSON::toString(var)`` with its default multi-line spacing (2-space indent, CRLF)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return juce_double(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        if not value:
            return "[]"
        inner = ("," + NEWLINE).join(" " * (indent + 2) + juce_json(v, indent + 2) for v in value)
        return "[" + NEWLINE + inner + NEWLINE + " " * indent + "]"
    inner = ("," + NEWLINE).join(" " * (indent + 2) + json.dumps(k) + ": " + juce_json(v, indent + 2)
                                 for k, v in value.items())
    return "{" + NEWLINE + inner + NEWLINE + " " * indent + "}"


class Plugin:
    def __init__(self, config: dict) -> None:
        self.config = config
        self.rate = float(config.get("sample_rate", 30000.0))
        self.block = int(config.get("block_samples", 1024))
        self.latency = float(config.get("latency_s", 0.02))
        self.stream = config.get("stream", "example_data")
        self.units = [tuple(u) for u in config["units"]]  # (electrode, sorted_id, rate_hz, starts_after_s)
        self.fired_at: float | None = None
        """Units with ``starts_after_s`` < 0 are silent until the ``fire`` command."""
        self.rng = np.random.default_rng(config.get("seed", 0))
        context = zmq.Context.instance()
        self.data = context.socket(zmq.PUB)
        self.data.bind(f"tcp://127.0.0.1:{config['data_port']}")
        self.listen = context.socket(zmq.REP)
        self.listen.bind(f"tcp://127.0.0.1:{config['data_port'] + 1}")
        self.log = open(config["log"], "a")
        self.started_at = pylsl.local_clock()
        self.acquiring = False
        self.epoch = -1
        self.message_number = 0
        self.onsets: list[tuple[float, int]] = []
        self.onset_lock = threading.Lock()
        self.ttl_state = 0
        self.lines = 0
        """Every digital line's state, for the event-code words."""
        self.wired: list[tuple[float, int]] = []
        """(strobe time, word) from the strobed-word board, not yet recorded."""
        self.stop = threading.Event()

    def start_acquisition(self) -> None:
        self.epoch += 1
        self.t0 = pylsl.local_clock()
        self.next_block = 0
        self.message_number = 0
        self.acquiring = True
        self.write(f"epoch {self.epoch} {self.t0:.9f}")

    def write(self, line: str) -> None:
        self.log.write(line + "\n")
        self.log.flush()

    def send(self, envelope: bytes, header: dict, payload: bytes | None) -> None:
        text = juce_json(header).encode("utf-8")
        parts = [envelope, text] + ([payload] if payload is not None else [])
        self.data.send_multipart(parts)

    def send_ttl(self, sample: int, line: int, state: int) -> None:
        self.message_number += 1
        word = (1 << line) if state else 0
        header = {"message_num": self.message_number, "type": "event",
                  "content": {"stream": self.stream, "source_node": 100, "type": 3, "sample_num": sample},
                  "data_size": 10, "timestamp": int(time.time() * 1000)}
        self.send(b"EVENT\0", header, struct.pack("<BBQ", line, state, word))

    def send_word(self, sample: int, word: int) -> None:
        """A word on the data lines, then the strobe's pulse: one TTL event per line that changes."""
        wiring = self.config["digital_input"]
        first, strobe = wiring["first_line"], wiring["strobe_line"]
        wanted = (self.lines & ~(0xFFFF << first)) | (word << first)
        for line in range(first, first + 16):
            if (wanted ^ self.lines) >> line & 1:
                self.lines ^= 1 << line
                self.send_ttl_word(sample, line, self.lines >> line & 1)
        self.lines |= 1 << strobe
        self.send_ttl_word(sample, strobe, 1)
        self.lines &= ~(1 << strobe)
        self.send_ttl_word(sample + 1, strobe, 0)
        self.write(f"code {self.epoch} {sample} {word}")

    def send_ttl_word(self, sample: int, line: int, state: int) -> None:
        self.message_number += 1
        header = {"message_num": self.message_number, "type": "event",
                  "content": {"stream": self.stream, "source_node": 100, "type": 3, "sample_num": sample},
                  "data_size": 10, "timestamp": int(time.time() * 1000)}
        self.send(b"EVENT\0", header, struct.pack("<BBQ", line, state, self.lines))

    def watch_board(self) -> None:
        """Follow the board's log: each strobe is a word on the wires."""
        wiring = self.config.get("digital_input")
        if not wiring:
            return
        position, lose, repeat = 0, set(wiring.get("lose", [])), set(wiring.get("repeat", []))
        while not self.stop.is_set():
            try:
                with open(wiring["board_log"]) as log:
                    log.seek(position)
                    text = log.read()
            except FileNotFoundError:
                text = ""
            complete = text[:text.rfind("\n") + 1]
            position += len(complete)
            for line in complete.splitlines():
                words = line.split()
                if words[0] != "word":
                    continue
                when, word = float(words[2]) + wiring.get("wire_latency_s", 0.0), int(words[1])
                if word in lose:
                    lose.discard(word)
                    self.write(f"lostcode {word}")
                    continue
                with self.onset_lock:
                    self.wired.append((when, word))
                    if word in repeat:
                        self.wired.append((when + 0.002, word))
                repeat.discard(word)
            time.sleep(0.005)

    def send_spike(self, sample: int, electrode: str, sorted_id: int) -> None:
        self.message_number += 1
        header = {"message_num": self.message_number, "type": "spike",
                  "spike": {"stream": self.stream, "source_node": 104, "electrode": electrode, "sample_num": sample,
                            "num_channels": 4, "num_samples": 40, "sorted_id": sorted_id,
                            "threshold": [-50.0, -50.0, -52.5, -48.25]},
                  "timestamp": int(time.time() * 1000)}
        self.send(b"EVENT\0", header, np.zeros(4 * 40, dtype=np.float32).tobytes())

    def send_data(self, first: int, count: int) -> None:
        for channel in range(2):
            self.message_number += 1
            header = {"message_num": self.message_number, "type": "data",
                      "content": {"stream": self.stream, "channel_num": channel, "channel_name": f"CH{channel + 1}",
                                  "num_samples": count, "sample_num": first, "sample_rate": self.rate},
                      "data_size": count * 4, "timestamp": int(time.time() * 1000)}
            self.send(b"DATA\0", header, self.rng.normal(0, 10, count).astype(np.float32).tobytes())

    def process_block(self) -> None:
        """One block: its TTLs and spikes (in sample order), then its data, as ``process`` does."""
        first, count = self.next_block, self.block
        self.next_block += count
        events = []
        sync_line = self.config.get("sync_line")
        if sync_line is not None:
            with self.onset_lock:
                due = [(t, o) for t, o in self.onsets
                       if first <= round((t + self.config.get("display_latency_s", 0.008) - self.t0) * self.rate)
                       < first + count]
            for t, order in due:
                sample = round((t + self.config.get("display_latency_s", 0.008) - self.t0) * self.rate)
                events.append((sample, "ttl", order))
        with self.onset_lock:
            words = [(round((t - self.t0) * self.rate), w) for t, w in self.wired]
            self.wired = [(t, w) for (t, w), (sample, _) in zip(self.wired, words) if sample >= first + count]
        events += [(max(sample, first), "word", word) for sample, word in words if sample < first + count]
        for electrode, sorted_id, rate, after in self.units:
            begins = self.started_at + after if after >= 0 else self.fired_at
            if begins is None or self.t0 + (first + count) / self.rate < begins:
                continue
            n = self.rng.poisson(rate * count / self.rate)
            for sample in sorted(self.rng.integers(first, first + count, n)):
                if self.t0 + sample / self.rate >= begins:
                    events.append((int(sample), "spike", (electrode, sorted_id)))
        for sample, kind, what in sorted(events, key=lambda e: e[0]):
            if kind == "word":
                self.send_word(sample, what)
            elif kind == "ttl":
                self.ttl_state ^= 1
                self.send_ttl(sample, sync_line, self.ttl_state)
                self.write(f"ttl {self.epoch} {sample} {sync_line} {self.ttl_state} {what}")
            else:
                self.send_spike(sample, *what)
                self.write(f"spike {self.epoch} {sample} {what[0].replace(' ', '_')} {what[1]}")
        self.send_data(first, count)

    def serve_heartbeats(self) -> None:
        while not self.stop.is_set():
            if self.listen.poll(100, zmq.POLLIN):
                text = self.listen.recv().decode("utf-8", errors="replace")
                try:
                    message = json.loads(text)
                    answer = "message correctly parsed" if message.get("type") == "event" else "heartbeat received"
                except ValueError:
                    answer = "JSON message could not be read"
                self.listen.send(answer.encode())

    def watch_markers(self) -> None:
        name = self.config.get("marker_stream")
        if not name:
            return
        inlet = None
        while not self.stop.is_set():
            if inlet is None:
                found = pylsl.resolve_byprop("name", name, 1, 0.5)
                if not found:
                    continue
                inlet = pylsl.StreamInlet(found[0], recover=True)
                inlet.open_stream(5.0)
                correction = inlet.time_correction(5.0)  # the first one takes a few round trips
                print("watching markers", flush=True)
            sample, stamp = inlet.pull_sample(timeout=0.1)
            if sample is not None:
                marker = json.loads(sample[0])
                if marker.get("event") == "onset":
                    with self.onset_lock:
                        self.onsets.append((stamp + correction, marker["order"]))
                elif marker.get("event") == "abort":
                    self.write(f"abort {marker['order']} {marker['reason'].replace(' ', '_')}")

    def read_commands(self) -> None:
        for line in sys.stdin:
            word = line.strip()
            if word == "stop":
                self.acquiring = False
            elif word == "start":
                self.start_acquisition()
            elif word == "fire":
                self.fired_at = pylsl.local_clock()
            elif word == "quit":
                break
        self.stop.set()

    def run(self) -> None:
        threading.Thread(target=self.serve_heartbeats, daemon=True).start()
        threading.Thread(target=self.watch_markers, daemon=True).start()
        threading.Thread(target=self.watch_board, daemon=True).start()
        threading.Thread(target=self.read_commands, daemon=True).start()
        self.start_acquisition()
        print("ready", flush=True)
        while not self.stop.is_set():
            if self.acquiring and pylsl.local_clock() >= self.t0 + (self.next_block + self.block) / self.rate \
                    + self.latency:
                self.process_block()
            else:
                time.sleep(0.002)


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        Plugin(json.load(handle)).run()
