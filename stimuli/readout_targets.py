"""What a synthesis through a readout drives when the other recorded units must be held still.

A target in the sense of ``compactrig.stimuli.targets``: ``score(model, prepared)`` gives a differentiable
value per image that ``compactrig.stimuli.synthesis.synthesize`` maximizes (or minimizes). It is for images
that are *selective*: they move one unit while every other recorded unit stays near its baseline (its mean
response to the images shown so far), each unit measured in units of its own response spread.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from compactrig.engine.readout.model import ReadoutModel


@dataclass(frozen=True)
class PopulationTarget:
    """``sign * z_u - weight * mean_{v != u} z_v^2`` with ``z = (prediction - baseline) / scale``.

    Maximized, it drives unit ``index`` up (``sign`` +1) or down (-1) while the others
    stay near baseline; ``weight`` trades the two.
    """

    index: int
    baseline: tuple[float, ...]
    scale: tuple[float, ...]
    weight: float = 1.0
    sign: float = 1.0

    @classmethod
    def for_unit(cls, index: int, mean_responses: np.ndarray, weight: float = 1.0,
                 sign: float = 1.0) -> PopulationTarget:
        """Baselines and scales from the units' mean responses per image ``(n_images, n_units)``; a NaN (no
        response of that unit to that image) is left out of that unit's."""
        means = np.asarray(mean_responses, dtype=np.float64)
        return cls(index, tuple(np.nanmean(means, axis=0)), tuple(np.maximum(np.nanstd(means, axis=0), 1e-6)),
                   weight, sign)

    def z_scores(self, model: ReadoutModel, prepared: torch.Tensor) -> torch.Tensor:
        baseline = torch.tensor(self.baseline, dtype=prepared.dtype, device=prepared.device)
        scale = torch.tensor(self.scale, dtype=prepared.dtype, device=prepared.device)
        return (model(prepared) - baseline) / scale

    def score(self, model: ReadoutModel, prepared: torch.Tensor) -> torch.Tensor:
        z = self.z_scores(model, prepared)
        others = torch.cat([z[:, :self.index], z[:, self.index + 1:]], dim=1)
        held = others.pow(2).mean(dim=1) if others.shape[1] else torch.zeros_like(z[:, 0])
        return self.sign * z[:, self.index] - self.weight * held

    def describe(self) -> str:
        direction = "up" if self.sign > 0 else "down"
        return f"readout unit {self.index} {direction}, others near baseline (weight {self.weight:g})"
