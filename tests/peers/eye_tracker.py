"""An eye tracker's fixation-state stream over LSL, using pylsl alone (the outlet: ``regular_outlet.py``).

A regular-rate int32 stream, one channel (1 fixating, 0 not), written from pylsl's own examples
(labstreaminglayer/pylsl @ e146d7d4ca2b5c6c3c274ea7fa4f23f851bed09d, src/pylsl/examples/SendData.py).

Commands on stdin, one per line: ``fix``, ``break``, ``quit``. Each state change is printed as
``state VALUE FIRST_SAMPLE_TIME``: the time stamp of the first sample carrying the new state.
Usage: python eye_tracker.py NAME [RATE_HZ] [INITIAL_STATE]
"""

from __future__ import annotations

import sys

import pylsl
from regular_outlet import serve


def main() -> None:
    name = sys.argv[1]
    rate = float(sys.argv[2]) if len(sys.argv) > 2 else 500.0
    state = [int(sys.argv[3]) if len(sys.argv) > 3 else 1]
    pending: list[int] = []

    def take_command(word: str) -> bool:
        if word.strip() in ("fix", "break"):
            pending.append(1 if word.strip() == "fix" else 0)
        return word.strip() != "quit"

    def next_sample(stamp: float) -> tuple[list, float, list[str]]:
        said = []
        while pending:
            value = pending.pop(0)
            if value != state[0]:
                state[0] = value
                said.append(f"state {value} {stamp:.6f}")
        return [state[0]], stamp, said

    serve(pylsl.StreamInfo(name, "Gaze", 1, rate, pylsl.cf_int32, f"eye-tracker-{name}"), rate, take_command,
          next_sample)


if __name__ == "__main__":
    main()
