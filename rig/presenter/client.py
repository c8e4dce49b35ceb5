"""The parent side of the presenter: start the process, send commands, collect events.

Nothing here blocks on the child: commands are queued, ``poll`` drains whatever
events have arrived. ``poll`` also sends heartbeats and notices within a second when
the child process has died (SIGKILL, crash) or stopped answering.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from typing import Any

from compactrig.engine.errors import CompactRigError
from compactrig.rig.presenter import protocol as msg
from compactrig.rig.presenter.child_start import start_deaf_to_ctrl_c
from compactrig.rig.presenter.rig import RigConfig
from compactrig.rig.presenter.window import presenter_main

HEARTBEAT_INTERVAL_S = 0.5
HEARTBEAT_TIMEOUT_S = 3.0


class Presenter:
    """A presenter process for one rig; use as a context manager or call ``shutdown``."""

    def __init__(self, rig: RigConfig, session: dict[str, str] | None = None) -> None:
        """``session`` describes the session to the marker outputs (names the session and stimulus set)."""
        self.rig = rig
        context = multiprocessing.get_context("spawn")
        self._commands = context.Queue()
        self._events = context.Queue()
        self._process = context.Process(target=presenter_main,
                                        args=(rig, self._commands, self._events, dict(session or {})),
                                        name="compactrig-presenter", daemon=True)
        self._ready = False
        self._closing = False
        self._death_reported = False
        self._heartbeat = 0
        self._last_beat_sent = 0.0
        self._last_reply = 0.0
        self._silence_reported = False

    def start(self) -> Presenter:
        start_deaf_to_ctrl_c(self._process)
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def send(self, command: Any) -> None:
        """Queue a command for the child (returns at once)."""
        self._commands.put(command)

    def poll(self) -> list[Any]:
        """Events that have arrived, plus ``PresenterDied`` / a not-responding error when due."""
        events = []
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            if isinstance(event, msg.Ready):
                self._ready, self._last_reply = True, time.monotonic()
            if isinstance(event, msg.HeartbeatReply):
                self._last_reply, self._silence_reported = time.monotonic(), False
                continue
            events.append(event)
        if not self._process.is_alive() and not self._closing and not self._death_reported:
            self._death_reported = True
            events.append(msg.PresenterDied(self._process.exitcode))
        elif self._ready and not self._closing and self._process.is_alive():
            events += self._beat()
        return events

    def _beat(self) -> list[Any]:
        now = time.monotonic()
        if now - self._last_beat_sent >= HEARTBEAT_INTERVAL_S:
            self._heartbeat += 1
            self._last_beat_sent = now
            self.send(msg.Heartbeat(self._heartbeat))
        if now - self._last_reply > HEARTBEAT_TIMEOUT_S and not self._silence_reported:
            self._silence_reported = True
            return [msg.PresenterError(f"presenter has not answered for {HEARTBEAT_TIMEOUT_S:g} s")]
        return []

    def wait_for(self, kind: type, timeout: float, collected: list[Any] | None = None) -> Any:
        """Poll (sleeping 10 ms between polls) until an event of ``kind`` arrives; others go to ``collected``.

        A fatal presenter error, the child's death or the timeout raise ``CompactRigError``.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.poll():
                if isinstance(event, kind):
                    return event
                if isinstance(event, msg.PresenterError) and event.fatal:
                    raise CompactRigError(event.message)
                if isinstance(event, msg.PresenterDied):
                    raise CompactRigError(f"the presenter process died (exit code {event.exitcode})")
                if collected is not None:
                    collected.append(event)
            time.sleep(0.01)
        raise CompactRigError(f"the presenter did not report {kind.__name__} within {timeout:g} s")

    def shutdown(self, timeout: float = 5.0) -> None:
        """Ask the child to close its window and exit; kill it if it does not."""
        if self._process.pid is None:
            return
        self._closing = True
        if self._process.is_alive():
            self.send(msg.Shutdown())
            self._process.join(timeout)
        self.kill()
        self._commands.cancel_join_thread()
        self._events.cancel_join_thread()

    def kill(self) -> None:
        """End the child at once. For a child that has stopped answering: asking it to close would only wait
        out the timeout while the experimenter waits for the error."""
        if self._process.pid is not None and self._process.is_alive():
            self._process.kill()
            self._process.join(1.0)

    def __enter__(self) -> Presenter:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()
