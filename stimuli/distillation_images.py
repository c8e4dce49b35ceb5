"""The images a readout is distilled on: many more than were recorded, around the recorded ones.

A readout fitted on a few hundred recorded images says what the neuron would answer to any
image; a compact model learns it from many. What teaches a student to follow its readout on
natural images it has never seen is more natural images: on session 190923 (NOTES.md, session 16)
the recorded images turned and mirrored (the seven other symmetries of the square: new natural
content where the neuron looks, at no cost in realism) raised the students' agreement with their
readouts on new images by 0.03-0.05 and their r on recorded responses by 0.01-0.04, more than the
other sessions' natural images in the same number did. Gaudy versions (the high-contrast images
that drive models hardest), 1/f textures and copies shifted by a few pixels (small enough to keep
the receptive field in place) add one more share: they did not change r on natural images, but a
compact model is also used to synthesize images far from natural ones, where its readout should
still hold it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from compactrig.stimuli.gaudy import gaudy
from compactrig.stimuli.textures import pink_noise_images

MAX_SHIFT_PX = 4
KINDS = ("natural", "turned or mirrored", "gaudy", "texture", "shifted")
SYMMETRIES: tuple[Callable[[np.ndarray], np.ndarray], ...] = (
    lambda x: np.rot90(x, 1, axes=(1, 2)),
    lambda x: np.rot90(x, 2, axes=(1, 2)),
    lambda x: np.rot90(x, 3, axes=(1, 2)),
    lambda x: x[:, :, ::-1],
    lambda x: x[:, ::-1],
    lambda x: x.transpose(0, 2, 1, 3),
    lambda x: np.rot90(x, 1, axes=(1, 2))[:, :, ::-1],
)
"""The square's symmetries other than the identity (three turns, four mirrors) on ``(N, H, W, 3)``."""


def shifted(images: np.ndarray, rng: np.random.Generator, max_shift: int = MAX_SHIFT_PX) -> np.ndarray:
    """Each image moved by a random whole-pixel offset up to ``max_shift``, edges repeated."""
    out = np.empty_like(images)
    size = images.shape[1]
    pad = max_shift
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    for k, (dy, dx) in enumerate(rng.integers(-max_shift, max_shift + 1, (len(images), 2))):
        out[k] = padded[k, pad + dy:pad + dy + size, pad + dx:pad + dx + size]
    return out


def distillation_images(natural: np.ndarray, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """uint8 ``(9n, 112, 112, 3)`` and each image's kind (``KINDS``) for ``n`` natural images: the images, their
    seven turned or mirrored versions (in ``SYMMETRIES`` order), then gaudy versions of the first third of them,
    a third as many textures, and the last third shifted."""
    rng = np.random.default_rng(seed)
    natural = np.asarray(natural, dtype=np.uint8)
    first, middle, last = np.array_split(np.arange(len(natural)), 3)
    parts = {"natural": natural,
             "turned or mirrored": np.concatenate([np.ascontiguousarray(turn(natural)) for turn in SYMMETRIES]),
             "gaudy": gaudy(natural[first]),
             "texture": pink_noise_images(len(middle), seed=seed + 1),
             "shifted": shifted(natural[last], rng)}
    kinds = [kind for kind, part in parts.items() for _ in range(len(part))]
    return np.concatenate(list(parts.values())), kinds
