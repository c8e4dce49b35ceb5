"""The simulated gaze: ioHub's MouseGaze tracker follows the X pointer, which a test moves with ``xdotool``.

Positions are given in degrees from the fixation point and turned into screen pixels here, independently
of the app: pixels per degree from the rig file's numbers (``res / width * 2 d tan(0.5 deg)``), the
fixation point at the centre of the small presenter window, which ``GAZE_RIG`` places off the screen's
centre (so both axes of the tracker's coordinates count). ``iohub_processes`` finds ioHub servers, to
check that a test leaves none behind.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess

import pylsl
import pytest

MOUSE_GAZE = "eyetracker.hw.mouse.EyeTracker"
GAZE_SCREEN = """[screen]
resolution = [400, 300]
width_cm = 40.0
distance_cm = 57.0
position = [100, 60]
"""
"""The gaze tests' presenter window: ``support.sessions.RIG``'s size, its top-left corner at (100, 60)."""
FIXATION_PX = (100 + 400 / 2, 60 + 300 / 2)
"""The window's centre, the fixation point, in screen pixels (from the top-left corner, y down)."""
PIXELS_PER_DEGREE = 400 / 40.0 * 2 * 57.0 * math.tan(math.radians(0.5))


def need_xdotool() -> None:
    """Skip without ``xdotool`` (fail under CI, where .ci/apt-packages.txt installs it)."""
    if shutil.which("xdotool") is None:
        if os.environ.get("CI"):
            raise RuntimeError("xdotool is missing under CI=true: install it (.ci/apt-packages.txt)")
        pytest.skip("moves the pointer with xdotool: apt-get install xdotool")


def look_at(x_deg: float, y_deg: float) -> tuple[float, float, float]:
    """Move the pointer to (``x_deg``, ``y_deg``) from the fixation point (x right, y up), to the nearest
    pixel. Returns the LSL times just before and just after the move, and the offset in degrees the
    pointer really has (whole pixels)."""
    x = round(FIXATION_PX[0] + x_deg * PIXELS_PER_DEGREE)
    y = round(FIXATION_PX[1] - y_deg * PIXELS_PER_DEGREE)
    before = pylsl.local_clock()
    subprocess.run(["xdotool", "mousemove", str(x), str(y)], check=True)
    return before, pylsl.local_clock(), math.hypot(x - FIXATION_PX[0], y - FIXATION_PX[1]) / PIXELS_PER_DEGREE


def buttons(action: str) -> None:
    """``mousedown`` or ``mouseup`` of the left and right buttons together: MouseGaze's blink (no gaze)."""
    subprocess.run(["xdotool", action, "1", action, "3"], check=True)


def press(key: str) -> None:
    subprocess.run(["xdotool", "key", key], check=True)


def iohub_processes(started_after: float) -> list:
    """ioHub servers (``start_iohub_process.py``) started after ``started_after`` (``time.time()``) and
    still there."""
    import psutil
    found = []
    for process in psutil.process_iter(["cmdline", "create_time", "status"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "start_iohub_process.py" in cmdline and process.info["create_time"] >= started_after - 1 \
                and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found
