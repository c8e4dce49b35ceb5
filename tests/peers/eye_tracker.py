"""An eye tracker's fixation-state stream over LSL, using pylsl alone.

Written from pylsl's own examples (labstreaminglayer/pylsl @ e146d7d4ca2b5c6c3c274ea7fa4f23f851bed09d,
src/pylsl/examples/SendData.py and SendDataAdvanced.py): a regular-rate int32 stream, one channel
(1 fixating, 0 not), each sample pushed with its own time stamp on ``pylsl.local_clock``, and a
stable source id so inlets recover when the tracker restarts.

Commands on stdin, one per line: ``fix``, ``break``, ``quit``. Each state change is printed as
``state VALUE FIRST_SAMPLE_TIME``: the time stamp of the first sample carrying the new state.
Usage: python eye_tracker.py NAME [RATE_HZ] [INITIAL_STATE]
"""

from __future__ import annotations

import sys
import threading
import time

import pylsl


def main() -> None:
    name = sys.argv[1]
    rate = float(sys.argv[2]) if len(sys.argv) > 2 else 500.0
    state = [int(sys.argv[3]) if len(sys.argv) > 3 else 1]
    pending: list[int] = []
    stop = threading.Event()

    def read_commands() -> None:
        for line in sys.stdin:
            word = line.strip()
            if word == "quit":
                stop.set()
                return
            if word in ("fix", "break"):
                pending.append(1 if word == "fix" else 0)
        stop.set()

    info = pylsl.StreamInfo(name, "Gaze", 1, rate, pylsl.cf_int32, f"eye-tracker-{name}")
    outlet = pylsl.StreamOutlet(info)
    threading.Thread(target=read_commands, daemon=True).start()
    print(f"ready {pylsl.local_clock():.6f}", flush=True)
    start, sent = pylsl.local_clock(), 0
    while not stop.is_set():
        due = int((pylsl.local_clock() - start) * rate) + 1 - sent
        for _ in range(max(due, 0)):
            stamp = start + sent / rate
            while pending:
                value = pending.pop(0)
                if value != state[0]:
                    state[0] = value
                    print(f"state {value} {stamp:.6f}", flush=True)
            outlet.push_sample([state[0]], stamp)
            sent += 1
        time.sleep(0.5 / rate)


if __name__ == "__main__":
    main()
