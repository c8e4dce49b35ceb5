"""A second, independent float64 evaluation of a published compact model, for cross-checks.

Written from the data README alone (functional PyTorch, no engine code), so agreement
with ``engine`` is evidence, not a tautology.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

MEANS = torch.tensor([116.222, 109.270, 100.381], dtype=torch.float64).view(1, 3, 1, 1)


def _bn(x: torch.Tensor, state: dict, prefix: str) -> torch.Tensor:
    scale = state[f"{prefix}.weight"] / torch.sqrt(state[f"{prefix}.running_var"] + 1e-5)
    shift = state[f"{prefix}.bias"] - state[f"{prefix}.running_mean"] * scale
    return x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)


def stage_map(state: dict, images_uint8: np.ndarray, last_stage: int = 4) -> torch.Tensor:
    """Stage ``last_stage``'s map (N, C, H, W) after its ReLU, in float64."""
    state = {k: v.double() for k, v in state.items()}
    x = torch.from_numpy(np.array(images_uint8)).double().permute(0, 3, 1, 2) - MEANS
    x = F.conv2d(F.pad(x, (2, 2, 2, 2)), state["layers.layer0_conv.weight"], state["layers.layer0_conv.bias"])
    x = torch.relu(_bn(x, state, "layers.layer0_bn"))
    for k in range(1, last_stage + 1):
        depth = state[f"layers.layer{k}_conv_depth.weight"]
        if k in (1, 2):  # Keras 'same' at stride 2: one pixel before, two after
            x = F.conv2d(F.pad(x, (1, 2, 1, 2)), depth, stride=2, groups=x.shape[1])
        else:
            x = F.conv2d(F.pad(x, (2, 2, 2, 2)), depth, groups=x.shape[1])
        x = F.conv2d(x, state[f"layers.layer{k}_conv_point.weight"], state[f"layers.layer{k}_conv_point.bias"])
        x = torch.relu(_bn(x, state, f"layers.layer{k}_bn"))
    return x


def evaluate(state: dict, images_uint8: np.ndarray) -> np.ndarray:
    """Responses (N,) of the model with ``state`` to uint8 images (N, 112, 112, 3), in float64."""
    x = stage_map(state, images_uint8)
    flat = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # Keras order: row, column, channel
    state = {k: v.double() for k, v in state.items()}
    return (flat @ state["layers.Beta.weight"].t() + state["layers.Beta.bias"])[:, 0].numpy()
