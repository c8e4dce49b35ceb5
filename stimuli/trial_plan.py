"""Trial plans: which image is shown when, as trials of a few images per fixation.

Images x repeats, one block per repeat; with ``shuffle`` each block is shuffled with a
seeded generator (the same seed gives the same plan); blocks are concatenated and cut
into trials of ``images_per_trial``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compactrig.engine.errors import CompactRigError


@dataclass(frozen=True)
class Trial:
    """One fixation's worth of images, in the order they will be shown."""

    trial_id: int
    image_ids: tuple[str, ...]


def make_plan(image_ids: list[str], repeats: int = 1, images_per_trial: int = 5,
              shuffle: bool = False, seed: int | None = None) -> list[Trial]:
    """The trials for showing every image ``repeats`` times."""
    if not image_ids:
        raise CompactRigError("the stimulus set is empty; add images before presenting")
    if repeats < 1 or images_per_trial < 1:
        raise CompactRigError("repeats and images per trial must be at least 1")
    rng = np.random.default_rng(seed)
    sequence: list[str] = []
    for _ in range(repeats):
        block = list(image_ids)
        if shuffle:
            block = [block[i] for i in rng.permutation(len(block))]
        sequence += block
    return [Trial(index, tuple(sequence[start:start + images_per_trial]))
            for index, start in enumerate(range(0, len(sequence), images_per_trial))]
