"""A window job's thread has ended by the time its ending signal is served, so whoever then waits for the thread
(closing the window, a test) never waits on the GUI's own event loop. A queued quit hung CI at stop 48: the
thread's quit was still in the queue when the waiter stopped serving events."""

from __future__ import annotations

import pytest
from PyQt6.QtCore import QObject

from compactrig.engine.errors import CompactRigError
from compactrig.engine.models.fast_predict import Cancelled
from compactrig.gui.worker import Job


def succeed(progress, cancelled):
    return 1


def fail(progress, cancelled):
    raise CompactRigError("the responses file is unreadable")


def call_off(progress, cancelled):
    raise Cancelled()


@pytest.mark.parametrize(("work", "signal"), [(succeed, "finished"), (fail, "failed"), (call_off, "called_off")])
def test_the_thread_has_ended_when_the_job_says_it_ended(qtbot, work, signal):
    owner = QObject()
    for _ in range(40):  # the old queued quit lost this race about one time in three
        job = Job(work)
        with qtbot.waitSignal(getattr(job, signal), timeout=5000):
            job.start(owner)
        assert job.worker_thread is not None and job.worker_thread.wait(2000), "the job's thread is still running"
