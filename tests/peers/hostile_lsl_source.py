"""An acquisition system's LSL stream (spike events or per-image counts) that sends garbage, using pylsl alone.

Written from pylsl's examples (labstreaminglayer/pylsl @ e146d7d4ca2b5c6c3c274ea7fa4f23f851bed09d,
src/pylsl/examples/SendStringMarkers.py: an irregular-rate stream pushed sample by sample with
explicit time stamps; SendDataAdvanced.py: the source id). The stream has ``CHANNELS`` channels in
``FORMAT`` (``float32``, ``int32`` or ``string``).

Commands on stdin, one per line, each answered ``ok`` once done:
``push STAMP V1,V2,...`` pushes one sample (values as given: numbers, ``nan``, ``inf``, ``-1``, or text
for a string stream) stamped STAMP on ``pylsl.local_clock`` (``nan`` for a NaN stamp);
``flood N FIRST_ID STAMP`` pushes N spikes of N distinct unit ids FIRST_ID, FIRST_ID + 1, ... (channel 0);
``quit``.
Usage: python hostile_lsl_source.py NAME FORMAT CHANNELS
"""

from __future__ import annotations

import sys

import pylsl

FORMATS = {"float32": pylsl.cf_float32, "int32": pylsl.cf_int32, "string": pylsl.cf_string}


def main() -> None:
    name, kind, channels = sys.argv[1], sys.argv[2], int(sys.argv[3])
    convert = {"float32": float, "int32": int, "string": str}[kind]
    info = pylsl.StreamInfo(name, "Spikes", channels, pylsl.IRREGULAR_RATE, FORMATS[kind], f"hostile-{name}")
    outlet = pylsl.StreamOutlet(info)
    print("ready", flush=True)
    for line in sys.stdin:
        words = line.rstrip("\n").split(" ", 2)
        if words[0] == "quit":
            break
        if words[0] == "push":
            values = [convert(v) for v in words[2].split(",")]
            outlet.push_sample(values, float(words[1]))
        elif words[0] == "flood":
            count, first, stamp = int(words[1]), int(words[2].split()[0]), float(words[2].split()[1])
            for k in range(count):
                outlet.push_sample([convert(first + k)] + [convert(0)] * (channels - 1), stamp)
        print("ok", flush=True)


if __name__ == "__main__":
    main()
