"""Gaussian smoothing in torch, the same filter as ``scipy.ndimage.gaussian_filter``.

Synthesis smooths the gradient every step and the image every 50 steps; doing it as a
separable depthwise convolution on the batch keeps the loop in torch (no NumPy round
trips). Edges are mirrored like SciPy's default ``mode='reflect'`` (d c b a | a b c d),
and the kernel radius is ``int(4 * sigma + 0.5)`` like SciPy's ``truncate=4``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

TRUNCATE = 4.0


def gaussian_kernel(sigma: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian taps, radius ``int(4 * sigma + 0.5)``."""
    radius = int(TRUNCATE * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    taps = torch.exp(-0.5 * (x / sigma) ** 2)
    return (taps / taps.sum()).to(dtype)


def _mirror_indices(size: int, radius: int, device: torch.device) -> torch.Tensor:
    index = torch.arange(-radius, size + radius, device=device)
    index = torch.where(index < 0, -index - 1, index)
    return torch.where(index >= size, 2 * size - index - 1, index)


def smooth(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur each channel of ``(N, C, H, W)`` spatially with a Gaussian of ``sigma`` pixels."""
    if sigma <= 0:
        return images
    taps = gaussian_kernel(sigma, images.dtype).to(images.device)
    radius = (len(taps) - 1) // 2
    channels = images.shape[1]
    rows = _mirror_indices(images.shape[2], radius, images.device)
    cols = _mirror_indices(images.shape[3], radius, images.device)
    padded = images.index_select(2, rows).index_select(3, cols)
    vertical = taps.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    horizontal = taps.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    blurred = F.conv2d(padded, vertical, groups=channels)
    return F.conv2d(blurred, horizontal, groups=channels)
