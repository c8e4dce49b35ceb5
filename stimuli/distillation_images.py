"""The images a readout is distilled on: many more than were recorded, around the recorded ones.

A readout fitted on a few hundred recorded images says what the neuron would answer to any
image; a compact model learns it from many: the natural images at hand, their gaudy versions
(the high-contrast images that train models fast), 1/f textures in the same number, and the
natural images shifted by a few pixels (small enough to keep the receptive field in place, large
enough that the student cannot learn pixel positions by heart). A lab's own library of images (no
responses needed) joins them as they are: the more distinct natural images the readout labels, the
better a student follows it on images it never saw.
"""

from __future__ import annotations

import numpy as np

from compactrig.stimuli.gaudy import gaudy
from compactrig.stimuli.textures import pink_noise_images

MAX_SHIFT_PX = 4
KINDS = ("natural", "gaudy", "texture", "shifted", "library")


def shifted(images: np.ndarray, rng: np.random.Generator, max_shift: int = MAX_SHIFT_PX) -> np.ndarray:
    """Each image moved by a random whole-pixel offset up to ``max_shift``, edges repeated."""
    out = np.empty_like(images)
    size = images.shape[1]
    pad = max_shift
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    for k, (dy, dx) in enumerate(rng.integers(-max_shift, max_shift + 1, (len(images), 2))):
        out[k] = padded[k, pad + dy:pad + dy + size, pad + dx:pad + dx + size]
    return out


def distillation_images(natural: np.ndarray, seed: int = 0,
                        library: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    """uint8 ``(4n + m, 112, 112, 3)`` and each image's kind (``KINDS``) for ``n`` natural images and ``m``
    library images (none when not given), the natural ones first."""
    rng = np.random.default_rng(seed)
    natural = np.asarray(natural, dtype=np.uint8)
    parts = [natural, gaudy(natural), pink_noise_images(len(natural), seed=seed + 1), shifted(natural, rng),
             np.asarray(library if library is not None else natural[:0], dtype=np.uint8)]
    kinds = [kind for kind, part in zip(KINDS, parts) for _ in range(len(part))]
    return np.concatenate(parts), kinds
