"""What a compact model is made of, for one neuron and one image: the Inspect view's numbers.

The paper's analysis: stage-0 filters (colour and orientation), each stage's activation
maps for an image, the weights of the consolidation stage (the dense readout over the
last 28x28 map) and which stage-0 filters carry the neuron's preference, measured by
ablation: the drop in the predicted response when one filter's stage-0 output is set
to zero. Everything is computed with the reference model in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from compactrig.engine.models.architecture import CompactModel
from compactrig.engine.models.layout import OUTPUT_SIZE


@dataclass
class Inspection:
    """One neuron and one image, taken apart."""

    response: float
    filters_rgb: np.ndarray
    """Stage-0 filters as colour images ``(n0, 5, 5, 3)`` in 0..1 (0.5 = zero weight)."""
    activations: list[np.ndarray]
    """Each stage's map for the image, ``(filters, size, size)``."""
    readout_weights: np.ndarray
    """Consolidation weights per last-stage channel and position ``(n4, 28, 28)``."""
    contributions: np.ndarray
    """Per stage-0 filter: response minus the response with that filter's output zeroed."""

    def readout_map(self) -> np.ndarray:
        """|Readout weight| per position summed over channels ``(28, 28)``, scaled to 0..1: where it looks
        (absolute values, because channels with opposite signs at one place would cancel in a plain sum)."""
        summed = np.abs(self.readout_weights).sum(axis=0)
        top = summed.max()
        return summed / top if top > 0 else summed

    def channel_weights(self) -> np.ndarray:
        """Sum of |readout weights| per last-stage channel: which channels the neuron consolidates."""
        return np.abs(self.readout_weights).sum(axis=(1, 2))

    def strongest_filters(self, count: int = 3) -> list[int]:
        """Stage-0 filters whose removal costs the most response, strongest first."""
        return [int(k) for k in np.argsort(-self.contributions)[:count]]


def filters_rgb(model: CompactModel) -> np.ndarray:
    """Stage-0 filters as colour patches: each scaled by its own largest |weight| around mid-grey."""
    weights = model.layers.layer0_conv.weight.detach().double().permute(0, 2, 3, 1).numpy()
    scale = np.abs(weights).max(axis=(1, 2, 3), keepdims=True)
    return 0.5 + 0.5 * weights / np.where(scale > 0, scale, 1.0)


def readout_weights(model: CompactModel) -> np.ndarray:
    """The dense readout as ``(n4, 28, 28)``: the published weights are in (row, column, channel) order."""
    beta = model.layers.Beta.weight.detach().double().numpy().reshape(OUTPUT_SIZE, OUTPUT_SIZE, -1)
    return beta.transpose(2, 0, 1)


def inspect(model: CompactModel, image: np.ndarray) -> Inspection:
    """Take ``model`` apart on one uint8 image ``(112, 112, 3)`` (the model is converted to float64)."""
    model = model.double()
    x = torch.from_numpy(np.asarray(image, dtype=np.float64)).permute(2, 0, 1)[None]
    with torch.no_grad():
        stages = model.stage_outputs(x)
        response = float(model.readout(stages[-1])[0])
        n0 = stages[0].shape[1]
        ablated = stages[0].repeat(n0, 1, 1, 1)
        ablated[torch.arange(n0), torch.arange(n0)] = 0.0
        without = model.readout(model.stages_from(1, ablated)).numpy()
    return Inspection(response, filters_rgb(model), [s[0].numpy() for s in stages], readout_weights(model),
                      response - without)


def mosaic(maps: np.ndarray, columns: int | None = None, scale: bool = True) -> np.ndarray:
    """Maps ``(C, H, W[, 3])`` tiled in a grid with 1-pixel NaN gaps; ``scale``: divided by their joint max |value|."""
    count, height, width = maps.shape[:3]
    columns = columns or int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / columns))
    tiles = np.full((rows * (height + 1) - 1, columns * (width + 1) - 1) + maps.shape[3:], np.nan)
    top = np.abs(maps).max() if maps.size and scale else 0.0
    scaled = maps / top if top > 0 else maps
    for k in range(count):
        r, c = divmod(k, columns)
        tiles[r * (height + 1):r * (height + 1) + height, c * (width + 1):c * (width + 1) + width] = scaled[k]
    return tiles
