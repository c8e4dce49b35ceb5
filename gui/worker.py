"""Long work off the GUI thread: a job in a QThread that reports progress and can be cancelled.

The work is a plain function ``work(progress, cancelled)`` from engine/ or stimuli/; the job
turns its progress calls into a Qt signal and its result or error into another, so the
window never freezes and a failing job shows a message instead of taking the app down: the
error's own line, or for an unexpected exception the line ``engine.crash_log`` gives after
logging the traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import QObject, QThread, pyqtSignal, pyqtSlot

from compactrig.engine.crash_log import report_unexpected
from compactrig.engine.errors import CompactRigError
from compactrig.engine.models.fast_predict import Cancelled
from compactrig.engine.progress import ForwardOnly, Progress

Work = Callable[[Progress, Callable[[], bool]], Any]


class Job(QObject):
    """Runs ``work`` once in its own thread; connect to the signals before ``start``."""

    progress = pyqtSignal(int, int, str)
    """(done, total, phase) of ``engine.progress.Progress``; an unknown total is sent as 0."""
    finished = pyqtSignal(object)
    failed = pyqtSignal(str)
    called_off = pyqtSignal()
    """The work stopped at a cancel without a result (views that track their jobs clear them here)."""

    def __init__(self, work: Work) -> None:
        super().__init__()
        self._work = work
        self._cancelled = False
        self.worker_thread: QThread | None = None
        self.label = ""
        """What a progress bar says while this job runs (set by the view that starts it)."""

    def cancel(self) -> None:
        self._cancelled = True

    @pyqtSlot()
    def run(self) -> None:
        try:
            result = self._work(ForwardOnly(self._report), lambda: self._cancelled)
        except Cancelled:
            self.called_off.emit()
        except CompactRigError as error:
            self.failed.emit(str(error))
        except Exception as error:  # noqa: BLE001 - a defect: one line in the window, the traceback logged
            self.failed.emit(report_unexpected(self.label or "a background job", error))
        else:
            self.finished.emit(result)

    def _report(self, done: int, total: int | None, phase: str = "") -> None:
        self.progress.emit(done, total or 0, phase)

    def start(self, parent: QObject) -> Job:
        """Move to a new thread (owned by ``parent``) and run there."""
        self.worker_thread = QThread(parent)
        self.moveToThread(self.worker_thread)
        self.worker_thread.started.connect(self.run)
        self.finished.connect(self.worker_thread.quit)
        self.failed.connect(self.worker_thread.quit)
        self.called_off.connect(self.worker_thread.quit)
        self.worker_thread.start()
        return self


class JobList:
    """The jobs one view started: kept until done, all cancelled and waited for when the window closes.

    After ``stop`` the view starts no more jobs (widgets being torn down emit signals that
    would otherwise start new ones, and a QThread still running at teardown aborts the app).
    """

    def __init__(self) -> None:
        self._jobs: list[Job] = []
        self.stopped = False

    def add(self, job: Job) -> Job:
        self._jobs = [j for j in self._jobs if j.worker_thread is not None and j.worker_thread.isRunning()] + [job]
        return job

    def __iter__(self):
        return iter(list(self._jobs))

    def __len__(self) -> int:
        return len(self._jobs)

    def stop(self) -> None:
        self.stopped = True
        for job in self._jobs:
            job.cancel()
            if job.worker_thread is not None:
                job.worker_thread.quit()
                job.worker_thread.wait()
        self._jobs.clear()
