"""Images queued for a running session (a closed loop's next batch), from any thread.

The runner takes them between trials. Once it has finished, the queue refuses more (the caller
then appends to the stopped session's plan), and whatever was queued but not taken is written into
the plan so the next resume shows it. A session controller makes the queue before the runner, so
images queued while a run is starting are never lost.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from compactrig.engine.errors import CompactRigError
from compactrig.rig.session.events import Report
from compactrig.stimuli.stimulus_set import StimulusSet


class ImageQueue:
    """(images, repeats) batches waiting to join the session's plan."""

    def __init__(self) -> None:
        self._queued: queue.SimpleQueue[tuple[StimulusSet, int]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False

    def put(self, images: StimulusSet, repeats: int) -> bool:
        """Queue a batch (any thread); False once the runner has finished."""
        with self._lock:
            if self._closed:
                return False
            self._queued.put((images, repeats))
            return True

    def take(self) -> tuple[StimulusSet, int] | None:
        """The next batch, or None when nothing is queued."""
        try:
            return self._queued.get_nowait()
        except queue.Empty:
            return None

    def close(self, save: Callable[[StimulusSet, int], object], report: Report) -> None:
        """No more queueing; batches not yet taken are handed to ``save`` (into the plan, for the next resume)."""
        with self._lock:
            self._closed = True
        while (batch := self.take()) is not None:
            images, repeats = batch
            try:
                save(images, repeats)
                report(f"queued {len(images)} image(s) x {repeats} saved into the plan; resume to show them")
            except CompactRigError as error:
                report(f"queued images not added: {error}")
