"""Where the presenter's window will open, and how much of the CompactRig window it will hide.

On a rig the presenter is full screen on the monitor the animal sees, and the experimenter's
window is on another. On a laptop or a one-screen office machine both share a screen, and a
full-screen presenter hides the very buttons that stop it. The Rig view says so before Start,
and offers a half-size window in the corner farthest from this window.
"""

from __future__ import annotations

from dataclasses import dataclass

from PyQt6.QtCore import QPoint, QRect, QSize
from PyQt6.QtGui import QGuiApplication
from PyQt6.QtWidgets import QWidget

from compactrig.gui.qt_parts import top_window
from compactrig.rig.presenter.rig import RigConfig


@dataclass(frozen=True)
class Placement:
    """The presenter's window on its screen and what it hides of the CompactRig window."""

    screen: QRect
    window: QRect
    covered: float
    """Fraction of the CompactRig window's area under the presenter's window (0 when apart)."""

    def describe(self, rig: RigConfig) -> str:
        if rig.fullscreen:
            where = f"full screen on screen {rig.screen_index}"
        else:
            how = "at" if rig.window_position else "centred at"
            where = (f"{self.window.width()}x{self.window.height()} {how} {self.window.x() - self.screen.x()},"
                     f"{self.window.y() - self.screen.y()} on screen {rig.screen_index}")
        return f"The presenter opens {where}, where this window is: it will cover {self.covered:.0%} of this window."

    def far_corner(self, rig: RigConfig, gui: QRect) -> tuple[int, int]:
        """Top-left position (on the screen) of a half-size window in the screen corner farthest from ``gui``."""
        size = QSize(rig.resolution[0] // 2, rig.resolution[1] // 2)
        corners = [QPoint(x, y) for x in (0, self.screen.width() - size.width())
                   for y in (0, self.screen.height() - size.height())]
        centre = gui.center() - self.screen.topLeft()

        def distance(corner: QPoint) -> int:
            return (QRect(corner, size).center() - centre).manhattanLength()
        best = max(corners, key=distance)
        return max(0, best.x()), max(0, best.y())


def presenter_placement(rig: RigConfig, gui: QWidget) -> Placement | None:
    """Where ``rig``'s presenter window opens relative to ``gui``'s window; None when its screen does not exist
    here (the presenter says so when it starts)."""
    screens = QGuiApplication.screens()
    if rig.screen_index >= len(screens):
        return None
    screen = screens[rig.screen_index].geometry()
    if rig.fullscreen:
        window = QRect(screen)
    else:
        size = QSize(*rig.resolution)
        if rig.window_position:
            window = QRect(screen.topLeft() + QPoint(*rig.window_position), size)
        else:
            window = QRect(QPoint(0, 0), size)
            window.moveCenter(screen.center())
    frame = top_window(gui).frameGeometry()
    overlap = frame.intersected(window)
    area = frame.width() * frame.height()
    covered = overlap.width() * overlap.height() / area if area and not overlap.isEmpty() else 0.0
    return Placement(screen, window, covered)
