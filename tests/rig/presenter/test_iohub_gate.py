"""The ioHub gate against ioHub's own MouseGaze tracker under Xvfb, its gaze moved with xdotool
(``support.gaze``): one tracker start shared by the module, closed by its last test; and the tracker's
calibration from the command line."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import tomllib

import pylsl
import pytest

from compactrig.engine.errors import CompactRigError
from compactrig.rig.presenter.iohub_gate import IohubGate, calibrate
from compactrig.rig.presenter.rig import parse_rig

from support.gaze import GAZE_SCREEN, MOUSE_GAZE, buttons, iohub_processes, look_at, need_xdotool, press

pytestmark = pytest.mark.needs_display
HOLD_S = 0.3
STALE_S = 0.5
"""Above the default 0.1 s: a loaded test machine can delay a sample a quarter of a second on its way."""
LATENCY_S = 0.4
"""How late a pointer move may reach the gate (xdotool, X, ioHub's server, its client, the queue); MouseGaze
dates its samples when it reads the pointer, tens of milliseconds after the move."""
EARLY_S = 0.1
"""How early MouseGaze may date it: a stalled ioHub server catches up with samples that carry the new place."""
WINDOW = 2.0
SETTINGS = {"runtime_settings": {"sampling_rate": 100}}


SCREEN = parse_rig(tomllib.loads(GAZE_SCREEN))


@pytest.fixture(scope="module")
def tracked():
    need_xdotool()
    look_at(0, 0)
    started = time.time()
    gate = IohubGate(tracker=MOUSE_GAZE, settings=SETTINGS, window_deg=WINDOW, hold_s=HOLD_S,
                     stale_after_s=STALE_S)
    gate.use_screen(SCREEN)
    gate.connect()
    yield gate, started
    gate.close()


def wait_until(condition, seconds: float = 5.0) -> float:
    """Poll every 5 ms; the LSL time at which ``condition`` first held."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return pylsl.local_clock()
        time.sleep(0.005)
    raise AssertionError(f"not within {seconds} s")


def test_the_gate_opens_after_the_hold_inside_the_window_and_closes_at_the_sample_that_left_it(tracked):
    gate, _ = tracked
    look_at(5, 0)
    wait_until(lambda: not gate.may_start(pylsl.local_clock()))
    entered, entered_after, _ = look_at(1.0, -0.5)
    opened = wait_until(lambda: gate.may_start(pylsl.local_clock()))
    assert entered - EARLY_S + HOLD_S <= opened <= entered_after + HOLD_S + LATENCY_S, "held for hold_s, then open"
    since = pylsl.local_clock()
    time.sleep(0.1)
    left, left_after, off = look_at(0.5, 3.0)
    time.sleep(0.5)  # the runner polls late: the break is still dated by the first sample outside
    now = pylsl.local_clock()
    assert left - EARLY_S <= gate.break_time(since, now) <= left_after + LATENCY_S
    assert gate.break_reason == f"gaze {off:.1f} deg from the fixation point (window {WINDOW:g} deg)"


@pytest.mark.parametrize(("x", "y", "inside"), [(1.9, 0.0, True), (0.0, -1.9, True), (-1.3, 1.3, True),
                                                (2.1, 0.0, False), (0.0, 2.1, False), (1.5, -1.5, False)])
def test_the_window_is_a_circle_of_window_deg_around_the_fixation_point(tracked, x, y, inside):
    """Both axes, both signs, the diagonal (1.84 deg inside, 2.12 outside): a circle, centred on the
    presenter window's centre, in the rig's degrees."""
    gate, _ = tracked
    _, moved, off = look_at(x, y)
    assert (off <= WINDOW) == inside
    time.sleep(HOLD_S + LATENCY_S)
    now = pylsl.local_clock()
    assert gate.may_start(now) == inside
    assert (gate.break_time(moved + LATENCY_S, now) is None) == inside


def test_a_blink_is_a_break_and_the_gate_reopens_after_the_hold(tracked):
    """MouseGaze's blink (left and right buttons held): samples without gaze."""
    gate, _ = tracked
    look_at(0, 0)
    wait_until(lambda: gate.may_start(pylsl.local_clock()))
    buttons("mousedown")
    try:
        wait_until(lambda: gate.must_abort(pylsl.local_clock()))
        assert gate.break_reason == "eye lost (the tracker reports no gaze)"
        time.sleep(0.3)
        assert not gate.may_start(pylsl.local_clock())
    finally:
        buttons("mouseup")
    returned = pylsl.local_clock()
    opened = wait_until(lambda: gate.may_start(pylsl.local_clock()))
    assert opened >= returned + HOLD_S - 0.02


def test_a_stalled_tracker_closes_the_gate_within_stale_after_s(tracked):
    """The ioHub server stopped (SIGSTOP): no sample comes, and the gate fails closed."""
    gate, started = tracked
    look_at(0, 0)
    wait_until(lambda: gate.may_start(pylsl.local_clock()))
    (server,) = iohub_processes(started)
    stopped = pylsl.local_clock()
    os.kill(server.pid, signal.SIGSTOP)
    try:
        closed = wait_until(lambda: gate.must_abort(pylsl.local_clock()))
        assert closed - stopped <= STALE_S + LATENCY_S
        assert "eye tracker silent" in gate.break_reason
    finally:
        os.kill(server.pid, signal.SIGCONT)
    wait_until(lambda: gate.may_start(pylsl.local_clock()))


@pytest.mark.slow
def test_a_tracker_process_that_dies_closes_the_gate_and_is_started_again(tracked):
    """SIGKILL of the eye-tracker process: the gate fails closed with the reason, its ioHub server ends with
    it, and a new process is started 5 s later; fixation opens the gate again."""
    gate, started = tracked
    look_at(0, 0)
    wait_until(lambda: gate.may_start(pylsl.local_clock()))
    (server,) = iohub_processes(started)
    os.kill(gate._process.pid, signal.SIGKILL)
    wait_until(lambda: gate.must_abort(pylsl.local_clock()))
    time.sleep(STALE_S)
    assert not gate.may_start(pylsl.local_clock())
    assert gate.break_reason.startswith("eye tracker stopped (the eye-tracker process ended (exit code -9))")
    server.wait(5)  # the server ended with its client: nothing is left running
    deadline = time.monotonic() + 40  # the runner keeps asking the gate, which starts the tracker again
    while not gate.may_start(pylsl.local_clock()) and time.monotonic() < deadline:
        look_at(0.1 * (time.monotonic() % 2), 0)  # ioHub's mouse knows the pointer once it moves
        time.sleep(0.1)
    assert gate.may_start(pylsl.local_clock())
    assert len(iohub_processes(started)) == 1


def test_closing_the_gate_leaves_no_tracker_process(tracked):
    gate, started = tracked
    process = gate._process
    gate.close()
    assert not process.alive
    assert iohub_processes(started) == []


def test_a_tracker_without_its_psychopy_package_is_one_line_at_connect():
    gate = IohubGate(tracker="eyetracker.hw.sr_research.eyelink.EyeTracker")
    gate.use_screen(SCREEN)
    with pytest.raises(CompactRigError, match=r"^gate 'iohub': the ioHub eye tracker eyetracker\.hw\.sr_research"
                                              r"\.eyelink\.EyeTracker needs its PsychoPy package \(EyeLink: "
                                              r"psychopy-eyetracker-sr-research"):
        gate.connect()


@pytest.mark.parametrize(("options", "problem"), [
    ({}, "tracker = '': name the ioHub eye-tracker class"),
    ({"tracker": "EyeLink"}, "tracker = 'EyeLink': name the ioHub eye-tracker class"),
    ({"tracker": MOUSE_GAZE, "settings": "{sampling_rate: 500}"}, "settings is not JSON"),
    ({"tracker": MOUSE_GAZE, "settings": "[1]"}, "settings must be a JSON object"),
    ({"tracker": MOUSE_GAZE, "settings": {"name": "eye"}}, "settings.name is CompactRig's to set"),
    ({"tracker": MOUSE_GAZE, "window_deg": "0"}, "window_deg = 0"),
    ({"tracker": MOUSE_GAZE, "hold_s": "nan"}, "option hold_s = nan: give a finite number"),
    ({"tracker": MOUSE_GAZE, "stale_after_s": "inf"}, "option stale_after_s = inf: give a finite number"),
    ({"tracker": MOUSE_GAZE, "start_timeout_s": "0"}, "option start_timeout_s = 0.0: give from 1 to 600"),
    ({"tracker": MOUSE_GAZE, "calibration_points": "4"}, "calibration_points = 4: 3, 5, 9 or 13"),
])
def test_options_are_checked_when_the_gate_is_built(options, problem):
    with pytest.raises(CompactRigError, match="^" + re.escape(f"gate 'iohub': {problem}")):
        IohubGate(**options)


def test_rig_calibrate_runs_the_trackers_calibration_on_the_rig_screen(tmp_path, cli):
    """MouseGaze's calibration is ioHub's mock: its screens wait for space, its targets are shown, nothing is
    calibrated, and it ends OK. A rig whose gate is not ``iohub`` has nothing to calibrate."""
    need_xdotool()
    started = time.time()
    rig = tmp_path / "rig.toml"
    rig.write_text(GAZE_SCREEN + '[gate]\nname = "iohub"\n[gate.options]\n'
                   f'tracker = "{MOUSE_GAZE}"\ncalibration_points = 3\n'
                   '[gate.options.settings.calibration]\ntarget_duration = 0.2\ntarget_delay = 0.1\n')
    done = threading.Event()

    def operator() -> None:  # at the rig's keyboard: space on the first screen and on the last
        while not done.wait(0.3):
            press("space")
    presser = threading.Thread(target=operator, daemon=True)
    presser.start()
    try:
        result = cli("rig", "calibrate", str(rig))
    finally:
        done.set()
        presser.join()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "calibration done (RESULT CALIBRATION_OK)"
    assert iohub_processes(started) == []
    rig.write_text(GAZE_SCREEN)
    result = cli("rig", "calibrate", str(rig))
    assert result.returncode == 2
    assert "calibration is for the 'iohub' gate; this rig's gate is 'always'" in result.stderr


def test_a_calibration_cancelled_while_ioHub_starts_leaves_no_process():
    """Cancelled (the Rig view's button pressed again) before the tracker is up: the server ioHub was starting
    is ended too."""
    started = time.time()
    rig = parse_rig(tomllib.loads(GAZE_SCREEN + f'[gate]\nname = "iohub"\n[gate.options]\ntracker = "{MOUSE_GAZE}"\n'))
    seen = []

    def cancelled() -> bool:  # as soon as ioHub's server process is there, before it answers
        seen.extend(iohub_processes(started))
        return bool(seen)
    assert calibrate(rig, cancelled) is None
    assert seen and iohub_processes(started) == []
