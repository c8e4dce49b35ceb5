"""A fitted readout as a differentiable model: bank models, their features, the ridge weights.

This is what makes a readout "a model like any other": ``forward`` takes the prepared
(mean-subtracted, flipped) input every ``FoldedModel`` takes and returns each readout
unit's predicted response, so the synthesis code drives it unchanged. Only the bank
neurons the readout reads from are evaluated.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from compactrig.engine.models.fast_predict import Predictor, prepare_input
from compactrig.engine.models.preprocess import to_model_batch
from compactrig.engine.readout.features import FeatureSpec, pooled_stage


class ReadoutModel(nn.Module):
    """``(N, n_units)`` responses: ``features(x) @ weights.T + intercepts`` over the spec's bank neurons."""

    weights: torch.Tensor
    intercepts: torch.Tensor

    def __init__(self, predictor: Predictor, spec: FeatureSpec, weights: np.ndarray, intercepts: np.ndarray,
                 units: list[str]) -> None:
        super().__init__()
        weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
        if weights.shape[0] != len(units):
            raise ValueError(f"weights has {weights.shape[0]} rows for {len(units)} units")
        self.spec = spec
        self.units = list(units)
        self.neurons = nn.ModuleList([predictor.folded(n) for n in spec.neuron_ids])
        device = predictor.device
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float32, device=device))
        self.register_buffer("intercepts", torch.tensor(np.asarray(intercepts, dtype=np.float64),
                                                        dtype=torch.float32, device=device))
        self.requires_grad_(False)
        self.eval()

    def features(self, prepared: torch.Tensor) -> torch.Tensor:
        """``(N, n_features)`` in the spec's column order (differentiable with respect to the input)."""
        if self.spec.stage is None:
            return torch.stack([model(prepared) for model in self.neurons], dim=1)
        return torch.cat([pooled_stage(model, prepared, self.spec.stage)  # type: ignore[arg-type]  # ModuleList: Module
                          for model in self.neurons], dim=1)

    def forward(self, prepared: torch.Tensor) -> torch.Tensor:
        return self.features(prepared) @ self.weights.T + self.intercepts

    def predict(self, images: np.ndarray) -> np.ndarray:
        """float64 ``(n_units, n_images)`` for uint8 or 0..255 images ``(n, 112, 112, 3)``."""
        device = self.weights.device
        prepared = prepare_input(to_model_batch(np.asarray(images)), device)
        with torch.inference_mode():
            out = torch.cat([self(prepared[i:i + 16]) for i in range(0, len(prepared), 16)])
        return out.double().cpu().numpy().T


class ReadoutUnit(nn.Module):
    """One readout unit of a ``ReadoutModel``, as a model with one output (like ``FoldedModel``)."""

    def __init__(self, model: ReadoutModel, index: int) -> None:
        super().__init__()
        self.model = model
        self.index = index

    def forward(self, prepared: torch.Tensor) -> torch.Tensor:
        return self.model(prepared)[:, self.index]

