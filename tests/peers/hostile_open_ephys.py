"""The Open Ephys ZMQ Interface plugin's framing with bad content between honest blocks.

The honest part is ``open_ephys_zmq.Plugin`` (written from open-ephys-plugins/zmq-interface @
38513917d6a7ee5791a47029d624a1b6110b01ee, Source/ZmqInterface.cpp: ``sendData``, ``sendSpikeEvent``,
``sendEvent``, ``process``); every honest spike and sync pulse is logged as there. After every
``attack_every``-th block from the ``fire`` command on, this peer sends the next attack of ``attacks``
(in turn; ``stop`` ends them with the acquisition), on the same
PUB socket and in the same multi-part framing (envelope ``DATA\\0``/``EVENT\\0``, JUCE JSON header,
payload):
- ``garbage_json``: a header that is not JSON; ``json_list``: a header that is a JSON list;
  ``huge_header``: a 100 kB header; ``too_many_parts``: five parts;
- ``wrong_length``: a data header for 1024 samples with a 10-byte payload; a TTL whose payload is
  shorter than its ``data_size``;
- ``nan_values``: a spike with sample_num NaN, a data block with sample_rate NaN, a spike with
  sample_num -5, message_num 1e400 (JSON numbers Python reads as inf);
- ``forged_samples``: well-formed spikes and a data block 10^9 samples ahead, a spike at sample 5
  (long past), a data block at another sample rate; these take message numbers as the plugin would;
- ``forged_number``: a spike numbered 10^12;
- ``flood_units``: ``flood_size`` spikes of as many new electrodes (``Flood K``), numbered, in the
  current block (logged as ``flood E SAMPLE ELECTRODE 0``);
- ``oversized``: a data message whose payload is ``oversized_mb`` MB.
Malformed messages do not take message numbers (they are not the plugin's). Each attack is logged
as ``attack NAME``. Usage: python hostile_open_ephys.py CONFIG.json
"""

from __future__ import annotations

import json
import sys
import time

from open_ephys_zmq import Plugin, juce_json


class HostilePlugin(Plugin):
    def __init__(self, config: dict) -> None:
        super().__init__(config)
        self.attacks = list(config.get("attacks", []))
        self.every = int(config.get("attack_every", 3))
        self.blocks = 0

    def process_block(self) -> None:
        super().process_block()
        self.blocks += 1
        if self.attacks and self.fired_at is not None and self.blocks % self.every == 0:
            name = self.attacks[(self.blocks // self.every - 1) % len(self.attacks)]
            getattr(self, f"attack_{name}")()
            self.write(f"attack {name}")

    def raw(self, envelope: bytes, header: bytes, *payload: bytes) -> None:
        self.data.send_multipart([envelope, header, *payload])

    def numbered(self) -> int:
        self.message_number += 1
        return self.message_number

    def spike_header(self, number, sample, electrode: str = "Electrode 1", sorted_id: int = 1) -> dict:
        return {"message_num": number, "type": "spike",
                "spike": {"stream": self.stream, "source_node": 104, "electrode": electrode, "sample_num": sample,
                          "num_channels": 4, "num_samples": 40, "sorted_id": sorted_id,
                          "threshold": [-50.0, -50.0, -52.5, -48.25]},
                "timestamp": int(time.time() * 1000)}

    def data_header(self, number, sample, count: int, rate) -> dict:
        return {"message_num": number, "type": "data",
                "content": {"stream": self.stream, "channel_num": 0, "channel_name": "CH1", "num_samples": count,
                            "sample_num": sample, "sample_rate": rate},
                "data_size": count * 4, "timestamp": int(time.time() * 1000)}

    def attack_garbage_json(self) -> None:
        self.raw(b"EVENT\0", b"{\r\n  \"message_num\": 12, \"type\": \"spike\", \"spike\": {", b"\0" * 640)

    def attack_json_list(self) -> None:
        self.raw(b"EVENT\0", b"[1, 2, 3]", b"")

    def attack_huge_header(self) -> None:
        self.raw(b"EVENT\0", juce_json({"type": "spike", "pad": "x" * 100_000}).encode())

    def attack_too_many_parts(self) -> None:
        self.raw(b"DATA\0", juce_json(self.data_header(self.message_number, self.next_block, 4, self.rate)).encode(),
                 b"\0" * 16, b"more", b"more")

    def attack_wrong_length(self) -> None:
        header = self.data_header(self.message_number, self.next_block, 1024, self.rate)
        self.raw(b"DATA\0", juce_json(header).encode(), b"\0" * 10)
        ttl = {"message_num": self.message_number, "type": "event",
               "content": {"stream": self.stream, "source_node": 100, "type": 3, "sample_num": self.next_block},
               "data_size": 10, "timestamp": int(time.time() * 1000)}
        self.raw(b"EVENT\0", juce_json(ttl).encode(), b"\x02")

    def attack_nan_values(self) -> None:
        text = juce_json(self.spike_header(self.message_number, 0)).replace('"sample_num": 0', '"sample_num": NaN')
        self.raw(b"EVENT\0", text.encode(), b"\0" * 640)
        text = juce_json(self.data_header(self.message_number, self.next_block, 4, 1.5)).replace("1.5", "NaN")
        self.raw(b"DATA\0", text.encode(), b"\0" * 16)
        self.raw(b"EVENT\0", juce_json(self.spike_header(self.message_number, -5)).encode(), b"\0" * 640)
        text = juce_json(self.spike_header(7, self.next_block)).replace('"message_num": 7', '"message_num": 1e400')
        self.raw(b"EVENT\0", text.encode(), b"\0" * 640)

    def attack_forged_samples(self) -> None:
        ahead = self.next_block + 10 ** 9
        self.raw(b"EVENT\0", juce_json(self.spike_header(self.numbered(), ahead)).encode(), b"\0" * 640)
        self.raw(b"DATA\0", juce_json(self.data_header(self.numbered(), ahead, 1024, self.rate)).encode(),
                 b"\0" * 4096)
        self.raw(b"EVENT\0", juce_json(self.spike_header(self.numbered(), 5)).encode(), b"\0" * 640)
        self.raw(b"DATA\0", juce_json(self.data_header(self.numbered(), self.next_block, 4, 1e6)).encode(),
                 b"\0" * 16)

    def attack_forged_number(self) -> None:
        self.raw(b"EVENT\0", juce_json(self.spike_header(10 ** 12, self.next_block)).encode(), b"\0" * 640)

    def attack_flood_units(self) -> None:
        sample = self.next_block - 1
        for k in range(int(self.config.get("flood_size", 3000))):
            header = self.spike_header(self.numbered(), sample, f"Flood {k}", 0)
            self.raw(b"EVENT\0", juce_json(header).encode(), b"\0" * 640)
            self.write(f"flood {self.epoch} {sample} Flood_{k} 0")

    def attack_oversized(self) -> None:
        size = int(float(self.config.get("oversized_mb", 8)) * 1024 * 1024)
        header = self.data_header(self.message_number, self.next_block, size // 4, self.rate)
        self.raw(b"DATA\0", juce_json(header).encode(), bytes(size))


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        HostilePlugin(json.load(handle)).run()
