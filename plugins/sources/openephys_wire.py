"""What the Open Ephys ZMQ Interface plugin puts on its data socket, parsed.

From the plugin's code (open-ephys-plugins/zmq-interface, Source/ZmqInterface.cpp): multi-part
messages of an envelope (``DATA\\0`` or ``EVENT\\0``), a JSON header written by JUCE (multi-line,
CRLF) and a payload. Data headers keep their fields under ``content`` (``sample_num`` is the
block's first sample, ``sample_rate`` the stream's rate); TTL events also under ``content``, with
10 payload bytes (line, state, and the uint64 word: every line's state after the event, which carries the
rig's event codes on a digital input); spikes keep theirs under ``spike`` (``sample_num`` is
the peak sample). ``message_num`` counts from 1 again at each acquisition start.

Every field CompactRig uses is checked for its kind and range (whole numbers >= 0, a finite
positive rate, a short electrode name, payload lengths matching the header); anything else is a
``WireError`` naming the field, never a crash. Sizes are capped: ``MAX_FRAME_BYTES`` per part (the
receiving socket refuses larger ones) and ``MAX_HEADER_BYTES`` for the JSON header.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass

TTL_EVENT_TYPE = 3
"""``EventChannel::TTL`` in the Open Ephys GUI."""
MAX_FRAME_BYTES = 4 * 1024 * 1024
"""Largest message part accepted (ZMQ's MAXMSGSIZE on the data socket): the plugin's largest, a
block of one channel or a spike's waveform, is tens of kB."""
MAX_HEADER_BYTES = 64 * 1024
"""Largest JSON header read (the plugin's are under 1 kB)."""
MAX_BLOCK_SAMPLES = 1 << 20
MAX_ELECTRODE_CHARS = 200


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
    word: int | None = None
    """The state of all the stream's lines after the event (the payload's uint64); None in a 2-byte payload."""


@dataclass(frozen=True)
class Spike:
    message_num: int
    sample_num: int
    unit: str
    """``ELECTRODE:SORTED_ID``, e.g. ``Tetrode 1:2``."""


Message = DataBlock | TtlEvent | Spike


def _whole(fields: dict, key: str, default: int | None = None) -> int:
    """A whole number >= 0 (JSON integers only, as JUCE writes them)."""
    value = fields.get(key, default) if default is not None else fields[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise WireError(f"{key} = {str(value)[:40]!r}: not a whole number >= 0")
    return value


def parse(frames: list[bytes]) -> Message | None:
    """One multi-part message; None for kinds CompactRig does not use (parameters, text events)."""
    if not 2 <= len(frames) <= 3:
        raise WireError(f"a message of {len(frames)} part(s); the plugin sends an envelope, a header and data")
    if len(frames[1]) > MAX_HEADER_BYTES:
        raise WireError(f"a header of {len(frames[1])} bytes (at most {MAX_HEADER_BYTES} are read)")
    try:
        header = json.loads(frames[1].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise WireError(f"a header that is not JSON ({str(error)[:80]}); a stream name with non-ASCII characters "
                        "is cut short by the plugin: rename the stream") from None
    if not isinstance(header, dict):
        raise WireError(f"a header that is a JSON {type(header).__name__}, not an object")
    kind = header.get("type")
    try:
        if kind == "spike":
            spike = header["spike"]
            electrode = spike["electrode"]
            if not isinstance(electrode, str) or not 0 < len(electrode) <= MAX_ELECTRODE_CHARS \
                    or not electrode.isprintable():
                raise WireError(f"electrode = {str(electrode)[:40]!r}: not a short name")
            return Spike(_whole(header, "message_num"), _whole(spike, "sample_num"),
                         f"{electrode}:{_whole(spike, 'sorted_id', 0)}")
        if kind == "data":
            content = header["content"]
            samples, rate = _whole(content, "num_samples"), content["sample_rate"]
            if not 0 < samples <= MAX_BLOCK_SAMPLES:
                raise WireError(f"num_samples = {samples}: not 1 to {MAX_BLOCK_SAMPLES}")
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) \
                    or not 0 < rate <= 1e7:
                raise WireError(f"sample_rate = {str(rate)[:40]!r}: not a rate in Hz")
            if len(frames) == 3 and len(frames[2]) != 4 * samples:
                raise WireError(f"a data payload of {len(frames[2])} bytes for {samples} float32 samples")
            return DataBlock(_whole(header, "message_num"), _whole(content, "sample_num"), samples, float(rate))
        if kind == "event":
            content = header["content"]
            if content.get("type") != TTL_EVENT_TYPE:
                return None
            size = _whole(header, "data_size", 0)
            if size < 2 or len(frames) < 3 or len(frames[2]) != size:
                raise WireError(f"a TTL event of data_size {size} with {len(frames[2]) if len(frames) > 2 else 0} "
                                "payload bytes")
            line, state = struct.unpack_from("<BB", frames[2])
            word = struct.unpack_from("<Q", frames[2], 2)[0] if size >= 10 else None
            return TtlEvent(_whole(header, "message_num"), _whole(content, "sample_num"), line, state == 1, word)
    except (KeyError, TypeError, AttributeError) as error:
        raise WireError(f"a {str(kind)[:20]} message without {error}") from None
    return None
