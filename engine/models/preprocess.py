"""Bring any image to what the compact models see: 112x112 RGB, 0..255.

Conventions (documented in the README):
- grayscale is replicated to R, G and B; an alpha channel is dropped (the rig shows
  opaque pixels, so transparency has no meaning for a neuron);
- a non-square image is centre-cropped to a square first, keeping the aspect ratio
  of what the animal would see, then resized to 112x112 with PIL's bicubic filter;
- pixel values stay in 0..255; the channel means are subtracted inside the model.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from compactrig.engine.models.layout import IMAGE_SIZE


def to_model_image(image: Image.Image | np.ndarray) -> np.ndarray:
    """One image as uint8 ``(112, 112, 3)`` RGB, converted as the module docstring says."""
    if isinstance(image, np.ndarray):
        image = _array_to_pil(image)
    image = image.convert("RGB")
    width, height = image.size
    if width != height:
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        image = image.crop((left, top, left + side, top + side))
    if image.size != (IMAGE_SIZE, IMAGE_SIZE):
        image = image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8)


def _array_to_pil(array: np.ndarray) -> Image.Image:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"image array of shape {array.shape}: expected (H, W), (H, W, 3) or (H, W, 4)")
    if array.dtype != np.uint8:
        array = np.clip(np.rint(array), 0, 255).astype(np.uint8)
    return Image.fromarray(array)


def to_model_batch(images: np.ndarray) -> np.ndarray:
    """A stack of images as uint8 ``(N, 112, 112, 3)``; a correct stack is returned as is."""
    if images.ndim == 4 and images.shape[1:] == (IMAGE_SIZE, IMAGE_SIZE, 3) and images.dtype == np.uint8:
        return images
    return np.stack([to_model_image(image) for image in images])
