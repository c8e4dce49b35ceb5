"""The straightforward port of the published synthesis loop: the baseline for ``benchmarks/synth.py``.

Float32, one image at a time, the reference ``CompactModel`` (batch norm as layers,
NCHW), SciPy smoothing each step on NumPy arrays, and an extra forward pass to score
each step's image: what a first translation of the upstream research code looks like.
It follows the same method and records the same images as ``compactrig.stimuli.synthesis``.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from compactrig.engine.models.architecture import CompactModel
from compactrig.stimuli.synthesis import SynthesisSettings, initial_noise


def synthesize_one(model: CompactModel, seed: int, settings: SynthesisSettings) -> tuple[np.ndarray, float]:
    """Best image (float, 0..255, ``(112, 112, 3)``) and its response, for one seed."""
    model.requires_grad_(False)  # gradients with respect to the pixels only
    sign = 1.0 if settings.direction == "max" else -1.0
    image = initial_noise(seed, settings).astype(np.float32)
    best_image, best_score = image.copy(), -np.inf
    for step in range(settings.steps):
        pixels = torch.from_numpy(image).permute(2, 0, 1)[None].clone().requires_grad_(True)
        model(pixels).sum().backward()
        gradient = pixels.grad[0].permute(1, 2, 0).numpy()
        gradient = gradient / (np.sqrt(np.mean(gradient**2)) + 1e-5)
        gradient = ndimage.gaussian_filter(gradient, (settings.sigma, settings.sigma, 0))
        image = np.clip(image + sign * settings.step_size * gradient, 0, 255).astype(np.float32)
        if settings.grayscale:
            image = (image @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None].repeat(3, -1)
        with torch.no_grad():
            score = sign * float(model(torch.from_numpy(image).permute(2, 0, 1)[None]))
        if score > best_score:
            best_image, best_score = image.copy(), score
        if settings.smooth_every and step > 0 and step % settings.smooth_every == 0:
            image = ndimage.gaussian_filter(image, (settings.sigma, settings.sigma, 0)).astype(np.float32)
    return best_image, sign * best_score
