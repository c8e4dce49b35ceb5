"""The eye-tracker process: PsychoPy's ioHub and the eye tracker it drives, in a process of its own.

Runs only inside the child started by ``compactrig.rig.presenter.iohub_tracker.TrackerProcess`` (spawn),
so neither the session runner nor the window imports PsychoPy. It starts an ioHub server (its own
process again) with one Display, on the rig's screen and with the rig's physical size, and one eye
tracker, the ioHub device class the rig names (``eyetracker.hw.mouse.EyeTracker``,
``eyetracker.hw.sr_research.eyelink.EyeTracker``, ...) with the rig's ioHub settings for it. Then it
either streams gaze samples to the parent, time-stamped on the LSL clock in the tracker's display
pixels from the screen's centre (x right, y up; None where the tracker has no gaze), or runs the
tracker's own calibration (``runSetupProcedure`` through PsychoPy's ``EyetrackerCalibration``, as a
PsychoPy Builder experiment does) and reports its result. What ioHub and its server print goes to a
file the parent gives (a terminal session stays readable); its last error line is quoted when the start
fails.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from compactrig.engine.errors import CompactRigError
from compactrig.rig.presenter.rig import RigConfig

POLL_S = 0.004
"""How often the tracker's buffer is read (EyeLink's 1000 Hz: 4 samples a read)."""
ALIVE_EVERY_S = 0.25
"""A read with no sample is still reported this often: the parent tells a silent tracker from a hung process."""
CALIBRATION_LAYOUTS = {3: "THREE_POINTS", 5: "FIVE_POINTS", 9: "NINE_POINTS", 13: "THIRTEEN_POINTS"}
IOHUB_MAX_MM = 2048.0
"""The largest display width, height and eye distance ioHub's Display accepts, mm."""
PACKAGES = ("EyeLink: psychopy-eyetracker-sr-research (and SR Research's pylink); Tobii: "
            "psychopy-eyetracker-tobii; GazePoint: psychopy-eyetracker-gazepoint")


@dataclass(frozen=True)
class CalibrationSetup:
    """How the calibration looks: the rig's window, a target around a dot like the fixation point."""

    rig: RigConfig
    """The rig whose window is opened under ioHub's calibration screens."""
    points: int = 9
    paced: bool = True
    """Targets advance by themselves (else the operator presses space at each)."""


@dataclass(frozen=True)
class TrackerSetup:
    tracker: str
    """The ioHub device class, e.g. ``eyetracker.hw.mouse.EyeTracker``."""
    settings: dict[str, Any] = field(default_factory=dict)
    """The device's ioHub settings (``runtime_settings``, ``calibration``, ``model_name``, ...)."""
    screen_index: int = 0
    mm_per_px: float = 0.4
    distance_mm: float = 570.0
    calibration: CalibrationSetup | None = None
    """None: stream gaze until told to stop; else calibrate once and end."""


# child -> parent
@dataclass(frozen=True)
class TrackerReady:
    screen_px: tuple[int, int]
    """The tracker's display in pixels: where its coordinates' centre lies."""
    server_pid: int | None
    server_started: float | None
    """The ioHub server's process and its start time (``psutil``): it is ended with this process."""


@dataclass(frozen=True)
class GazeSamples:
    stamps: list[float]
    x: list[float | None]
    y: list[float | None]


@dataclass(frozen=True)
class Calibrated:
    result: Any
    """What the tracker's ``runSetupProcedure`` returned (a dict such as ``{"RESULT": "CALIBRATION_OK"}``)."""


@dataclass(frozen=True)
class TrackerFailed:
    message: str


STOP = "stop"
"""parent -> child: quit ioHub and end."""


