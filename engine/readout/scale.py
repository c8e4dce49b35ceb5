"""A readout over the bank at several spatial scales: the mean of ridge readouts over each.

Which spatial resolution suits a new unit's readout differs from session to session. Measured
with the other sessions' models as features, readouts fitted on 480 images and judged on images
601-1200 (median ratio to the published models' r): on 190923 (33 units) the outputs alone reach
0.918x, with the last stage's channels in 2x2 blocks 0.979x, in 4x4 blocks 0.937x; on 201025 (89
units) the outputs alone reach 0.952x, 2x2 0.918x, 4x4 0.929x. The mean of the four readouts
(outputs; outputs with 1x1, 2x2 and 4x4 blocks) reaches 0.979x and 0.953x: close to the best
scale on either session without knowing which it is. Each readout chooses its own penalty by
nested cross-validation (``compactrig.engine.readout.ridge``); their mean is still one linear readout of
the features, so it labels any image as cheaply as one.

The coarser blocks are means of the 4x4 blocks (7x7 pixels of the 28x28 map each), so one pass
through the bank gives every scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compactrig.engine.readout.ridge import RidgeFit, fit_ridge
from compactrig.engine.stats.correlation import pearson_r
from compactrig.engine.stats.response_sums import PerImageSums

FINEST_GRID = 4
"""Blocks per side of the last stage's map that the bank's pass keeps; coarser scales are their means."""
SCALES = (0, 1, 2, 4)
"""Blocks per side of each readout's spatial features; 0: the outputs alone."""


def coarser_blocks(blocks: np.ndarray, grid: int) -> np.ndarray:
    """``(n_images, channels * grid^2)`` from ``FINEST_GRID`` blocks laid out channel by channel
    (``(n_images, channels * FINEST_GRID^2)``, as ``outputs_and_grid`` gives them)."""
    if FINEST_GRID % grid:
        raise ValueError(f"a {grid}x{grid} grid does not divide the {FINEST_GRID}x{FINEST_GRID} blocks")
    step = FINEST_GRID // grid
    fine = np.asarray(blocks).reshape(len(blocks), -1, grid, step, grid, step)
    return fine.mean(axis=(3, 5)).reshape(len(blocks), -1)


def scale_features(outputs: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """Every scale's features side by side: outputs, then the blocks of each grid in ``SCALES``."""
    return np.concatenate([outputs] + [coarser_blocks(blocks, grid) for grid in SCALES if grid], axis=1)


def scale_columns(n_outputs: int, n_channels: int) -> list[np.ndarray]:
    """For each scale, its readout's columns of ``scale_features``: the outputs and that grid's blocks."""
    columns, start = [], n_outputs
    for grid in SCALES:
        width = n_channels * grid * grid  # none for the outputs alone
        columns.append(np.concatenate([np.arange(n_outputs), np.arange(start, start + width)]))
        start += width
    return columns


def describe_scales(n_neurons: int) -> str:
    """What the readout reads, for a provenance record."""
    grids = ", ".join(f"{grid}x{grid}" for grid in SCALES if grid)
    return (f"{n_neurons} bank neurons' outputs alone and with their last-stage channels averaged over "
            f"{grids} blocks: the mean of one ridge readout per scale")


@dataclass(frozen=True)
class ScaleReadout:
    """One ridge readout per scale; the prediction is their mean."""

    fits: tuple[RidgeFit, ...]
    columns: tuple[np.ndarray, ...]
    held_out_r: np.ndarray
    """Per unit: r of the mean of the readouts' nested cross-validated predictions."""

    @property
    def alphas(self) -> np.ndarray:
        """(n_units, n_scales): each readout's relative penalty."""
        return np.stack([fit.alphas for fit in self.fits], axis=1)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """(n_units, n_images) predicted mean responses from ``scale_features`` columns."""
        features = np.asarray(features, dtype=np.float64)
        return np.mean([fit.predict(features[:, cols]) for fit, cols in zip(self.fits, self.columns)], axis=0)


def fit_scale_readout(features: np.ndarray, responses: PerImageSums, n_outputs: int, seed: int = 0) -> ScaleReadout:
    """Fit a readout per scale on ``scale_features`` of the images (rows of ``responses``; each unit on those
    it answered)."""
    n_blocks = features.shape[1] - n_outputs
    per_channel = sum(grid * grid for grid in SCALES)
    if n_blocks % per_channel:
        raise ValueError(f"{features.shape[1]} columns are not {n_outputs} outputs and blocks at scales {SCALES}")
    columns = scale_columns(n_outputs, n_blocks // per_channel)
    fits = tuple(fit_ridge(features[:, cols], responses, seed=seed) for cols in columns)
    held_out = np.mean([fit.held_out for fit in fits], axis=0)  # NaN where a unit has no response
    r = pearson_r(held_out, responses.means().T, where=responses.answered().T)
    return ScaleReadout(fits, tuple(columns), r)
