"""The fixation window's geometry and the gaze gate's rules, on samples given by hand (the tracker itself:
``tests/rig/presenter/test_iohub_gate.py``)."""

from __future__ import annotations

import math

import pytest

from compactrig.plugins.gaze_window import FixationWindow, GazeGate
from compactrig.rig.presenter.rig import parse_rig

PPD = 400 / 40.0 * 2 * 57.0 * math.tan(math.radians(0.5))


def rig(**screen):
    return parse_rig({"screen": {"resolution": [400, 300], "width_cm": 40.0, **screen}})


@pytest.mark.parametrize(("screen", "centre"), [
    ({"fullscreen": True}, (0.0, 0.0)),
    ({"position": [100, 60]}, (100 + 200 - 640, 400 - (60 + 150))),
    ({"resolution": [401, 300], "width_cm": 40.1}, (439 + 200.5 - 640, 400 - (250 + 150))),  # PsychoPy: int(879 / 2)
])
def test_the_fixation_point_is_the_presenter_windows_centre_in_the_trackers_pixels(screen, centre):
    """The tracker's pixels run from the 1280 x 800 screen's centre, x right and y up."""
    window = FixationWindow.on_screen(rig(**screen), (1280, 800), 2.0)
    assert window.centre == pytest.approx(centre)
    assert window.pixels_per_degree == pytest.approx(PPD, rel=1e-3)


def test_a_sample_is_inside_within_window_deg_and_a_sample_without_gaze_is_a_break():
    window = FixationWindow((-340.0, 190.0), PPD, 2.0)
    assert window.fault(-340 + 1.99 * PPD, 190) is None
    assert window.fault(-340 + 1.5 * PPD, 190 - 1.5 * PPD) == "gaze 2.1 deg from the fixation point (window 2 deg)"
    assert window.fault(None, None) == window.fault(math.nan, 0.0) == "eye lost (the tracker reports no gaze)"


class HandFed(GazeGate):
    name = "hand-fed"

    def _update(self, now: float) -> None:
        pass


def test_a_trial_starts_after_hold_s_inside_and_the_first_sample_outside_or_a_silence_is_the_break():
    gate = HandFed(window_deg=2.0, hold_s=0.3, stale_after_s=0.1)
    gate.use_screen(rig(fullscreen=True))
    gate.place_window((400, 300))
    def inside_until(end: float, start: float) -> None:  # a sample every 10 ms, inside
        for k in range(round((end - start) * 100) + 1):
            gate.add_gaze(start + k / 100, 0.0, 0.0, now=start + k / 100)

    inside_until(10.29, 10.0)
    assert not gate.may_start(10.29), "held for 0.29 s: not yet (no sample covers 9.99 s)"
    inside_until(11.0, 10.30)
    assert gate.may_start(10.31) and gate.may_start(11.0)
    gate.add_gaze(11.01, 3 * PPD, 0.0, now=11.01)
    assert gate.break_time(10.5, 11.02) == pytest.approx(11.01)
    assert gate.break_reason == "gaze 3.0 deg from the fixation point (window 2 deg)"
    assert not gate.may_start(11.02)
    gate.add_gaze(11.02, 0.0, 0.0, now=11.02)
    assert gate.break_time(11.02, 11.10) is None
    assert gate.break_time(11.02, 11.13) == pytest.approx(11.12), "0.1 s without a sample"
    assert "eye tracker silent" in gate.break_reason
    gate.add_gaze(99.0, 0.0, 0.0, now=11.2)  # a stamp from the future is dated when it arrives
    assert gate.break_time(11.2, 11.25) is None and gate.break_time(11.2, 11.31) == pytest.approx(11.3)
