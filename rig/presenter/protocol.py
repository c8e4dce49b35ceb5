"""Messages between the parent (GUI, CLI, session runner) and the presenter process.

Plain dataclasses sent over multiprocessing queues. The parent only ever ``put``s and
drains events without blocking; the child checks for commands between frames without
waiting, so neither side can stall the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from compactrig.plugins.event_codes import SentWord
from compactrig.stimuli.trial_plan import Trial


# parent -> child
@dataclass(frozen=True)
class LoadStimuli:
    """uint8 ``(n, 112, 112, 3)`` pixels and their ids, turned into textures before they are shown
    (added to those already loaded: a closed loop queues images during a session)."""

    image_ids: list[str]
    pixels: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class RunTrials:
    trials: list[Trial]
    capture_dir: str | None = None
    """If set, the back buffer of each image's first frame is saved as ``NNNNN.png`` (presentation order)."""
    first_order: int = 0
    """Presentation number of the first image (a resumed session continues its count)."""


@dataclass(frozen=True)
class Pause:
    """Stop before the next trial starts (a trial, one fixation, is never cut in two)."""


@dataclass(frozen=True)
class Resume:
    pass


@dataclass(frozen=True)
class Abort:
    """Stop the run within two frames; ``fixation_break``: because the gate saw fixation break (its code is sent)."""

    fixation_break: bool = False


@dataclass(frozen=True)
class ShowFixation:
    """Between trials: the fixation point on the blank screen (the gate waits for the animal to take it), or,
    ``visible`` false, the blank screen alone (a time-out after fixation was not acquired)."""

    visible: bool


@dataclass(frozen=True)
class MarkAborted:
    """Send an ``abort`` marker for presentation ``order`` (the parent decided it does not count)."""

    order: int
    reason: str
    kind: str = "missing"
    """The trial store's abort kind (the reason's event code)."""


@dataclass(frozen=True)
class Heartbeat:
    sequence: int


@dataclass(frozen=True)
class Shutdown:
    pass


# child -> parent
@dataclass(frozen=True)
class Ready:
    measured_refresh_hz: float | None
    window_size: tuple[int, int]


@dataclass(frozen=True)
class StimuliLoaded:
    count: int


@dataclass(frozen=True)
class TrialStarted:
    trial_id: int
    time: float


@dataclass(frozen=True)
class Onset:
    """An image has just appeared: sent right after its first flip (time on the LSL clock), so the
    response source learns the onset while the image is still up, whatever its duration."""

    order: int
    trial_id: int
    image_id: str
    onset_time: float
    marker_sent: bool = False


@dataclass(frozen=True)
class ImageDone:
    """The image's frames are over: ``offset_time`` is the flip that removed it (its off frames, the
    next image or the trial's end), ``aborted`` if the run was aborted while it was up."""

    order: int
    trial_id: int
    image_id: str
    onset_time: float
    offset_time: float
    frames_shown: int
    dropped_frames: int
    aborted: bool = False
    marker_sent: bool = False


@dataclass(frozen=True)
class TrialDone:
    """``end_time`` is the flip of the blank frame that ends the trial (also stamped as ``trial_end``)."""

    trial_id: int
    images_shown: int
    dropped_frames: int
    aborted: bool
    start_time: float | None = None
    end_time: float | None = None


@dataclass(frozen=True)
class RunDone:
    aborted: bool
    images_shown: int
    frames_after_abort: int = 0


@dataclass(frozen=True)
class HeartbeatReply:
    sequence: int
    time: float


@dataclass(frozen=True)
class PresenterError:
    """Something the presenter could not do, as one line for the user."""

    message: str
    fatal: bool = False


@dataclass(frozen=True)
class MarkerFailed(PresenterError):
    """Marker output ``output`` raised (a device unplugged, a write refused): it is told nothing more, the run
    is aborted and no other run starts, so nothing is shown without its marker."""

    output: str = ""


@dataclass(frozen=True)
class CodesSent:
    """The digital words a marker output sent for one event, each with the time it went out."""

    output: str
    words: tuple[SentWord, ...]


@dataclass(frozen=True)
class PresenterDied:
    """Reported by the parent side when the child process is gone without a shutdown."""

    exitcode: int | None
