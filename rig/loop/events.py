"""What the closed-loop controller tells its subscribers (the window's panel, the terminal), as plain data.

Events are emitted on the controller's own thread (the GUI thread in the window, the loop thread at
the command line), never from a job's thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compactrig.engine.readout.ridge import RidgeFit
from compactrig.rig.loop.jobs import LoopJob
from compactrig.stimuli.closed_loop import ReadoutData
from compactrig.stimuli.stimulus_set import StimulusSet


@dataclass(frozen=True)
class LoopStatus:
    """Where the loop stands: the units, the presentations logged, the current fit (if any)."""

    units: tuple[str, ...]
    presentations: int
    features: str
    """What the readouts read (``FeatureSpec.describe``)."""
    fitted_images: int | None
    """Images the current fit used; None before the first fit."""
    fitted_at: int
    """Presentations logged when the current fit's data were taken."""


@dataclass(frozen=True)
class ReadoutsFitted:
    """A new fit of every unit's readout (the previous one is replaced)."""

    fit: RidgeFit
    data: ReadoutData
    units: tuple[str, ...]
    """The fit's rows (units heard from after its data were taken wait for the next fit)."""
    at: int
    """Presentations it was fitted on."""


@dataclass(frozen=True)
class FitCleared:
    """No fit any more (a new session, bank or feature choice): the readouts are fitted again."""


@dataclass(frozen=True)
class PoolReady:
    """The candidate pool's readout features are computed: batches can be chosen."""

    size: int
    gaudy: int


@dataclass(frozen=True)
class PoolChosen:
    """New natural candidates (their features follow in a ``PoolReady``)."""

    natural: int
    name: str


@dataclass(frozen=True)
class BatchChosen:
    """Images chosen from the pool by ``strategy`` (``requested`` unless the committee had no fit yet)."""

    images: StimulusSet
    strategy: str
    requested: str
    repeats: int
    queued: bool


@dataclass(frozen=True)
class ImagesDesigned:
    """Images synthesized through ``unit``'s readout, with their predicted responses."""

    images: StimulusSet
    unit: str
    responses: np.ndarray
    repeats: int
    queued: bool


@dataclass(frozen=True)
class CompactModelsMade:
    """Compact models of the session's units, written as a bank in ``folder``."""

    folder: Path
    held_out_r: tuple[float, ...]


@dataclass(frozen=True)
class JobStarted:
    job: LoopJob


@dataclass(frozen=True)
class JobEnded:
    """A job is over: ``outcome`` is ``done``, ``failed`` or ``cancelled``."""

    job: LoopJob
    outcome: str


@dataclass(frozen=True)
class LoopMessage:
    """One line for the user (the status bar, the terminal)."""

    text: str
