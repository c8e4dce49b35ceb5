"""The ``iohub`` gate: fixation from an eye tracker PsychoPy's ioHub drives, and its calibration.

Any ioHub eye tracker (EyeLink, Tobii, GazePoint, ... through their PsychoPy packages; MouseGaze, the
mouse as gaze, to try it out): ``tracker`` names its ioHub device class, ``settings`` its ioHub settings.
The tracker runs in a process of its own (``iohub_tracker``); this gate only reads its samples and
decides as ``plugins.gaze_window.GazeGate`` does: inside ``window_deg`` of the fixation point for
``hold_s`` before a trial, inside throughout it, failing closed on lost samples and on silence. A
tracker process that ends or hangs mid-session is a fixation break, and is started again until it
answers. ``calibrate`` runs the tracker's own calibration (the Rig view's button and ``compactrig rig
calibrate``): the tracker keeps it for the samples it sends afterwards.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from typing import Any

from compactrig.engine.errors import CompactRigError
from compactrig.plugins.gaze_window import GAZE_OPTIONS, GazeGate
from compactrig.plugins.sources.base import Option
from compactrig.rig.presenter.iohub_process import (
    CALIBRATION_LAYOUTS,
    Calibrated,
    CalibrationSetup,
    GazeSamples,
    TrackerReady,
    TrackerSetup,
)
from compactrig.rig.presenter.iohub_tracker import TrackerProcess
from compactrig.rig.presenter.rig import RigConfig

DEVICE_CLASS = re.compile(r"eyetracker\.hw(\.[A-Za-z_][A-Za-z0-9_]*)+\.EyeTracker")
RESTART_S = 5.0
"""A tracker process that ended is started again this long after (mid-session; the gate stays closed)."""
HUNG_S = 5.0
"""A tracker process that has sent nothing for this long is taken for hung, ended and started again."""


class IohubGate(GazeGate):
    name = "iohub"
    options = (
        Option("tracker", str, "", "the ioHub eye-tracker class: eyetracker.hw.sr_research.eyelink.EyeTracker "
               "(EyeLink), eyetracker.hw.tobii.EyeTracker, eyetracker.hw.gazepoint.gp3.EyeTracker, or "
               "eyetracker.hw.mouse.EyeTracker (MouseGaze: the mouse as gaze, to try it out)"),
        Option("settings", str, "{}", "the tracker's ioHub settings, a JSON object (or a TOML table), e.g. "
               '{"runtime_settings": {"sampling_rate": 500}}'),
        *GAZE_OPTIONS,
        Option("start_timeout_s", float, 30.0, "how long ioHub and the tracker may take to start, s", 1.0, 600.0),
        Option("calibration_points", int, 9, "calibration targets: 3, 5, 9 or 13"),
        Option("calibration_paced", bool, True, "calibration targets advance by themselves (else press space)"),
    )

    def __init__(self, **settings: Any) -> None:
        if isinstance(settings.get("settings"), dict):  # a TOML table in the rig file
            settings = {**settings, "settings": json.dumps(settings["settings"])}
        super().__init__(**settings)
        tracker = self.settings["tracker"].strip()
        if not DEVICE_CLASS.fullmatch(tracker):
            raise CompactRigError(f"gate 'iohub': tracker = {tracker!r}: name the ioHub eye-tracker class, e.g. "
                                  "eyetracker.hw.sr_research.eyelink.EyeTracker, or eyetracker.hw.mouse.EyeTracker "
                                  "(the mouse as gaze)")
        self.tracker = tracker
        self.device_settings = _device_settings(self.settings["settings"])
        timeout = self.settings["start_timeout_s"]
        if not (math.isfinite(timeout) and 0 < timeout <= 600):
            raise CompactRigError(f"gate 'iohub': start_timeout_s = {timeout:g}: seconds above 0, at most 600")
        if self.settings["calibration_points"] not in CALIBRATION_LAYOUTS:
            raise CompactRigError(f"gate 'iohub': calibration_points = {self.settings['calibration_points']}: "
                                  "3, 5, 9 or 13")
        self._process: TrackerProcess | None = None
        self._ended_at: float | None = None
        self._ended_why = ""

    def tracker_setup(self, calibration: CalibrationSetup | None = None) -> TrackerSetup:
        """What the tracker process starts with: this gate's tracker on the rig's screen."""
        rig = self.rig
        if rig is None:
            raise CompactRigError("gate 'iohub' needs the rig's screen (use_screen) before it connects")
        return TrackerSetup(self.tracker, self.device_settings, rig.screen_index,
                            rig.width_cm * 10 / rig.resolution[0], rig.distance_cm * 10, calibration)

    def connect(self) -> None:
        self._process = TrackerProcess(self.tracker_setup()).start()
        try:
            ready = self._process.wait_for(TrackerReady, self.settings["start_timeout_s"])
        except CompactRigError as error:
            self.close()
            raise CompactRigError(f"gate 'iohub': {error}") from None
        self.place_window(ready.screen_px)

    def _update(self, now: float) -> None:
        process = self._process
        assert process is not None, "connect() first"
        for event in process.poll():
            if isinstance(event, GazeSamples):
                for stamp, x, y in zip(event.stamps, event.x, event.y):
                    self.add_gaze(stamp, x, y, now)
            elif isinstance(event, TrackerReady):  # a restarted tracker
                self.place_window(event.screen_px)
        clock = time.monotonic()
        if self._ended_at is None:
            why, silent = process.failure, clock - process.last_heard
            if why is None and process.ready is not None and silent > HUNG_S:
                why = f"the eye tracker sent nothing for {HUNG_S:g} s"
            elif why is None and process.ready is None and silent > self.settings["start_timeout_s"]:
                why = f"the eye tracker did not start within {self.settings['start_timeout_s']:g} s"
            if why is not None:
                self._ended_why, self._ended_at = why, clock
                process.stop(timeout=0.2, grace=0.5)  # briefly: the runner is waiting on this gate
        elif clock - self._ended_at >= RESTART_S:
            self._ended_at = None
            self._process = TrackerProcess(self.tracker_setup()).start()

    def break_time(self, since: float, now: float) -> float | None:
        broke = super().break_time(since, now)
        if broke is not None and self._ended_at is not None:
            self.break_reason = f"eye tracker stopped ({self._ended_why}); starting it again"
        return broke

    def close(self) -> None:
        if self._process is not None:
            self._process.stop()
        self._process = None


def _device_settings(text: str) -> dict[str, Any]:
    try:
        settings = json.loads(text)
    except ValueError as error:
        raise CompactRigError(f"gate 'iohub': settings is not JSON ({error}); write the tracker's ioHub "
                              'settings as an object, e.g. {"runtime_settings": {"sampling_rate": 500}}') from None
    if not isinstance(settings, dict):
        raise CompactRigError("gate 'iohub': settings must be a JSON object (the tracker's ioHub settings)")
    taken = sorted({"name", "enable"} & set(settings))
    if taken:
        raise CompactRigError(f"gate 'iohub': settings.{taken[0]} is CompactRig's to set; leave it out")
    return settings


def calibrate(rig: RigConfig, cancelled: Callable[[], bool] = lambda: False) -> str | None:
    """Run the calibration of ``rig``'s ioHub eye tracker; one line saying how it went (None: cancelled).

    The tracker's own procedure on the rig's screen (the operator starts it with space; Escape aborts,
    an error). MouseGaze's is ioHub's mock: its targets are shown, nothing is calibrated, and it ends OK.
    """
    if rig.gate_name != "iohub":
        raise CompactRigError(f"calibration is for the 'iohub' gate; this rig's gate is {rig.gate_name!r} (set [gate] "
                              "name = \"iohub\" and its tracker; other trackers calibrate in their own software)")
    gate = IohubGate(**rig.gate_options)
    gate.use_screen(rig)
    process = TrackerProcess(gate.tracker_setup(CalibrationSetup(rig, gate.settings["calibration_points"],
                                                                 gate.settings["calibration_paced"]))).start()
    done = None
    try:
        if process.wait_for(TrackerReady, gate.settings["start_timeout_s"], cancelled) is not None:
            done = process.wait_for(Calibrated, None, cancelled)
    finally:
        if done is None:  # cancelled or failed: the tracker's screens may be waiting for keys
            process.stop(timeout=0.5, grace=0.5)
        else:
            process.stop()
    if done is None:
        return None
    return calibration_outcome(done.result)


def calibration_outcome(result: Any) -> str:
    """The tracker's calibration result as one line; an aborted or failed calibration is an error."""
    if not isinstance(result, dict):
        raise CompactRigError(f"the eye tracker's calibration failed ({result}); see PsychoPy's "
                              "iohub_last_session.log")
    text = ", ".join(f"{key} {value}" for key, value in result.items())
    if any("ABORT" in str(value).upper() for value in result.values()):
        raise CompactRigError(f"calibration aborted ({text}); run it again to calibrate")
    return f"calibration done ({text})"
