"""What a running session tells whoever watches it (the window, the terminal), as plain data.

The runner calls ``on_event`` on its own thread with these, its lines for the user included
(``SessionMessage``); the session controller (``controller``) buffers them until its consumer takes
them on its own thread, so a burst of responses never floods the GUI thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from compactrig.rig.presenter.refresh import RefreshCheck

if TYPE_CHECKING:
    from compactrig.rig.session.rasters import SpikeRasters


@dataclass(frozen=True)
class SessionMessage:
    """One line for the user."""

    text: str
    trouble: bool = False
    """The source or the presenter is in trouble (the window also shows the line in its status bar)."""


class Report(Protocol):
    """How the runner's parts say a line: ``trouble`` marks a problem of the source or the presenter."""

    def __call__(self, text: str, trouble: bool = False) -> None: ...


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
    windows: dict[str, tuple[float, float]] = field(default_factory=dict)
    """The counting windows adopted from the spikes (unit, or "" for every unit -> window, s from the
    onset): ``stored`` and the responses to come are counted in them."""
    recount: bool = False
    """The same session again, its counts recounted in a window just adopted (a watcher keeps the rest)."""
    rasters: SpikeRasters | None = None
    """The spike times of what is already stored, read from the store (the watcher takes them over);
    None when ``recount`` (the spikes did not change)."""
    source_window: tuple[float, float] | None = None
    """The window the source counted the stored responses in (s from the onset); None: none stored yet."""


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
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    """The mapped ones among them -> their model's prediction for every image of the session so far (in the
    order the watchers were told the images: ``SessionStarted``'s, then each ``ImagesAdded``'s)."""


@dataclass(frozen=True)
class ResponseStored:
    """One presentation's counts, and its spike times when the source keeps them, written to the store."""

    image_id: str
    counts: dict[str, float]
    order: int | None = None
    """The presentation's number (None where only counts per image matter: a replay of sums)."""
    spikes: dict[str, np.ndarray] | None = None
    """Each unit's spike times, s from the onset (a unit that did not fire may be left out); None: counts only."""
    span: tuple[float, float] | None = None
    """The span around the onset the spike times cover, s."""
    window: tuple[float, float] | None = None
    """The source's counting window (s from the onset), whatever window ``counts`` were recounted in."""


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
    left_out: int = 0
    """Plan items not complete that will not be shown again (their response went missing ``max_missing``
    times): with ``done`` they settle the plan, so a closed loop waiting for it goes on."""


@dataclass(frozen=True)
class RefreshMeasured:
    """The presenter's window is open and its refresh measured (``check``, also written to ``session.json``);
    ``question``: it differs from the rig file's and the runner waits for the consumer's answer
    (``SessionController.answer_refresh``) before it shows anything."""

    check: RefreshCheck
    question: bool = False


@dataclass(frozen=True)
class TrialShown:
    """A trial has been shown: presentations complete and planned, and how many still await a response."""

    trial_id: int
    done: int
    planned: int
    waiting: int


@dataclass(frozen=True)
class SessionEnded:
    """The run is over: ``complete`` when the plan is; ``problem``: the one line saying why it failed."""

    folder: str
    complete: bool
    problem: str | None = None


@dataclass(frozen=True)
class StoredSessionShown:
    """A session that is not running was read back from its folder (its ``SessionStarted`` came just before)."""

    folder: str
    responses: int
