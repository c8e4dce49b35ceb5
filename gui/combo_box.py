"""A combo box that a mouse wheel passing over it does not change.

Forms sit in scroll areas: scrolling the Rig view with the pointer over the source choice used to
switch the source (and wipe the options typed for it). Here the wheel changes the choice only once
the user has clicked or tabbed into the box; otherwise the wheel scrolls what holds it.
"""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QWheelEvent
from PyQt6.QtWidgets import QComboBox, QWidget


class ComboBox(QComboBox):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def wheelEvent(self, event: QWheelEvent | None) -> None:  # noqa: N802 - Qt's name
        if self.hasFocus():
            super().wheelEvent(event)
        elif event is not None:
            event.ignore()
