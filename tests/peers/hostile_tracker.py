"""An eye tracker's state stream that sends what real trackers send on a bad day, using pylsl alone (the
outlet: ``regular_outlet.py``).

Written from pylsl's own examples (labstreaminglayer/pylsl @ e146d7d4ca2b5c6c3c274ea7fa4f23f851bed09d,
src/pylsl/examples/SendData.py for a regular-rate stream pushed with explicit time stamps,
SendStringMarkers.py for a ``cf_string`` stream): a regular-rate stream of ``CHANNELS`` channels in
``FORMAT`` (``float32``, ``int32`` or ``string``), every channel carrying the current value.
Trackers send NaN on track loss (a float stream), some send -1, and a string stream can carry any
text.

Commands on stdin, one per line: ``send VALUE`` (the value from the next sample on: a number, ``nan``,
or for a string stream any text), ``stamp OFFSET`` (time stamps from now on lie OFFSET seconds ahead of
the local clock, ``nan`` for a NaN stamp; ``stamp 0`` is honest again), ``quit``. Each change is
acknowledged with ``ok VALUE FIRST_SAMPLE_TIME`` once a sample carrying it has been pushed.
Usage: python hostile_tracker.py NAME FORMAT CHANNELS INITIAL_VALUE [RATE_HZ]
"""

from __future__ import annotations

import sys

import pylsl
from regular_outlet import serve

FORMATS = {"float32": pylsl.cf_float32, "int32": pylsl.cf_int32, "string": pylsl.cf_string}


def main() -> None:
    name, kind, channels = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rate = float(sys.argv[5]) if len(sys.argv) > 5 else 500.0
    convert = {"float32": float, "int32": int, "string": str}[kind]
    value = [convert(sys.argv[4])]
    skew = [0.0]
    pending: list[tuple[str, str]] = []

    def take_command(line: str) -> bool:
        word, _, argument = line.partition(" ")
        if word in ("send", "stamp"):
            pending.append((word, argument))
        return word != "quit"

    def next_sample(stamp: float) -> tuple[list, float, list[str]]:
        told = []
        while pending:
            word, argument = pending.pop(0)
            if word == "send":
                value[0] = convert(argument)
            else:
                skew[0] = float(argument)
            told.append(f"ok {argument} {stamp:.6f}")
        return [value[0]] * channels, stamp + skew[0], told

    serve(pylsl.StreamInfo(name, "Gaze", channels, rate, FORMATS[kind], f"hostile-tracker-{name}"), rate,
          take_command, next_sample)


if __name__ == "__main__":
    main()
