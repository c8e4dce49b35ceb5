"""What a running session tells whoever watches it (the window), as plain data.

The runner calls ``on_event`` on its own thread with these; the window copies them into
buffers and draws on a timer, so a burst of responses never floods the GUI thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SessionStarted:
    """The units and images of the session, the mapped units' predictions, and what is already stored."""

    units: list[str]
    image_ids: list[str]
    predictions: dict[str, np.ndarray]
    """Mapped unit -> its model's prediction for every image (in ``image_ids`` order)."""
    unit_map: dict[str, str]
    stored: list[tuple[str, dict[str, float]]]
    """(image id, counts per unit) of responses stored before this run (a resumed session)."""
    planned: int
    folder: str = ""
    """The session folder (its ``stimuli/`` holds the images)."""


@dataclass(frozen=True)
class ImagesAdded:
    """Images queued into the running session's plan, with the mapped units' predictions for them."""

    image_ids: list[str]
    predictions: dict[str, np.ndarray]
    planned: int


@dataclass(frozen=True)
class UnitsDiscovered:
    """Units first heard from now; every response stored before counted 0 for them."""

    units: list[str]


@dataclass(frozen=True)
class ResponseStored:
    """One presentation's counts, written to the store."""

    image_id: str
    counts: dict[str, float]


@dataclass(frozen=True)
class SessionStatus:
    """Where the session stands: presentations, presenter and source."""

    done: int
    planned: int
    paused: bool
    presenter_alive: bool
    refresh_hz: float | None
    dropped_frames: int
    source_connected: bool
