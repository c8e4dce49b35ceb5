"""Compact models for a running session's units: its images and responses into ``fit_new_neurons``.

The closed-loop panel's "Make compact models" runs this in a job. The images come from the
session folder's copy of the stimulus set (every shown image is there, queued ones included),
the responses from the loop's per-image sums (a copy: the session goes on), and the bank is written beside the session
(``DIR/compact_models``), with ids ``SESSION:K`` (K: the unit's place in the session's unit
list; the recorded name is kept in the provenance).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from compactrig.engine.errors import CompactRigError
from compactrig.engine.models.bank import ModelBank
from compactrig.engine.models.bank_writer import SESSION_NAME_MAX
from compactrig.engine.progress import Progress
from compactrig.engine.stats.response_sums import PerImageSums
from compactrig.rig.session.folder import STIMULI_DIR
from compactrig.stimuli.new_neurons import NewNeuron, NewNeuronSettings, fit_new_neurons, flat_units
from compactrig.stimuli.stimulus_set import StimulusSet

COMPACT_MODELS_DIR = "compact_models"


def bank_session_name(folder: Path) -> str:
    """The session folder's name as ids allow it (letters and digits: ``2026-11-23_a`` -> ``20261123a``)."""
    return re.sub("[^A-Za-z0-9]", "", Path(folder).name)[:SESSION_NAME_MAX] or "session"


def make_session_models(bank: ModelBank, folder: Path, responses: PerImageSums,
                        settings: NewNeuronSettings = NewNeuronSettings(), progress: Progress | None = None,
                        cancelled: Callable[[], bool] | None = None) -> tuple[Path, list[NewNeuron]]:
    """Compact models of every unit of ``responses`` (the session's per-image sums) from the session in
    ``folder``, but for units whose responses never changed (``flat_units``: a silent channel). Returns the new
    bank's folder and what was made."""
    folder = Path(folder)
    stimuli = StimulusSet.load(folder / STIMULI_DIR, only=responses.image_ids)
    rows = np.array([responses.index[i] for i in stimuli.ids], dtype=np.int64)
    shown = responses.take(rows)
    flat = set(flat_units(shown))
    keep = [k for k in range(len(responses.units)) if k not in flat]
    if not keep:
        raise CompactRigError("every unit's responses are the same for every image so far (silent channels?); no "
                              "model can follow them")
    kept = PerImageSums.from_counts([responses.units[k] for k in keep], stimuli.ids, shown.counts[:, keep],
                                    shown.sums[:, keep], shown.sumsq[:, keep])
    out = folder / COMPACT_MODELS_DIR
    made = fit_new_neurons(bank, stimuli.ids, stimuli.pixels, kept, keep, bank_session_name(folder), out, settings,
                           progress, cancelled, unit_names=list(kept.units))
    return out, made
