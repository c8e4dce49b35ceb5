"""Writing compact models into a bank folder in the published layout, with their provenance.

A model made here (``compactrig neurons fit``) must be a first-class neuron: every part of
CompactRig loads a bank through ``compactrig.engine.models.bank.load_directory``, so a new bank is
written exactly as the published one is (``models_torch/compact_model_S_neuronI.pt`` float64
state dicts beside ``nums_filters/compact_model_S_neuronI.npy``), and what it was made from is
stored beside it in ``provenance.json`` (one entry per neuron id).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import torch

from compactrig.engine.errors import CompactRigError
from compactrig.engine.files.safe_output import write_atomically
from compactrig.engine.models.architecture import CompactModel
from compactrig.engine.models.bank import PROVENANCE_FILE, read_provenance

SESSION_NAME_MAX = 64
"""Longest session name: it is part of every file name and id of the bank."""
SESSION_NAME = f"[A-Za-z0-9]{{1,{SESSION_NAME_MAX}}}"


def model_file_stem(session: str, index: int) -> str:
    return f"compact_model_{session}_neuron{index}"


def check_session_name(session: str) -> None:
    """Raise a one-line error unless ``session`` can name files and ids (checked before hours of work)."""
    if not re.fullmatch(SESSION_NAME, session):
        raise CompactRigError(f"session name {session!r}: use 1 to {SESSION_NAME_MAX} letters and digits only (it "
                              "becomes part of file names and of the ids SESSION:UNIT)")


def write_model(folder: Path, session: str, index: int, model: CompactModel, provenance: dict) -> str:
    """Save one model (float64, as published) and its provenance entry; returns its id ``SESSION:INDEX``."""
    check_session_name(session)
    folder = Path(folder)
    (folder / "models_torch").mkdir(parents=True, exist_ok=True)
    (folder / "nums_filters").mkdir(parents=True, exist_ok=True)
    stem = model_file_stem(session, index)
    state = {key: value.detach().to(torch.float64).clone() if value.is_floating_point() else value.clone()
             for key, value in model.state_dict().items()}
    write_atomically(folder / "models_torch" / f"{stem}.pt", lambda path: torch.save(state, path))
    write_atomically(folder / "nums_filters" / f"{stem}.npy",
                     lambda path: np.save(path, np.array(model.filters, dtype=np.int64), allow_pickle=False))
    neuron_id = f"{session}:{index}"
    record = read_provenance(folder)
    record[neuron_id] = _strict_json(provenance)
    text = json.dumps(record, indent=1, sort_keys=True, allow_nan=False)
    write_atomically(folder / PROVENANCE_FILE, lambda path: path.write_text(text))
    return neuron_id


def _strict_json(value: object) -> object:
    """``value`` with every NaN or infinity as null: JSON has no NaN, and a measure that could not be computed
    (an r2_ER without repeats, an r of constant responses) must not make the file unreadable elsewhere."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(item) for item in value]
    return value
