"""Fixation from gaze positions: a circular window in degrees around the fixation point.

The tracker reports gaze in its display's pixels, from the screen's centre (x right, y up: ioHub's
``pix`` units). The fixation point is the centre of the presenter's window (``[image] position_deg``
is measured from it), which is the screen's centre unless the window is smaller than the screen; pixels
become degrees with the rig's own ``pixels_per_degree``, the conversion that places the images. A
sample is fixating when the gaze lies within ``window_deg`` of the fixation point; a sample without
gaze (the tracker lost the eye) is a break, and so is silence (``SampledGate``): fixation fails closed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from compactrig.engine.errors import CompactRigError
from compactrig.plugins.gates import SampledGate
from compactrig.plugins.sources.base import Option

if TYPE_CHECKING:
    from compactrig.rig.presenter.rig import RigConfig


@dataclass(frozen=True)
class FixationWindow:
    """Where the fixation point lies in the tracker's pixels, and how large the window around it is."""

    centre: tuple[float, float]
    """The fixation point, in pixels from the screen's centre (x right, y up)."""
    pixels_per_degree: float
    radius_deg: float

    @classmethod
    def on_screen(cls, rig: RigConfig, screen_px: tuple[int, int], radius_deg: float) -> FixationWindow:
        """The window for ``rig``'s presenter on a screen of ``screen_px`` pixels: full screen, its centre;
        otherwise the centre of the presenter's window, placed at ``[screen] position`` or, without one,
        centred as PsychoPy centres it (whole pixels from the top-left corner)."""
        width, height = screen_px
        if rig.fullscreen:
            return cls((0.0, 0.0), rig.pixels_per_degree, radius_deg)
        w, h = rig.resolution
        left, top = rig.window_position or (int((width - w) / 2), int((height - h) / 2))
        return cls((left + w / 2 - width / 2, height / 2 - (top + h / 2)), rig.pixels_per_degree, radius_deg)

    def fault(self, x: float | None, y: float | None) -> str | None:
        """None when gaze at (``x``, ``y``) is inside the window; otherwise why this sample is a break."""
        if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)):
            return "eye lost (the tracker reports no gaze)"
        off = math.hypot(x - self.centre[0], y - self.centre[1]) / self.pixels_per_degree
        if off <= self.radius_deg:
            return None
        return f"gaze {off:.1f} deg from the fixation point (window {self.radius_deg:g} deg)"


HOLD_MAX_S = 10.0
"""The longest hold asked for (well inside the fixation history a gate keeps, ``gates.HISTORY_S``)."""
GAZE_OPTIONS = (
    Option("window_deg", float, 2.0, "radius of the fixation window around the fixation point, deg"),
    Option("hold_s", float, 0.3, "gaze held inside the window this long before a trial starts, s"),
    Option("stale_after_s", float, 0.1, "no gaze sample for this long closes the gate (fails closed), s"),
)


class GazeGate(SampledGate):
    """A gate over gaze samples; subclasses read a tracker and hand each sample to ``add_gaze``.

    A trial starts once the gaze has stayed inside the window for ``hold_s`` (acquired and held); during
    the trial every sample must be inside, and one outside, one without gaze or a silence of
    ``stale_after_s`` is a fixation break, dated by the sample's own time stamp.
    """

    options: tuple[Option, ...] = GAZE_OPTIONS

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        window, hold = self.settings["window_deg"], self.settings["hold_s"]
        if not 0 < window <= 90:
            raise CompactRigError(f"gate {self.name!r}: window_deg = {window:g}: the fixation window's radius "
                                  "in degrees, above 0 and at most 90")
        if not 0 <= hold <= HOLD_MAX_S:
            raise CompactRigError(f"gate {self.name!r}: hold_s = {hold:g}: seconds of fixation before a trial, "
                                  f"0-{HOLD_MAX_S:g}")
        self.hold_s = hold
        self.rig: RigConfig | None = None
        self.window: FixationWindow | None = None
        """Set once the tracker has said how large its screen is (``place_window``)."""

    def use_screen(self, rig: RigConfig) -> None:
        self.rig = rig

    def place_window(self, screen_px: tuple[int, int]) -> None:
        """The tracker's screen is ``screen_px`` pixels: put the window around the fixation point on it."""
        if self.rig is None:
            raise CompactRigError(f"gate {self.name!r} needs the rig's screen (use_screen) before it connects")
        self.window = FixationWindow.on_screen(self.rig, screen_px, self.settings["window_deg"])

    def add_gaze(self, stamp: float, x: float | None, y: float | None, now: float) -> None:
        """One gaze sample: ``stamp`` on the LSL clock, (``x``, ``y``) in the tracker's pixels from the
        screen's centre, or None where the tracker had no gaze."""
        assert self.window is not None, "place_window() first"
        self._add(stamp, self.window.fault(x, y), now)
