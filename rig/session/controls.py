"""What the user asks of a running session: set from any thread (the window, Ctrl-C), read between steps."""

from __future__ import annotations

import queue
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

CLOSING_WAIT_S = 0.5
"""When the window closes (``RunControls.closing``): the longest wait for due responses, and for the
presenter before it is killed."""


@dataclass
class RunControls:
    """Flags the runner's parts read between trials and while waiting (plain attributes: a write from
    another thread is seen at the next check)."""

    stop_requested: bool = False
    closing: bool = False
    """Set with ``stop_requested`` when the window closes: waits are capped so closing never hangs."""
    pause_requested: bool = False
    hold_open: bool = False
    """Closed loop: when the plan is done, wait for queued images instead of ending (until stopped)."""
    ask_refresh: bool = False
    """A measured refresh off the rig file's is a question for the consumer (the window), answered into
    ``refresh_answers``; without one (the terminal) the runner warns and goes on, as ``present`` does."""
    refresh_answers: queue.SimpleQueue[bool] = field(default_factory=queue.SimpleQueue)
    window_requests: queue.SimpleQueue[tuple[str | None, tuple[float, float] | None]] = field(
        default_factory=queue.SimpleQueue)
    """Counting windows to adopt (unit or None for every unit; window or None for the source's), taken
    between trials (``windows.adopt_window``)."""


@contextmanager
def ctrl_c_stops(controls: RunControls, report: Callable[[str], None]) -> Iterator[None]:
    """At the command line (``SessionController.follow`` on the main thread, the runner on its own), the
    first Ctrl-C stops after the image on screen, the second leaves at once.

    Only the main thread may install a signal handler (Python's rule on every system); followed from
    another thread, a run is stopped through ``controls`` alone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupted(*_: object) -> None:
        if not controls.stop_requested:
            report("Ctrl-C: stopping after the image on screen (press again to leave at once)")
            controls.stop_requested = True
        else:
            controls.closing = True

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
