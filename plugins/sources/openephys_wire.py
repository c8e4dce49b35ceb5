"""What the Open Ephys ZMQ Interface plugin puts on its data socket, parsed.

From the plugin's code (open-ephys-plugins/zmq-interface, Source/ZmqInterface.cpp): multi-part
messages of an envelope (``DATA\\0`` or ``EVENT\\0``), a JSON header written by JUCE (multi-line,
CRLF) and a payload. Data headers keep their fields under ``content`` (``sample_num`` is the
block's first sample, ``sample_rate`` the stream's rate); TTL events also under ``content``, with
10 payload bytes (line, state, uint64 word); spikes keep theirs under ``spike`` (``sample_num`` is
the peak sample). ``message_num`` counts from 1 again at each acquisition start.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

TTL_EVENT_TYPE = 3
"""``EventChannel::TTL`` in the Open Ephys GUI."""


class WireError(ValueError):
    """A message that cannot be read; the text names what was wrong with it."""


@dataclass(frozen=True)
class DataBlock:
    message_num: int
    sample_num: int
    num_samples: int
    sample_rate: float

    @property
    def end_sample(self) -> int:
        """One past the block's last sample: everything before it has been sent."""
        return self.sample_num + self.num_samples


@dataclass(frozen=True)
class TtlEvent:
    message_num: int
    sample_num: int
    line: int
    state: bool


@dataclass(frozen=True)
class Spike:
    message_num: int
    sample_num: int
    unit: str
    """``ELECTRODE:SORTED_ID``, e.g. ``Tetrode 1:2``."""


Message = DataBlock | TtlEvent | Spike


def parse(frames: list[bytes]) -> Message | None:
    """One multi-part message; None for kinds CompactRig does not use (parameters, text events)."""
    if len(frames) < 2:
        raise WireError(f"a message of {len(frames)} part(s); the plugin sends an envelope, a header and data")
    try:
        header = json.loads(frames[1].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise WireError(f"a header that is not JSON ({error}); a stream name with non-ASCII characters "
                        "is cut short by the plugin: rename the stream") from None
    kind = header.get("type")
    try:
        number = int(header.get("message_num", 0))
        if kind == "spike":
            spike = header["spike"]
            return Spike(number, int(spike["sample_num"]), f"{spike['electrode']}:{int(spike.get('sorted_id', 0))}")
        if kind == "data":
            content = header["content"]
            return DataBlock(number, int(content["sample_num"]), int(content["num_samples"]),
                             float(content["sample_rate"]))
        if kind == "event":
            content = header["content"]
            if int(content.get("type", -1)) != TTL_EVENT_TYPE or int(header.get("data_size", 0)) < 2 \
                    or len(frames) < 3:
                return None
            line, state = struct.unpack_from("<BB", frames[2])
            return TtlEvent(number, int(content["sample_num"]), line, state == 1)
    except (KeyError, TypeError, ValueError, struct.error) as error:
        raise WireError(f"a {kind} message without {error}") from None
    return None
