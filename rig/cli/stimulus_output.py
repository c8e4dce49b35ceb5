"""Writing new images into the ``--out`` stimulus set (created, or added to) for every command."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compactrig.engine.bank import ModelBank
from compactrig.stimuli.stimulus_set import StimulusRecord, annotate, load_or_empty


def add_to_set(folder: Path, bank: ModelBank, pixels: np.ndarray, records: list[StimulusRecord]) -> int:
    """Annotate the new images with the bank's predictions, add them to ``folder``'s set, save."""
    existing = load_or_empty(folder)
    combined = existing.merged(annotate(bank, pixels, records))
    combined.save(folder)
    print(f"{folder}: {len(records)} image(s) added, {len(combined)} in the set")
    return len(combined)
