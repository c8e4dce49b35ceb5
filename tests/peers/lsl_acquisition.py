"""An acquisition system that streams sorted spikes over LSL, using pylsl alone.

Written from pylsl's examples (labstreaminglayer/pylsl @ e146d7d4ca2b5c6c3c274ea7fa4f23f851bed09d,
src/pylsl/examples/SendStringMarkers.py for an irregular-rate stream pushed sample by sample with
explicit time stamps, SendDataAdvanced.py for the source id): one int32 channel, the unit's number,
one sample per spike, time-stamped on ``pylsl.local_clock`` when the spike happened.

Spikes are Poisson, ``RATE_HZ`` per unit, from a seeded generator. Unit ``LATE_UNIT`` (if given)
only starts firing ``LATE_AFTER_S`` seconds after start. Every spike is appended to ``LOG`` as
``UNIT TIME`` after it was pushed. Usage:
python lsl_acquisition.py NAME SOURCE_ID LOG UNITS RATE_HZ SEED [LATE_UNIT LATE_AFTER_S]
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pylsl


def main() -> None:
    name, source_id, log_path = sys.argv[1], sys.argv[2], sys.argv[3]
    units = [int(u) for u in sys.argv[4].split(",")]
    rate, seed = float(sys.argv[5]), int(sys.argv[6])
    late_unit = int(sys.argv[7]) if len(sys.argv) > 7 else None
    late_after = float(sys.argv[8]) if len(sys.argv) > 8 else 0.0
    rng = np.random.default_rng(seed)
    info = pylsl.StreamInfo(name, "Spikes", 1, pylsl.IRREGULAR_RATE, pylsl.cf_int32, source_id)
    outlet = pylsl.StreamOutlet(info)
    start = pylsl.local_clock()
    upcoming = {u: start + rng.exponential(1 / rate) + (late_after if u == late_unit else 0.0) for u in units}
    with open(log_path, "a") as log:
        print(f"ready {start:.6f}", flush=True)
        while True:
            unit = min(upcoming, key=upcoming.get)
            when = upcoming[unit]
            wait = when - pylsl.local_clock()
            if wait > 0:
                time.sleep(wait)
            outlet.push_sample([unit], when)
            log.write(f"{unit} {when:.9f}\n")
            log.flush()
            upcoming[unit] = when + rng.exponential(1 / rate)


if __name__ == "__main__":
    main()
