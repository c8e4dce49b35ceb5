"""Starting the rig's helper processes (presenter, eye tracker) deaf to Ctrl-C from their first instruction.

Ctrl-C in a terminal reaches every process of its group. The parent decides what it means (a clean stop after
the image on screen), and each child ignores it, but only once its own code runs: a Ctrl-C while a spawned
child was still importing killed it with a ``KeyboardInterrupt`` traceback on the terminal and turned the clean
stop into "the presenter process died". A child inherits an ignored SIGINT through its start (POSIX keeps
SIG_IGN across exec), so the parent ignores it for the moment the child is started. On Windows, where
the console's Ctrl-C is delivered differently, this changes nothing.
"""

from __future__ import annotations

import signal
import threading
from multiprocessing.process import BaseProcess


def start_deaf_to_ctrl_c(process: BaseProcess) -> None:
    """``process.start()`` with SIGINT ignored while it starts (from the main thread, the only one that may change
    a signal's handling; from another thread, a plain start: no terminal's Ctrl-C is then ours to route)."""
    if threading.current_thread() is not threading.main_thread():
        process.start()
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        process.start()
    finally:
        signal.signal(signal.SIGINT, previous)