def tracker_main(setup: TrackerSetup, output_path: str, commands: Any, events: Any) -> None:
    """Entry point of the eye-tracker process (Ctrl-C is the parent's to handle, as for the presenter).
    What it and its ioHub server print goes to ``output_path`` (the parent's file, removed by the parent)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(os, "setpgrp"):  # POSIX: the terminal's Ctrl-C reaches the runner, not the ioHub server either
        os.setpgrp()
    output = _capture_output(output_path)
    io = None
    try:
        screen_px = _check_device(setup)
        io = _start_iohub(setup, screen_px, output)
        tracker = io.getDevice("tracker")
        if tracker is None:
            raise CompactRigError(f"ioHub could not start the eye tracker {setup.tracker}{_last_line(output)}")
        if not tracker.isConnected():  # some connect when asked (MouseGaze taps the mouse then)
            tracker.setConnectionState(True)
        if not tracker.isConnected():
            raise CompactRigError(f"the eye tracker {setup.tracker} is not connected (is it on, and reachable with "
                                  f"the rig's ioHub settings?){_last_line(output)}")
        events.put(TrackerReady(screen_px, *_server_process()))
        if setup.calibration is not None:
            events.put(Calibrated(_calibrate(tracker, setup.calibration)))
            return
        tracker.setRecordingState(True)
        _stream(tracker, commands, events)
    except CompactRigError as error:
        events.put(TrackerFailed(str(error)))
    except Exception as error:  # noqa: BLE001 - ioHub and the trackers' packages fail any way; one line to the parent
        events.put(TrackerFailed(f"the eye tracker {setup.tracker} failed ({type(error).__name__}: {error})"
                                 f"{_last_line(output)}"))
    finally:
        if io is not None:
            with contextlib.suppress(Exception):
                io.quit()
        output.close()


def _capture_output(path: str) -> Any:
    """Send this process's output, and so the ioHub server's, to the file at ``path``."""
    output = open(path, "w")  # open until the process ends
    for stream in (1, 2):
        os.dup2(output.fileno(), stream)
    return output


def _last_line(output: Any) -> str:
    """``: LINE``, the last line ioHub printed that names an error, if any."""
    with contextlib.suppress(OSError, ValueError):
        output.flush()
        with open(output.name, errors="replace") as printed:
            lines = [line.strip() for line in printed if "error" in line.lower()]
        if lines:
            return f": {lines[-1][:300]}"
    return ""


def _check_device(setup: TrackerSetup) -> tuple[int, int]:
    """The screen's size; the device class importable (its PsychoPy package installed); sizes ioHub takes."""
    from compactrig.rig.presenter.window import check_screen
    screen_px = check_screen(setup.screen_index)
    module_path, _, class_name = setup.tracker.rpartition(".")
    try:
        import importlib
        module = importlib.import_module(f"psychopy.iohub.devices.{module_path}")
    except ImportError:
        raise CompactRigError(f"no ioHub eye tracker {setup.tracker} in PsychoPy; name its device class, e.g. "
                              "eyetracker.hw.sr_research.eyelink.EyeTracker (EyeLink), eyetracker.hw.tobii.EyeTracker "
                              "(Tobii), eyetracker.hw.gazepoint.gp3.EyeTracker (GazePoint), "
                              "eyetracker.hw.mouse.EyeTracker (the mouse as gaze)") from None
    if not hasattr(module, class_name):
        raise CompactRigError(f"the ioHub eye tracker {setup.tracker} needs its PsychoPy package ({PACKAGES}); "
                              "pip-install it into this environment")
    width_mm, height_mm = (setup.mm_per_px * side for side in screen_px)
    if max(width_mm, height_mm, setup.distance_mm) > IOHUB_MAX_MM:
        raise CompactRigError(f"ioHub takes displays and eye distances up to {IOHUB_MAX_MM:g} mm; this screen is "
                              f"{width_mm:.0f} x {height_mm:.0f} mm at {setup.distance_mm:.0f} mm")
    return screen_px


