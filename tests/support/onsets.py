"""Onset markers on LSL as the presenter sends them (so a peer's photodiode sees each onset), and the
windows a guarded source collects meanwhile."""

from __future__ import annotations

import json
import time

import pylsl

from compactrig.plugins.sources.base import Presentation
from compactrig.plugins.sources.guard import GuardedSource


def pump_for(guard: GuardedSource, seconds: float) -> list:
    """Everything the source collects during ``seconds``."""
    got, until = [], pylsl.local_clock() + seconds
    while pylsl.local_clock() < until:
        got += guard.collect(pylsl.local_clock())
        time.sleep(0.005)
    return got


class Onsets:
    """Onset markers on LSL, as the presenter sends them, so the peer's photodiode sees each onset."""

    def __init__(self, name: str) -> None:
        self.outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE,
                                                          pylsl.cf_string, name))
        self.order = 0

    def show(self, guard: GuardedSource) -> int:
        onset = pylsl.local_clock()
        self.outlet.push_sample([json.dumps({"event": "onset", "order": self.order})], onset)
        guard.submit(Presentation(self.order, 0, f"img{self.order}", onset), onset)
        self.order += 1
        return self.order - 1
