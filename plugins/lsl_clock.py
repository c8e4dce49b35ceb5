"""An LSL inlet's clock correction, kept fresh, and pylsl's exceptions wherever this pylsl keeps them.

Remote time stamps plus the correction are local LSL times. liblsl measures the offset in the
background; asking for it without waiting returns the last value, so polling never blocks.
"""

from __future__ import annotations

try:
    from pylsl.util import LostError, TimeoutError as LslTimeoutError  # pylsl >= 1.17
except ImportError:  # pragma: no cover - older pylsl
    from pylsl import LostError, TimeoutError as LslTimeoutError  # type: ignore[attr-defined, no-redef]

REFRESH_S = 5.0
"""How often the correction is asked for again (the two clocks drift slowly)."""


class ClockCorrection:
    """``value`` turns an inlet's time stamps into local LSL times."""

    def __init__(self, inlet, now: float, first_timeout: float) -> None:
        self._inlet = inlet
        self.value = 0.0
        self._asked_at = float("-inf")
        self.refresh(now, first_timeout)

    def refresh(self, now: float, timeout: float = 0.0) -> None:
        """Ask again if the last answer is older than ``REFRESH_S`` (or it never answered)."""
        if now - self._asked_at <= REFRESH_S:
            return
        try:
            self.value = self._inlet.time_correction(timeout)
            self._asked_at = now
        except (LslTimeoutError, LostError):
            pass


__all__ = ["ClockCorrection", "LostError", "LslTimeoutError"]
