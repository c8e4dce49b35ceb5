"""The fixation point while the gate waits, the acquire time-out, and what the user is told meanwhile.

The eye tracker is a separate process (``tests/peers/eye_tracker.py``, an LSL state stream written from
pylsl's examples); the screen is read back from the X server (Pillow's ``ImageGrab`` over XCB), not from
the presenter, so what the animal would see is what is checked.
"""

from __future__ import annotations

import subprocess
import time
import uuid

import numpy as np
import pytest
from PIL import ImageGrab

from compactrig.stimuli.probes import dot_lattice, grating
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

from support.commands import compactrig_command
from support.peer_processes import command, paced_rig, start_peer
from support.sessions import check_exactly_once, count_so_far, table

pytestmark = pytest.mark.needs_display

RED, GREY = (255, 0, 0), (128, 128, 128)


def centre_colour() -> tuple[int, int, int]:
    """The pixel at the presenter window's centre: the window sits at the screen's top-left corner."""
    return ImageGrab.grab(bbox=(0, 0, 400, 300)).convert("RGB").getpixel((200, 150))


@pytest.mark.slow
def test_the_fixation_point_waits_for_the_animal_times_out_and_the_first_image_after_drops_no_frame(tmp_path):
    stimuli = tmp_path / "set"
    StimulusSet([StimulusRecord(image_id=f"img{i}", kind="natural") for i in range(2)],
                np.stack([grating(0), dot_lattice()])).save(stimuli)
    fixation = f"fixation-{uuid.uuid4().hex[:8]}"
    tracker = start_peer("eye_tracker.py", fixation, "500", "0")  # the animal looks elsewhere
    rig = tmp_path / "rig.toml"
    rig.write_text(paced_rig(6, 3, 2)
                   .replace("pace_frames = true", "pace_frames = true\nposition = [0, 0]")
                   .replace("inter_trial_s = 0.1", "inter_trial_s = 0.4\nacquire_s = 0.8")
                   + f'[fixation]\nsize_deg = 1.0\n[gate]\nname = "lsl"\n[gate.options]\nstream_name = "{fixation}"\n')
    out = tmp_path / "session"
    process = subprocess.Popen(compactrig_command("session", "run", "--stimuli", str(stimuli), "--rig", str(rig),
                                                  "--source", "simulated", "--max-dropped-frames", "0",
                                                  "--out", str(out)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        colours: list[tuple[int, int, int]] = []
        deadline, red_at = time.monotonic() + 60, None
        while time.monotonic() < deadline and process.poll() is None and \
                (red_at is None or time.monotonic() - red_at < 3.0):
            colours.append(centre_colour())
            red_at = time.monotonic() if red_at is None and colours[-1] == RED else red_at
            time.sleep(0.03)
        assert RED in colours, "the fixation point is up while the gate waits"
        first_red = colours.index(RED)
        assert GREY in colours[first_red:], "after acquire_s without fixation it is taken down (a time-out)"
        back = colours.index(GREY, first_red)
        assert RED in colours[back:], "and shown again"
        assert count_so_far(out, "SELECT COUNT(*) FROM presentations") == 0, "no image without fixation"
        command(tracker, "fix")
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
        command(tracker, "quit")
        tracker.wait(5)
    assert process.returncode == 0, stderr
    assert "no fixation acquired within 0.8 s (fixation break)" in stdout
    check_exactly_once(out, 2, n_units=table(out, "SELECT COUNT(*) FROM units")[0][0])
    dropped = table(out, "SELECT ord, dropped, aborted FROM presentations ORDER BY ord")
    assert all(d == 0 and not a for _, d, a in dropped), ("the wait before a trial is not a dropped frame of its "
                                                          f"first image: {dropped}")
