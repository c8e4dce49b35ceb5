"""Naturalistic texture images (coloured 1/f noise): a candidate pool that needs no image files.

Natural images have roughly 1/f amplitude spectra; random-phase noise with that spectrum,
in independent colour-opponent channels, is the standard stand-in when no photographs are
at hand. The demo closed loop draws its "natural" candidates from here; a lab names a
folder of its own images instead.
"""

from __future__ import annotations

import numpy as np

from compactrig.engine.models.layout import IMAGE_SIZE

OPPONENT = np.array([[1.0, 1.0, 1.0], [1.0, -1.0, 0.0], [0.5, 0.5, -1.0]]) / np.sqrt([3.0, 2.0, 1.5])[:, None]
"""Luminance, red-green and blue-yellow directions (rows) in RGB."""


def pink_noise_images(n: int, seed: int = 0, contrast: float = 45.0, exponent: float = 1.0) -> np.ndarray:
    """uint8 ``(n, 112, 112, 3)``: random-phase ``1/f**exponent`` noise around grey, RMS ``contrast``."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(IMAGE_SIZE)[:, None]
    fx = np.fft.rfftfreq(IMAGE_SIZE)[None, :]
    radius = np.hypot(fy, fx)
    amplitude = np.where(radius > 0, 1.0 / np.maximum(radius, 1.0 / IMAGE_SIZE) ** exponent, 0.0)
    spectrum = amplitude * np.exp(2j * np.pi * rng.random((n, 3, IMAGE_SIZE, IMAGE_SIZE // 2 + 1)))
    channels = np.fft.irfft2(spectrum, s=(IMAGE_SIZE, IMAGE_SIZE))
    channels /= channels.std(axis=(2, 3), keepdims=True)
    channels *= np.array([1.0, 0.5, 0.35])[None, :, None, None]  # luminance dominates, as in photographs
    rgb = np.einsum("ncyx,ck->nyxk", channels, OPPONENT)
    return np.clip(np.rint(128.0 + contrast * rgb), 0, 255).astype(np.uint8)
