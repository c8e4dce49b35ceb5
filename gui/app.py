"""Start the CompactRig window (``compactrig`` with no sub-command)."""

from __future__ import annotations

import sys

from PyQt6.QtWidgets import QApplication

from compactrig.gui.main_window import MainWindow


def run_app(argv: list[str] | None = None) -> int:
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    window = MainWindow()
    window.show()
    return app.exec()
