"""An LSL inlet's clock correction, kept fresh, and pylsl's exceptions wherever this pylsl keeps them.

Remote time stamps plus the correction are local LSL times. liblsl measures the offset in the
background; asking for it without waiting returns the last value, so polling never blocks. The
correction used is the median of the last ``KEPT`` finite answers, so one wild answer (a peer's
clock stepping, a corrupt probe) does not move every time stamp.
"""

from __future__ import annotations

import math
import statistics
from collections import deque

try:
    from pylsl.util import LostError  # pylsl >= 1.17
    from pylsl.util import TimeoutError as LslTimeoutError
except ImportError:  # pragma: no cover - older pylsl
    from pylsl import LostError
    from pylsl import TimeoutError as LslTimeoutError

REFRESH_S = 5.0
"""How often the correction is asked for again (the two clocks drift slowly)."""
KEPT = 5
"""Answers the median is taken over (25 s at ``REFRESH_S``)."""


class ClockCorrection:
    """``value`` turns an inlet's time stamps into local LSL times."""

    def __init__(self, inlet, now: float, first_timeout: float) -> None:
        self._inlet = inlet
        self.value = 0.0
        self._answers: deque[float] = deque(maxlen=KEPT)
        self._asked_at = float("-inf")
        self.refresh(now, first_timeout)

    def refresh(self, now: float, timeout: float = 0.0) -> None:
        """Ask again if the last answer is older than ``REFRESH_S`` (or it never answered)."""
        if now - self._asked_at <= REFRESH_S:
            return
        try:
            answer = self._inlet.time_correction(timeout)
            self._asked_at = now
        except (LslTimeoutError, LostError):
            return
        if isinstance(answer, float) and math.isfinite(answer):
            self._answers.append(answer)
            self.value = statistics.median(self._answers)


__all__ = ["ClockCorrection", "LostError", "LslTimeoutError"]
