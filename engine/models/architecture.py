"""The compact V4 model architecture, exactly as published.

Five conv -> batch-norm -> ReLU stages (stage 0 a full 5x5 convolution, stages 1-4
depthwise 5x5 then pointwise 1x1), then a dense readout of the 28x28 map flattened
in Keras (row, column, channel) order. Parameter names match the published state
dicts, so ``load_state_dict`` takes them unchanged.

This module is the *reference* evaluation: clear, differentiable, any dtype and
device. ``compactrig.engine.models.fast_predict`` evaluates the same function faster.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from compactrig.engine.models.layout import (
    BATCH_NORM_EPS,
    CHANNEL_MEANS,
    KERAS_STRIDE2_PADDING,
    KERNEL_SIZE,
    N_STAGES,
    OUTPUT_SIZE,
    STAGE_STRIDES,
)


class _Layers(nn.Module):
    """Holds the layers under the names the published state dicts use."""

    def __init__(self, filters: Sequence[int]) -> None:
        super().__init__()
        self.layer0_conv = nn.Conv2d(3, filters[0], KERNEL_SIZE)
        self.layer0_bn = nn.BatchNorm2d(filters[0], eps=BATCH_NORM_EPS)
        for k in range(1, N_STAGES):
            n_in, n_out = filters[k - 1], filters[k]
            setattr(self, f"layer{k}_conv_depth",
                    nn.Conv2d(n_in, n_in, KERNEL_SIZE, groups=n_in, bias=False))
            setattr(self, f"layer{k}_conv_point", nn.Conv2d(n_in, n_out, 1))
            setattr(self, f"layer{k}_bn", nn.BatchNorm2d(n_out, eps=BATCH_NORM_EPS))
        self.Beta = nn.Linear(OUTPUT_SIZE * OUTPUT_SIZE * filters[-1], 1)


class CompactModel(nn.Module):
    """One compact model: RGB images in 0..255 -> one predicted response each.

    Input is a float tensor ``(N, 3, 112, 112)`` of raw RGB values (0..255); the
    channel means are subtracted inside, so gradients are with respect to pixels.
    """

    def __init__(self, filters: Sequence[int]) -> None:
        super().__init__()
        if len(filters) != N_STAGES or min(filters) < 1:
            raise ValueError(f"filters per stage must be {N_STAGES} positive ints, got {list(filters)}")
        self.filters = tuple(int(n) for n in filters)
        self.layers = _Layers(self.filters)
        self.eval()

    def stage(self, k: int, x: torch.Tensor) -> torch.Tensor:
        """Stage ``k`` applied to stage ``k - 1``'s map (or, for stage 0, to mean-subtracted pixels)."""
        layers = self.layers
        if k == 0:
            x = layers.layer0_conv(F.pad(x, (2, 2, 2, 2)))
            return F.relu(layers.layer0_bn(x))
        return self.pointwise(k, self.depthwise(k, x))

    def depthwise(self, k: int, x: torch.Tensor) -> torch.Tensor:
        """The spatial half of separable stage ``k`` (1..4): one 5x5 filter per input channel."""
        depth = getattr(self.layers, f"layer{k}_conv_depth")
        if STAGE_STRIDES[k] == 2:
            return F.conv2d(F.pad(x, KERAS_STRIDE2_PADDING), depth.weight, stride=2, groups=x.shape[1])
        return F.conv2d(F.pad(x, (2, 2, 2, 2)), depth.weight, groups=x.shape[1])

    def pointwise(self, k: int, x: torch.Tensor) -> torch.Tensor:
        """The channel-mixing half of separable stage ``k`` (1..4), with its batch norm and ReLU."""
        x = getattr(self.layers, f"layer{k}_conv_point")(x)
        return F.relu(getattr(self.layers, f"layer{k}_bn")(x))

    def stage_outputs(self, images: torch.Tensor, last_stage: int = N_STAGES - 1) -> list[torch.Tensor]:
        """Stage activation maps 0..``last_stage`` (after ReLU), ``(N, filters[k], size, size)``."""
        weight = self.layers.layer0_conv.weight
        means = torch.tensor(CHANNEL_MEANS, dtype=weight.dtype, device=weight.device).view(1, 3, 1, 1)
        x = images.to(weight.dtype) - means
        outputs = []
        for k in range(last_stage + 1):
            x = self.stage(k, x)
            outputs.append(x)
        return outputs

    def stages_from(self, first: int, x: torch.Tensor) -> torch.Tensor:
        """Run stages ``first``.. on stage ``first - 1``'s map: the last stage's map (for ablations)."""
        for k in range(first, N_STAGES):
            x = self.stage(k, x)
        return x

    def readout(self, last_stage: torch.Tensor) -> torch.Tensor:
        """Dense readout of the last stage map, flattened in Keras (row, col, channel) order."""
        flat = last_stage.permute(0, 2, 3, 1).reshape(last_stage.shape[0], -1)
        return self.layers.Beta(flat)[:, 0]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Predicted responses ``(N,)`` for raw RGB images ``(N, 3, 112, 112)``."""
        return self.readout(self.stage_outputs(images)[-1])
