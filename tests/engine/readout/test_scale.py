"""The readout over several spatial scales: coarser blocks checked against pooling the maps
themselves, the readout against ridge fits made by hand on each scale's features."""

from __future__ import annotations

import numpy as np
import torch

from compactrig.engine.readout.ridge import fit_ridge
from compactrig.engine.readout.scale import FINEST_GRID, coarser_blocks, fit_scale_readout, scale_features
from compactrig.engine.stats.response_sums import PerImageSums


def maps_of_two_neurons(n_images: int, seed: int = 0) -> list[torch.Tensor]:
    """Last-stage maps (images, channels, 28, 28) of two bank neurons with 3 and 2 channels."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(n_images, channels, 28, 28, generator=generator, dtype=torch.float64) for channels in (3, 2)]


def pooled(maps: list[torch.Tensor], grid: int) -> np.ndarray:
    """What ``outputs_and_grid`` lays out: each neuron's channels, each over grid x grid blocks."""
    return torch.cat([torch.nn.functional.adaptive_avg_pool2d(m, grid).flatten(1) for m in maps], 1).double().numpy()


def test_coarser_blocks_are_the_maps_pooled_over_larger_blocks():
    maps = maps_of_two_neurons(4)
    finest = pooled(maps, FINEST_GRID)
    for grid in (1, 2):
        np.testing.assert_allclose(coarser_blocks(finest, grid), pooled(maps, grid), rtol=1e-6)


def test_the_readout_is_the_mean_of_one_ridge_readout_per_scale_and_finds_a_coarse_feature():
    """A unit that answers the mean of one channel over the left half of the map (a feature the 1x1
    and 4x4 scales see only partly): the mean readout predicts new images well, and equals the mean
    of ridge fits made on each scale's features built independently from the maps."""
    rng = np.random.default_rng(0)
    maps = maps_of_two_neurons(300, seed=1)
    outputs = np.stack([m.mean(dim=(1, 2, 3)).double().numpy() for m in maps], 1)
    response = maps[1][:, 0, :, :14].mean(dim=(1, 2)).double().numpy()
    response = (response - response.mean()) / response.std() + rng.normal(0, 0.3, len(response))
    noise = rng.normal(0, 1, len(response))
    y = np.stack([response, noise], 1)
    train, test = slice(0, 200), slice(200, 300)
    trials = PerImageSums(["signal", "noise"], [f"i{k}" for k in range(200)])
    trials.add(trials.image_ids, y[train])

    features = scale_features(outputs, pooled(maps, FINEST_GRID))
    readout = fit_scale_readout(features[train], trials, n_outputs=2)

    by_hand = [outputs] + [np.concatenate([outputs, pooled(maps, grid)], 1) for grid in (1, 2, 4)]
    fits = [fit_ridge(f[train], trials) for f in by_hand]
    expected = np.mean([fit.predict(f[test]) for fit, f in zip(fits, by_hand)], axis=0)
    np.testing.assert_allclose(readout.predict(features[test]), expected, rtol=1e-8, atol=1e-10)
    averaged_held_out = np.mean([fit.held_out for fit in fits], axis=0)
    assert abs(readout.held_out_r[0] - np.corrcoef(averaged_held_out[0], y[train, 0])[0, 1]) < 1e-9
    assert readout.alphas.shape == (2, 4)

    assert np.corrcoef(readout.predict(features[test])[0], response[test])[0, 1] > 0.85
    assert abs(np.corrcoef(readout.predict(features[test])[1], noise[test])[0, 1]) < 0.3 and readout.held_out_r[1] < 0.3