def _free_udp_port() -> int:
    """A UDP port free now, for the ioHub server (its fixed default would collide with another ioHub)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("", 0))
        return int(probe.getsockname()[1])


def _start_iohub(setup: TrackerSetup, screen_px: tuple[int, int], output: Any) -> Any:
    from psychopy.iohub.client import ioHubConnection
    display = {"name": "display", "reporting_unit_type": "pix", "color_space": "rgb255",
               "device_number": setup.screen_index,
               "physical_dimensions": {"width": setup.mm_per_px * screen_px[0],
                                       "height": setup.mm_per_px * screen_px[1], "unit_type": "mm"},
               "default_eye_distance": {"surface_center": setup.distance_mm, "unit_type": "mm"}}
    tracker = {**setup.settings, "name": "tracker", "enable": True}
    config = {"monitor_devices": [{"Display": display}, {"Experiment": {}}, {"Keyboard": {}}, {"Mouse": {}},
                                  {setup.tracker: tracker}],
              "udp_port": _free_udp_port()}
    try:
        return ioHubConnection(config)
    except Exception as error:  # noqa: BLE001 - its start fails as RuntimeError, KeyError, ioHubError...
        raise CompactRigError(f"ioHub did not start ({type(error).__name__}: {error}){_last_line(output)}") from None


def _server_process() -> tuple[int | None, float | None]:
    from psychopy.iohub.devices import Computer
    server: Any = getattr(Computer, "iohub_process", None)
    try:
        return int(server.pid), float(server.create_time())
    except Exception:  # noqa: BLE001 - not known: the parent then relies on ioHub ending its own server
        return None, None


def _stream(tracker: Any, commands: Any, events: Any) -> None:
    """Gaze samples to the parent until told to stop or the parent is gone."""
    import pylsl
    from psychopy.iohub.constants import EventConstants
    from psychopy.iohub.devices import Computer

    from compactrig.rig.presenter.window import parent_alive
    kinds = (EventConstants.MONOCULAR_EYE_SAMPLE, EventConstants.BINOCULAR_EYE_SAMPLE,
             EventConstants.GAZEPOINT_SAMPLE)  # GazePoint's: binocular, with the same status
    last_sent = 0.0
    while parent_alive():
        try:
            if commands.get_nowait() == STOP:
                return
        except queue.Empty:
            pass
        samples = [event for event in tracker.getEvents() if event.type in kinds]
        offset = pylsl.local_clock() - Computer.getTime()  # ioHub's clock and LSL's: both the monotonic clock
        if samples or time.monotonic() - last_sent >= ALIVE_EVERY_S:
            gaze = [gaze_of(sample) for sample in samples]
            events.put(GazeSamples([sample.time + offset for sample in samples],
                                   [x for x, _ in gaze], [y for _, y in gaze]))
            last_sent = time.monotonic()
        time.sleep(POLL_S)


def gaze_of(sample: Any) -> tuple[float | None, float | None]:
    """Where a sample says the eye looks, or (None, None) where it has no valid gaze.

    ioHub's sample status: monocular 0 valid, anything else not; binocular (and GazePoint's) 0 both eyes
    valid, 2 the right eye missing, 20 the left, 22 both. A binocular sample is the mean of its valid eyes.
    Any other status, and gaze that is not a finite number, fails closed (no gaze)."""
    status: Any = getattr(sample, "status", None)
    if hasattr(sample, "left_gaze_x"):
        eyes = {0: ("left", "right"), 2: ("left",), 20: ("right",)}.get(status, ())
        if not eyes:
            return None, None
        points = [(_number(getattr(sample, f"{eye}_gaze_x")), _number(getattr(sample, f"{eye}_gaze_y")))
                  for eye in eyes]
        valid = [(x, y) for x, y in points if x is not None and y is not None]
        if len(valid) < len(points):
            return None, None
        return sum(x for x, _ in valid) / len(valid), sum(y for _, y in valid) / len(valid)
    if status != 0:
        return None, None
    x, y = _number(sample.gaze_x), _number(sample.gaze_y)
    return (x, y) if x is not None and y is not None else (None, None)


def _number(value: Any) -> float | None:
    """A finite float, or None (ioHub's packages send None, NaN or text where they have nothing)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _calibrate(tracker: Any, setup: CalibrationSetup) -> Any:
    """The tracker's calibration, shown over the rig's window, with a target drawn round a dot that looks
    like the rig's fixation point."""
    from psychopy import visual
    from psychopy.hardware.eyetracker import EyetrackerCalibration

    from compactrig.rig.presenter.window import Stage
    rig = setup.rig
    stage = Stage(rig)
    try:
        background = [rig.background] * 3
        dot = max(rig.fixation_size_px / 2, 2.0)
        target = visual.TargetStim(stage.win, radius=max(rig.degrees_to_pixels(0.5), 4 * dot), innerRadius=dot,
                                   fillColor=background, borderColor=[255, 255, 255],
                                   innerFillColor=list(rig.fixation_colour), colorSpace="rgb255", units="pix")
        calibration = EyetrackerCalibration(stage.win, tracker, target, units="pix", colorSpace="rgb255",
                                            progressMode="time" if setup.paced else "space",
                                            targetLayout=CALIBRATION_LAYOUTS[setup.points])
        calibration.run()
        return calibration.last
    finally:
        stage.win.close()
