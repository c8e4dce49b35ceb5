"""Maximizing and minimizing images for one neuron (or unit), by the published method.

Start from uniform noise (128 +/- 25 per channel value); each step take the gradient of
the target with respect to the pixels, divide it by its root-mean-square, smooth it
with a Gaussian (sigma 1 pixel), step 10 (0..255 units) up or down, clip every channel
to 0..255; every 50 steps smooth the image itself; keep the best image seen.

Differences from a straightforward port, none of which changes the images:
- all seeds run together as one batch (each image normalised by its own RMS);
- smoothing is a torch convolution (``compactrig.stimuli.smoothing``), no NumPy round trips;
- the forward pass that gives a step's gradient also scores the image of the previous
  step, so scoring costs no extra pass (except for the image just before a smoothing);
- the model is the batch-norm-folded, channels-last ``FoldedModel``.
One deliberate difference from the upstream research code: the noise starts at
128 +/- 25 as the method describes, and the best image is the best *scored* one (no
initial threshold of 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch import nn

from compactrig.engine.errors import CompactRigError
from compactrig.engine.models.fast_predict import CHUNK, prepare_input, restore_pixels
from compactrig.engine.models.layout import CHANNEL_MEANS, IMAGE_SIZE
from compactrig.engine.progress import Progress
from compactrig.stimuli.smoothing import smooth
from compactrig.stimuli.targets import OUTPUT

Direction = Literal["max", "min"]


class Target(Protocol):
    """What is synthesized for: a differentiable value ``(N,)`` of the model's prepared input
    (``UnitTarget`` on a ``FoldedModel``, ``PopulationTarget`` on a ``ReadoutModel``)."""

    def score(self, model: Any, prepared: torch.Tensor) -> torch.Tensor: ...


LUMA = (0.299, 0.587, 0.114)
"""Grayscale weights (ITU-R BT.601, as PIL's 'L' mode)."""


@dataclass(frozen=True)
class SynthesisSettings:
    """The method's parameters; defaults are the published ones."""

    direction: Direction = "max"
    steps: int = 100
    step_size: float = 10.0
    sigma: float = 1.0
    smooth_every: int = 50
    noise_centre: float = 128.0
    noise_half_width: float = 25.0
    grayscale: bool = False

    def __post_init__(self) -> None:
        if self.direction not in ("max", "min"):  # anything else would be taken for "min"
            raise CompactRigError(f"synthesis direction {self.direction!r}: give max or min")

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class SynthesisPartial:
    """The partial result reported after every step, for a live preview (the step is for its label; a progress
    bar follows ``progress``)."""

    step: int
    steps: int
    best_responses: np.ndarray
    current_images: Callable[[], np.ndarray] = field(repr=False)
    """Call for the current images, uint8 ``(n, 112, 112, 3)`` (computed only when asked)."""


@dataclass
class SynthesisResult:
    """The best image per seed, as shown (uint8), and its target response."""

    images: np.ndarray
    responses: np.ndarray
    seeds: list[int]
    steps_done: int
    cancelled: bool


def initial_noise(seed: int, settings: SynthesisSettings) -> np.ndarray:
    """The starting image for ``seed``: uniform noise, float64 ``(112, 112, 3)`` in 0..255 units."""
    rng = np.random.default_rng(seed)
    low = settings.noise_centre - settings.noise_half_width
    noise = rng.uniform(low, settings.noise_centre + settings.noise_half_width, (IMAGE_SIZE, IMAGE_SIZE, 3))
    return to_grayscale(noise) if settings.grayscale else noise


def to_grayscale(images: np.ndarray) -> np.ndarray:
    """Luma copied to R, G and B (works on ``(..., 3)`` arrays in 0..255 units)."""
    luma = images @ np.asarray(LUMA)
    return np.repeat(luma[..., None], 3, axis=-1)


class _PreparedSpace:
    """Clipping and grayscale on the model's prepared input (``prepare_input``: per-pixel, so its layout does not
    matter here)."""

    def __init__(self, device: torch.device) -> None:
        means = torch.tensor(CHANNEL_MEANS, device=device).view(1, 3, 1, 1)
        self.means = means
        self.low, self.high = -means, 255.0 - means
        self.luma = torch.tensor(LUMA, device=device).view(1, 3, 1, 1)

    def clip(self, x: torch.Tensor) -> torch.Tensor:
        return torch.maximum(torch.minimum(x, self.high), self.low)

    def grayscale(self, x: torch.Tensor) -> torch.Tensor:
        luma = ((x + self.means) * self.luma).sum(dim=1, keepdim=True)
        return luma.expand_as(x) - self.means


class _BestTracker:
    def __init__(self, start: torch.Tensor, sign: float) -> None:
        self.images = start.clone()
        self.scores = torch.full((start.shape[0],), -float("inf"), device=start.device)
        self.sign = sign

    def offer(self, images: torch.Tensor, responses: torch.Tensor) -> None:
        better = self.sign * responses > self.scores
        self.scores = torch.where(better, self.sign * responses, self.scores)
        self.images[better] = images[better]

    @property
    def responses(self) -> np.ndarray:
        return (self.sign * self.scores).cpu().numpy()


def synthesize(model: nn.Module, seeds: list[int], settings: SynthesisSettings = SynthesisSettings(),
               target: Target = OUTPUT,
               progress: Progress | None = None, cancelled: Callable[[], bool] | None = None,
               partial: Callable[[SynthesisPartial], None] | None = None) -> SynthesisResult:
    """Synthesize one image per seed (computed together); cancelling returns the best so far. ``progress``
    counts the steps; ``partial`` receives the best responses and the current images after each."""
    device = next(model.parameters()).device
    space = _PreparedSpace(device)
    sign = 1.0 if settings.direction == "max" else -1.0
    x = prepare_input(np.stack([initial_noise(seed, settings) for seed in seeds]).astype(np.float32), device)
    best = _BestTracker(x, sign)
    scorable = False  # is ``x`` an image the method scores (the result of a step, before any smoothing)?
    steps_done, stopped = 0, False
    for step in range(settings.steps):
        responses, gradient = _scores_and_gradients(model, target, x)
        if scorable:
            best.offer(x, responses.detach())
        rms = gradient.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt() + 1e-5
        x = space.clip(x + sign * settings.step_size * smooth(gradient / rms, settings.sigma))
        if settings.grayscale:
            x = space.grayscale(x)
        scorable = True
        if settings.smooth_every and step > 0 and step % settings.smooth_every == 0:
            with torch.no_grad():
                best.offer(x, target.score(model, x))
            x = smooth(x, settings.sigma)
            scorable = False
        steps_done = step + 1
        if progress is not None:
            progress(steps_done, settings.steps)
        if partial is not None:
            def current(images: torch.Tensor = x) -> np.ndarray:
                return _as_uint8(restore_pixels(images))
            partial(SynthesisPartial(steps_done, settings.steps, best.responses, current))
        if cancelled is not None and cancelled():
            stopped = True
            break
    if scorable:
        with torch.no_grad():
            best.offer(x, target.score(model, x))
    images = _as_uint8(restore_pixels(best.images))
    with torch.no_grad():
        shown = target.score(model, prepare_input(images, device)).cpu().numpy()
    return SynthesisResult(images=images, responses=shown, seeds=list(seeds),
                           steps_done=steps_done, cancelled=stopped)


def _scores_and_gradients(model: nn.Module, target: Target,
                          x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Target values and their pixel gradients, in chunks small enough to stay in cache."""
    scores, gradients = [], []
    for start in range(0, x.shape[0], CHUNK):
        chunk = x[start:start + CHUNK].detach().requires_grad_(True)
        values = target.score(model, chunk)
        (gradient,) = torch.autograd.grad(values.sum(), chunk)
        scores.append(values.detach())
        gradients.append(gradient)
    return torch.cat(scores), torch.cat(gradients)


def _as_uint8(pixels: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
