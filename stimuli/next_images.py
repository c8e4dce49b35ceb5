"""Choosing the next images to show from a candidate pool of natural and gaudy images.

``random`` draws natural images uniformly (the usual way a recording goes); ``gaudy-first``
shows the pool's gaudy images first, whose high contrast trains models fast (Cowley et
al.), then random natural ones; ``committee`` shows where bootstrap refits of the readouts
disagree most (query by committee: the images that would settle the most doubt).
Images already chosen are never chosen again, so a batch never repeats within the pool.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from compactrig.engine.errors import CompactRigError
from compactrig.stimuli.design import design_gaudy
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet
from compactrig.stimuli.textures import pink_noise_images

Strategy = Literal["random", "gaudy-first", "committee"]
STRATEGIES: tuple[str, ...] = ("random", "gaudy-first", "committee")


def choose_next(strategy: Strategy, kinds: list[str], n: int, rng: np.random.Generator,
                exclude: np.ndarray | None = None, spread: np.ndarray | None = None) -> np.ndarray:
    """Indices into the pool (``kinds[i]`` is ``natural`` or ``gaudy``) of up to ``n`` new images.

    ``spread`` is the committee's disagreement per candidate (needed for ``committee``).
    """
    kinds_array = np.asarray(kinds)
    free = np.ones(len(kinds_array), dtype=bool) if exclude is None else ~np.asarray(exclude, dtype=bool)
    if strategy == "random":
        natural = np.flatnonzero(free & (kinds_array != "gaudy"))
        order = rng.permutation(natural if len(natural) else np.flatnonzero(free))
    elif strategy == "gaudy-first":
        gaudy = rng.permutation(np.flatnonzero(free & (kinds_array == "gaudy")))
        rest = rng.permutation(np.flatnonzero(free & (kinds_array != "gaudy")))
        order = np.concatenate([gaudy, rest])
    elif strategy == "committee":
        if spread is None or len(spread) != len(kinds_array):
            raise CompactRigError("committee selection needs fitted readouts; present a first batch, then refit")
        candidates = np.flatnonzero(free)
        order = candidates[np.argsort(-np.asarray(spread)[candidates], kind="stable")]
    else:
        raise CompactRigError(f"selection strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    return order[:n].astype(np.int64)


def candidate_pool(natural: StimulusSet | None = None, textures: int = 200, seed: int = 0) -> StimulusSet:
    """Natural candidates (the given set, or generated 1/f textures) followed by their gaudy versions."""
    if natural is None or len(natural) == 0:
        pixels = pink_noise_images(textures, seed)
        method = {"method": "1/f noise texture", "seed": seed, "exponent": 1.0}
        natural = StimulusSet([StimulusRecord(image_id=f"texture{seed}-{k:04d}", kind="natural", method=method,
                                              seed=seed) for k in range(textures)], pixels)
    made = design_gaudy(natural.ids, natural.pixels)
    return natural.merged(StimulusSet(made.records, made.images))


def pool_kinds(pool: StimulusSet) -> list[str]:
    """``gaudy`` or ``natural`` per image (anything not gaudy counts as natural for the strategies)."""
    return ["gaudy" if record.kind == "gaudy" else "natural" for record in pool.records]
