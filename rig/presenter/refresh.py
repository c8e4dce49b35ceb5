"""The monitor's measured refresh against the rig file's.

Durations are counted in frames at the rig file's ``refresh_hz``; on a monitor that runs at another
rate every image is shown for the wrong time (a 60 Hz rig file on a 360 Hz display shows each image
for a sixth of what it means). The presenter measures the rate when its window opens; this is the
one judgement of that measurement: the command line warns and goes on, the window asks first, and
the session folder, the log and the report say it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REFRESH_TOLERANCE = 0.02
"""A measured refresh more than this fraction off the rig file's is a wrong refresh."""


@dataclass(frozen=True)
class RefreshCheck:
    """The presenter's measured refresh (None: its frame intervals were too irregular to measure) and the rig
    file's; ``paced``: the rig paces each frame at its own refresh (``pace_frames``, for a display without
    vsync), so durations hold whatever the display measures."""

    measured_hz: float | None
    rig_hz: float
    paced: bool = False

    @property
    def differs(self) -> bool:
        """Durations would be wrong: measured, not paced, and more than ``REFRESH_TOLERANCE`` off."""
        return (not self.paced and self.measured_hz is not None
                and abs(self.measured_hz - self.rig_hz) > REFRESH_TOLERANCE * self.rig_hz)

    def line(self) -> str:
        """What the user reads, in one line (callers mark a differing one as a warning)."""
        if self.measured_hz is None:
            return (f"refresh not measured (irregular frame intervals); durations are counted in frames at the "
                    f"rig file's {self.rig_hz:g} Hz")
        measured = f"measured refresh {self.measured_hz:.1f} Hz"
        if self.paced:
            return f"{measured}; frames paced at the rig file's {self.rig_hz:g} Hz (pace_frames)"
        if not self.differs:
            return f"{measured} (rig file: {self.rig_hz:g} Hz)"
        share = 100 * self.rig_hz / self.measured_hz
        return (f"{measured} differs from the rig file's {self.rig_hz:g} Hz by more than "
                f"{100 * REFRESH_TOLERANCE:g} %: durations are counted in frames, so each image is shown for "
                f"{share:.0f} % of the time the rig file means; set refresh_hz to the monitor's rate (or "
                "pace_frames = true on a display without vsync)")

    def record(self) -> dict[str, Any]:
        """As ``session.json`` keeps it (one per run of the session)."""
        return {"measured_hz": self.measured_hz, "rig_hz": self.rig_hz, "paced": self.paced,
                "differs": self.differs}

    @classmethod
    def from_record(cls, record: Any) -> RefreshCheck | None:
        """A ``record`` read back from ``session.json``; None when it is not one (an edited file)."""
        if not isinstance(record, dict):
            return None
        measured, rig_hz = record.get("measured_hz"), record.get("rig_hz")
        numbers = (int, float)
        if not isinstance(rig_hz, numbers) or not (measured is None or isinstance(measured, numbers)):
            return None
        return cls(None if measured is None else float(measured), float(rig_hz), bool(record.get("paced", False)))
