"""Start the CompactRig window (``compactrig`` with no sub-command)."""

from __future__ import annotations

import sys
from types import TracebackType

from PyQt6.QtWidgets import QApplication

from compactrig.engine.crash_log import report_unexpected
from compactrig.engine.errors import CompactRigError
from compactrig.gui.main_window import MainWindow


def run_app(argv: list[str] | None = None) -> int:
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    window = MainWindow()
    report_errors_in(window)
    window.show()
    return app.exec()


def report_errors_in(window: MainWindow) -> None:
    """Make ``window``'s status bar where an exception no slot caught ends up (``sys.excepthook``, which PyQt
    calls for an exception raised in a slot on the GUI thread; without a hook of its own PyQt aborts the
    program). An expected problem (``CompactRigError``) shows its one line; anything else is a defect: its
    traceback goes to a log file (``report_unexpected``) and the status bar says, in one line, what failed and
    where the log is. The window keeps running either way. Jobs report their own failures
    (``compactrig.gui.worker.Job``)."""
    def hook(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):  # Ctrl-C in the terminal that started the window
            QApplication.quit()
            return
        if isinstance(error, CompactRigError):
            line = str(error)
        else:
            line = report_unexpected("the window's last action", error.with_traceback(trace))
        print(f"compactrig: error: {line}", file=sys.stderr)
        window.show_message(line, keep=True)

    sys.excepthook = hook
