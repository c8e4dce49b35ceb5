"""The closed loop's long work as jobs: run anywhere (a thread), cancelled by a flag, ended on the owner's thread.

A ``LoopJob`` is a plain function ``work(progress, cancelled)`` working on snapshots, plus what its
controller does with the outcome. Whoever runs it (the window's ``gui.worker.Job``, ``ThreadJobs``
at the command line and in tests) calls ``work`` on a thread of its own and then exactly one of
``finish``, ``fail`` or ``call_off`` on the controller's thread, so the controller's state is only
ever touched from one thread.
"""

from __future__ import annotations

import queue
import threading
import traceback
from collections.abc import Callable
from typing import Any

from compactrig.engine.errors import CompactRigError
from compactrig.engine.models.fast_predict import Cancelled
from compactrig.engine.progress import Progress

Work = Callable[[Progress, Callable[[], bool]], Any]


class LoopJob:
    """One piece of the loop's long work and its three endings."""

    def __init__(self, kind: str, label: str, work: Work, on_done: Callable[[Any], None],
                 on_failed: Callable[[str], None], on_called_off: Callable[[], None]) -> None:
        self.kind = kind
        """``features``, ``refit``, ``choose``, ``synthesize`` or ``compact``."""
        self.label = label
        self._work, self._on_done, self._on_failed, self._on_called_off = work, on_done, on_failed, on_called_off
        self._cancelled = False
        self.ended = False

    def cancel(self) -> None:
        """Ask the work to stop at its next check (synthesis keeps its best images so far)."""
        self._cancelled = True

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def run(self, progress: Progress, cancelled: Callable[[], bool] | None = None) -> Any:
        """The work (on any thread); ``cancelled`` is the runner's own flag, honoured beside ``cancel``."""
        return self._work(progress, lambda: self._cancelled or (cancelled is not None and cancelled()))

    def finish(self, result: Any) -> None:
        self._end(self._on_done, result)

    def fail(self, text: str) -> None:
        self._end(self._on_failed, text)

    def call_off(self) -> None:
        self._end(self._on_called_off)

    def _end(self, handler: Callable[..., None], *args: Any) -> None:
        if not self.ended:  # one ending only, whoever reports it
            self.ended = True
            handler(*args)


class ThreadJobs:
    """Runs loop jobs in daemon threads; their endings wait in a queue until the owner's thread ``pump``s.

    ``on_progress(job, done, total, phase)`` is called on the job's thread; ``on_unexpected(job, traceback)``
    receives the traceback of an error that is not a ``CompactRigError`` (the job fails with one line).
    """

    def __init__(self, on_progress: Callable[[LoopJob, int, int | None, str], None] | None = None,
                 on_unexpected: Callable[[LoopJob, str], None] | None = None) -> None:
        self._endings: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._on_progress = on_progress or (lambda job, done, total, phase: None)
        self._on_unexpected = on_unexpected or (lambda job, text: None)

    def start(self, job: LoopJob) -> None:
        def target() -> None:
            try:
                result = job.run(lambda done, total, phase="": self._on_progress(job, done, total, phase))
            except Cancelled:
                self._endings.put(job.call_off)
            except CompactRigError as error:
                text = str(error)
                self._endings.put(lambda: job.fail(text))
            except Exception as error:  # noqa: BLE001 - one line for the user, the traceback for the log
                self._on_unexpected(job, traceback.format_exc())
                text = f"{type(error).__name__}: {error}"
                self._endings.put(lambda: job.fail(text))
            else:
                self._endings.put(lambda: job.finish(result))

        thread = threading.Thread(target=target, name=f"loop-{job.kind}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def pump(self) -> int:
        """Run the endings that arrived (on the owner's thread); how many there were."""
        ran = 0
        while True:
            try:
                ending = self._endings.get_nowait()
            except queue.Empty:
                return ran
            ending()
            ran += 1

    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def join(self, timeout: float | None = None) -> None:
        """Wait for every job's thread (cancel them first to make it quick)."""
        for thread in list(self._threads):
            thread.join(timeout)
