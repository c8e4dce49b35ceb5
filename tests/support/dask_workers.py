"""A command's Dask workers as processes, and waiting for the moment to kill one."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import psutil


def wait_until(process: subprocess.Popen, condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    """Return once ``condition()`` holds; fail if ``process`` ends first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the run ended before {what}: {process.stderr.read()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def dask_workers(process: subprocess.Popen) -> list[psutil.Process]:
    """The worker processes of the ``LocalCluster`` a command started (children of its nannies)."""
    return [c for c in psutil.Process(process.pid).children(recursive=True)
            if "multiprocessing" in " ".join(c.cmdline()) and "resource_tracker" not in " ".join(c.cmdline())]
