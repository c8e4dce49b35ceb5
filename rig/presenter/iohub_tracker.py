"""The parent side of the eye-tracker process: start it, drain what it sends, end it and its ioHub server.

Nothing here blocks on the child except ``wait_for``, which has a deadline and a cancel. Ending is
thorough: the child is asked to quit ioHub, killed if it does not, and the ioHub server (a process the
child started) is ended too if it outlives the child, so no tracker process is left behind.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import tempfile
import time
from collections.abc import Callable
from typing import Any

from compactrig.engine.errors import CompactRigError
from compactrig.rig.presenter.child_start import start_deaf_to_ctrl_c
from compactrig.rig.presenter.iohub_process import STOP, TrackerFailed, TrackerReady, TrackerSetup, tracker_main

SERVER_EXIT_S = 2.0
"""How long the ioHub server may take to notice its client is gone and end itself, before it is ended."""


class TrackerProcess:
    """One eye-tracker process (``iohub_process.tracker_main``) for one ``TrackerSetup``."""

    def __init__(self, setup: TrackerSetup) -> None:
        context = multiprocessing.get_context("spawn")
        self._commands = context.Queue()
        self._events = context.Queue()
        handle, self._output = tempfile.mkstemp(prefix="compactrig-iohub-", suffix=".log")
        os.close(handle)
        self._process = context.Process(target=tracker_main,
                                        args=(setup, self._output, self._commands, self._events),
                                        name="compactrig-eye-tracker", daemon=True)
        self.ready: TrackerReady | None = None
        self.failure: str | None = None
        """Why the process ended, once it has (its own last word, or its exit code)."""
        self.last_heard = time.monotonic()

    def start(self) -> TrackerProcess:
        start_deaf_to_ctrl_c(self._process)
        self.last_heard = time.monotonic()
        return self

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def poll(self) -> list[Any]:
        """What the child sent since the last call; its end (``failure``) noted once it has ended."""
        events = []
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            self.last_heard = time.monotonic()
            if isinstance(event, TrackerReady):
                self.ready = event
            elif isinstance(event, TrackerFailed):
                self.failure = event.message
            events.append(event)
        if self.failure is None and not self._process.is_alive() and self._process.exitcode is not None:
            self.failure = f"the eye-tracker process ended (exit code {self._process.exitcode})"
        return events

    def wait_for(self, kind: type, timeout: float | None, cancelled: Callable[[], bool] = lambda: False,
                 collected: list[Any] | None = None) -> Any:
        """Poll until an event of ``kind`` arrives (others go to ``collected``); the child's failure or end, the
        timeout (None: none) and ``cancelled`` end the wait: a ``CompactRigError`` (cancelled: None)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while deadline is None or time.monotonic() < deadline:
            for event in self.poll():
                if isinstance(event, kind):
                    return event
                if collected is not None:
                    collected.append(event)
            if self.failure is not None:
                raise CompactRigError(self.failure)
            if cancelled():
                return None
            time.sleep(0.01)
        raise CompactRigError(f"the eye tracker did not start within {timeout:g} s (start_timeout_s); is it on "
                              "and connected?")

    def stop(self, timeout: float = 5.0, grace: float = SERVER_EXIT_S) -> None:
        """Ask the child to quit ioHub and end (``timeout``); kill it if it does not; then end whatever it
        started that is still there after ``grace`` (its ioHub server, which ends itself once its client is
        gone, unless it hangs)."""
        started = self._descendants()
        if self._process.is_alive():
            self._commands.put(STOP)
            self._process.join(timeout)
        if self._process.is_alive():
            started += self._descendants()  # a server launched meanwhile
            self._process.kill()
            self._process.join(1.0)
        self._end(started + self._server(), grace)
        with contextlib.suppress(OSError):
            os.remove(self._output)
        if self._process.pid is not None:
            self._commands.cancel_join_thread()
            self._events.cancel_join_thread()

    def _descendants(self) -> list[Any]:
        """The processes the child started (found while it is alive: once it is gone they have no parent)."""
        import psutil  # a PsychoPy dependency: present wherever the tracker process could run
        try:
            return list(psutil.Process(self._process.pid).children(recursive=True)) if self.alive else []
        except psutil.Error:
            return []

    def _server(self) -> list[Any]:
        """The ioHub server the child reported, if it is still that very process (pid and start time)."""
        import psutil
        self.poll()
        if self.ready is None or self.ready.server_pid is None:
            return []
        try:
            server = psutil.Process(self.ready.server_pid)
            return [server] if server.create_time() == self.ready.server_started else []
        except psutil.Error:
            return []

    @staticmethod
    def _end(processes: list[Any], grace: float) -> None:
        """Give ``processes`` ``grace`` seconds to end by themselves, then kill those left."""
        import psutil
        _, left = psutil.wait_procs(processes, timeout=grace)
        for process in left:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(left, timeout=SERVER_EXIT_S)
