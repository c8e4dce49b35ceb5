"""A session under the ioHub gate: the simulated source, the real presenter, ioHub's MouseGaze tracker
following the X pointer (``support.gaze``), which the test moves out of the fixation window during two
known presentations."""

from __future__ import annotations

import random
import subprocess
import threading
import time

import numpy as np
import pylsl
import pytest

from compactrig.stimuli.probes import colour_blob, dot_lattice, grating
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

from support.commands import compactrig_command
from support.gaze import GAZE_SCREEN, MOUSE_GAZE, iohub_processes, look_at, need_xdotool
from support.sessions import check_exactly_once, count_so_far, table

pytestmark = [pytest.mark.needs_display, pytest.mark.slow]
WINDOW_END_S = 0.15
"""The simulated source's counting window ends this long after each onset (its default)."""
ON_S = 45 / 60
"""Each image is up this long (45 frames at 60 Hz, paced), unless a break cuts it short."""
LATENCY_S = 0.25
"""How late MouseGaze may date the pointer's move (see ``tests/rig/presenter/test_iohub_gate.py``)."""
EARLY_S = 0.1
"""How early it may date it: a stalled ioHub server catches up with samples that carry the pointer's new place."""
STALE_S = 1.0
"""Fails closed after a second without a sample: on a loaded test machine (other processes, the presenter, the
ioHub server) samples can reach the gate a quarter of a second late, which the default 0.1 s would call a break."""
RIG = GAZE_SCREEN + f"""pace_frames = true
[image]
size_deg = 3.0
[timing]
frames_on = 45
frames_off = 4
images_per_trial = 2
inter_trial_s = 0.0
[gate]
name = "iohub"
[gate.options]
tracker = "{MOUSE_GAZE}"
window_deg = 2.0
hold_s = 0.3
stale_after_s = {STALE_S}
[gate.options.settings.runtime_settings]
sampling_rate = 100
"""


def presentations(out) -> list[tuple]:
    if count_so_far(out, "SELECT COUNT(*) FROM presentations") == 0:
        return []
    return table(out, "SELECT ord, trial, onset_time FROM presentations ORDER BY ord")


def second_image(rows: list[tuple], other_than: int) -> tuple | None:
    """The row of a trial's second image, once one is up (in a trial other than ``other_than``)."""
    trials = [trial for _, trial, _ in rows]
    return next((row for row in reversed(rows) if row[1] != other_than and trials.count(row[1]) == 2), None)


def wait_for(condition, seconds: float = 90.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.005)
    raise AssertionError(f"not within {seconds} s")


def test_the_iohub_gate_aborts_exactly_the_presentations_during_which_the_gaze_left_the_window(tmp_path):
    """The first break falls on a trial's first image (it and the rest of its trial are aborted), the second on
    another trial's second image (its first keeps its response); every other presentation counts, and the
    plan completes with each image shown once."""
    need_xdotool()
    look_at(0, 0)
    started = time.time()
    stimuli = tmp_path / "set"
    pixels = np.stack([grating(0), grating(90), dot_lattice(), colour_blob((1, -1, 0))])
    StimulusSet([StimulusRecord(image_id=f"img{i}", kind="natural") for i in range(4)], pixels).save(stimuli)
    rig = tmp_path / "rig.toml"
    rig.write_text(RIG)
    out = tmp_path / "session"
    process = subprocess.Popen(compactrig_command("session", "run", "--stimuli", str(stimuli), "--rig", str(rig),
                                                  "--source", "simulated", "--out", str(out)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    breaks = []  # (trial, earliest and latest time the break can be dated, degrees off)

    def look_away_during(row: tuple, x_deg: float, y_deg: float) -> None:
        """Away 0.15 s after the image's onset (it is up for 0.75 s), for 0.1 s."""
        _, trial, onset = row
        time.sleep(max(0.0, onset + 0.15 - pylsl.local_clock()))
        before, after, off = look_at(x_deg, y_deg)
        breaks.append((trial, before - EARLY_S, after + LATENCY_S, off))
        time.sleep(0.1)
        look_at(0, 0)

    shown = threading.Event()

    def fixate() -> None:
        """Small moves inside the window until the first image is up: ioHub's mouse on Linux knows the
        pointer only once it has moved, and MouseGaze says the screen's centre until then."""
        while not shown.wait(0.2):
            look_at(0.2 * random.random(), 0.2 * random.random())
    fixating = threading.Thread(target=fixate, daemon=True)
    fixating.start()
    try:
        first = wait_for(lambda: presentations(out)[:1])[0]
        shown.set()
        fixating.join()
        look_away_during(first, 4.0, 0.0)
        second = wait_for(lambda: second_image(presentations(out), first[1]))
        look_away_during(second, -0.5, 3.5)
        _, stderr = process.communicate(timeout=120)
    finally:
        shown.set()
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    rows = table(out, "SELECT ord, trial, onset_time, aborted, abort_reason FROM presentations ORDER BY ord")
    for _, trial, onset, aborted, reason in rows:
        ends = onset + max(ON_S, WINDOW_END_S)  # when it would have stopped counting, had fixation held
        charged = [(ends > earliest, ends > latest, off) for broken, earliest, latest, off in breaks if broken == trial]
        assert all(a == b for a, b, _ in charged), ("each image's fate is the same wherever the break falls",
                                                    rows, breaks)
        expected = next((off for a, _, off in charged if a), None)
        assert bool(aborted) == (expected is not None), (trial, onset, breaks)
        if expected is not None:
            assert reason == f"gaze {expected:.1f} deg from the fixation point (window 2 deg)"
    first_trial = [r for r in rows if r[1] == first[1]]
    second_trial = [r for r in rows if r[1] == second[1]]
    assert [r[3] for r in first_trial] in ([1], [1, 1]) and [r[3] for r in second_trial] == [0, 1]
    assert sum(r[3] for r in rows) == len(first_trial) + 1, "no other presentation was aborted"
    check_exactly_once(out, 4)
    assert iohub_processes(started) == []
