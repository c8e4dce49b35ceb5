"""Every line the window said, kept whole: the status bar shows one at a time and cuts long ones.

The status bar's "Messages" button counts them and opens a dialog with each line in full, timed, newest
last, selectable to copy into a lab notebook or a bug report.
"""

from __future__ import annotations

import time

from PyQt6.QtWidgets import QDialog, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

KEPT = 1000
"""Lines kept (the oldest go first)."""


class MessagesButton(QPushButton):
    """The status bar's button; ``add`` each line said, a click shows them all."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Messages (0)", parent)
        self.setFlat(True)
        self.setToolTip("every message and warning of this run, in full")
        self.lines: list[str] = []
        self.dialog = QDialog(self)
        self.dialog.setWindowTitle("Messages")
        self.dialog.resize(720, 360)
        self.view = QPlainTextEdit(readOnly=True)  # type: ignore[call-overload]
        self.view.setMaximumBlockCount(KEPT)
        QVBoxLayout(self.dialog).addWidget(self.view)
        self.clicked.connect(self.show_all)

    def add(self, line: str) -> None:
        self.lines = [*self.lines[-(KEPT - 1):], line]
        self.view.appendPlainText(f"{time.strftime('%H:%M:%S')}  {line}")
        self.setText(f"Messages ({len(self.lines)})")

    def show_all(self) -> None:
        self.dialog.show()
        self.dialog.raise_()
        scroll = self.view.verticalScrollBar()
        if scroll is not None:
            scroll.setValue(scroll.maximum())
