"""Adversarial images: a natural image nudged, by at most ``eps`` per channel value, to move a neuron.

Projected gradient steps (the sign of the gradient, step ``2.5 * eps / steps``), each
followed by projection onto the ``eps`` box around the original and onto 0..255; the
best perturbation seen in the asked direction is kept. The result is rounded to the
uint8 pixels that will be shown, still within ``floor(eps)`` of the original.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from compactrig.engine.models.fast_predict import FoldedModel, prepare_input, restore_pixels
from compactrig.engine.models.layout import CHANNEL_MEANS
from compactrig.engine.progress import Progress
from compactrig.stimuli.targets import OUTPUT, UnitTarget

Push = Literal["up", "down"]


@dataclass
class AdversarialResult:
    """Perturbed images (uint8, as shown) with the before/after responses and perturbation size."""

    images: np.ndarray
    before: np.ndarray
    after: np.ndarray
    max_abs: np.ndarray
    rms: np.ndarray


def adversarial(model: FoldedModel, images: np.ndarray, direction: Push = "up", eps: float = 8.0,
                steps: int = 20, target: UnitTarget = OUTPUT,
                progress: Progress | None = None,
                cancelled: Callable[[], bool] | None = None) -> AdversarialResult:
    """Perturb each uint8 image ``(n, 112, 112, 3)`` to raise (``up``) or lower (``down``) the target."""
    if direction not in ("up", "down"):
        raise ValueError(f"direction must be 'up' or 'down', not {direction!r}")
    device = next(model.parameters()).device
    sign = 1.0 if direction == "up" else -1.0
    original = prepare_input(images, device)
    means = torch.tensor(CHANNEL_MEANS, device=device).view(1, 3, 1, 1)
    low = torch.maximum(original - eps, -means)
    high = torch.minimum(original + eps, 255.0 - means)
    alpha = 2.5 * eps / steps
    x = original.clone()
    with torch.no_grad():
        before = target.score(model, original)
    best, best_score = original.clone(), sign * before
    for step in range(steps):
        x.requires_grad_(True)
        score = target.score(model, x)
        (gradient,) = torch.autograd.grad(score.sum(), x)
        x = x.detach()
        better = sign * score.detach() > best_score
        best[better], best_score = x[better], torch.where(better, sign * score.detach(), best_score)
        x = torch.maximum(torch.minimum(x + sign * alpha * gradient.sign(), high), low)
        if progress is not None:
            progress(step + 1, steps)
        if cancelled is not None and cancelled():
            break
    with torch.no_grad():
        last = target.score(model, x)
    better = sign * last > best_score
    best[better] = x[better]
    limit = math.floor(eps)
    shown = np.clip(np.rint(restore_pixels(best)), images.astype(np.int16) - limit, images.astype(np.int16) + limit)
    shown = np.clip(shown, 0, 255).astype(np.uint8)
    with torch.no_grad():
        after = target.score(model, prepare_input(shown, device)).cpu().numpy()
    difference = shown.astype(np.float64) - images.astype(np.float64)
    return AdversarialResult(images=shown, before=before.cpu().numpy(), after=after,
                             max_abs=np.abs(difference).max(axis=(1, 2, 3)),
                             rms=np.sqrt((difference**2).mean(axis=(1, 2, 3))))
