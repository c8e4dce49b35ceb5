"""What the stand-in eye trackers share: a regular-rate LSL outlet driven by commands on stdin, pylsl alone.

Written from pylsl's own examples (labstreaminglayer/pylsl @ e146d7d4ca2b5c6c3c274ea7fa4f23f851bed09d,
src/pylsl/examples/SendData.py and SendDataAdvanced.py): one sample every 1/RATE s, each pushed with its
own time stamp (the stream's start on ``pylsl.local_clock`` plus k/RATE, as a tracker stamps a sample when
it measured it), and a stable source id so inlets recover when the tracker restarts. ``ready TIME`` is
printed once the outlet exists; the peer scripts import this module from their own folder.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

import pylsl


def serve(info: pylsl.StreamInfo, rate: float, take_command: Callable[[str], bool],
          next_sample: Callable[[float], tuple[list, float, list[str]]]) -> None:
    """Push samples until stdin says ``quit`` (``take_command`` returns False) or closes.

    ``take_command(line)`` runs on the reader thread for every line; ``next_sample(stamp)`` on the sending
    one gives the sample's values, the time stamp to push it with, and lines to print once it is pushed.
    """
    outlet = pylsl.StreamOutlet(info)
    stop = threading.Event()

    def read_commands() -> None:
        for line in sys.stdin:
            if not take_command(line.rstrip("\n")):
                break
        stop.set()

    threading.Thread(target=read_commands, daemon=True).start()
    print(f"ready {pylsl.local_clock():.6f}", flush=True)
    start, sent = pylsl.local_clock(), 0
    while not stop.is_set():
        due = int((pylsl.local_clock() - start) * rate) + 1 - sent
        for _ in range(max(due, 0)):
            values, stamp, said = next_sample(start + sent / rate)
            outlet.push_sample(values, stamp)
            sent += 1
            for line in said:
                print(line, flush=True)
        time.sleep(0.5 / rate)
