"""Compact models for a running session's units: its images and responses into ``fit_new_neurons``.

The closed-loop panel's "Make compact models" runs this in a job. The images come from the
session folder's copy of the stimulus set (every shown image is there, queued ones included),
the responses from the panel's per-image sums (a copy: the session goes on), and the bank is written beside the session
(``DIR/compact_models``), with ids ``SESSION:K`` (K: the unit's place in the session's unit
list; the recorded name is kept in the provenance).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from compactrig.engine.models.bank import ModelBank
from compactrig.engine.progress import Progress
from compactrig.engine.readout.ridge import TrialSums
from compactrig.rig.session.folder import STIMULI_DIR
from compactrig.stimuli.new_neurons import NewNeuron, NewNeuronSettings, fit_new_neurons
from compactrig.stimuli.stimulus_set import StimulusSet

COMPACT_MODELS_DIR = "compact_models"


def bank_session_name(folder: Path) -> str:
    """The session folder's name as ids allow it (letters and digits: ``2026-11-23_a`` -> ``20261123a``)."""
    return re.sub("[^A-Za-z0-9]", "", Path(folder).name) or "session"


def make_session_models(bank: ModelBank, folder: Path, image_ids: list[str], units: list[str], trials: TrialSums,
                        settings: NewNeuronSettings = NewNeuronSettings(), progress: Progress | None = None,
                        cancelled: Callable[[], bool] | None = None) -> tuple[Path, list[NewNeuron]]:
    """Compact models of every unit from the session in ``folder``: ``trials`` holds the responses per image
    (rows, as ``image_ids``) and unit (columns, as ``units``). Returns the new bank's folder and what was made."""
    folder = Path(folder)
    stimuli = StimulusSet.load(folder / STIMULI_DIR, only=image_ids)
    row_of = {image_id: row for row, image_id in enumerate(image_ids)}
    rows = np.array([row_of[i] for i in stimuli.ids], dtype=np.int64)
    out = folder / COMPACT_MODELS_DIR
    made = fit_new_neurons(bank, stimuli.ids, stimuli.pixels,
                           TrialSums(trials.counts[rows], trials.sums[rows], trials.sumsq[rows]),
                           list(range(len(units))), bank_session_name(folder), out, settings, progress, cancelled,
                           unit_names=list(units))
    return out, made
