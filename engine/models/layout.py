"""The published architecture's sizes and counts, without PyTorch.

Listing a bank (ids, filters per stage, parameters) needs these numbers and nothing else, so
``compactrig models list`` and the bank listing answer without importing torch;
``compactrig.engine.models.architecture`` builds the model itself from them.
"""

from __future__ import annotations

from collections.abc import Sequence

IMAGE_SIZE = 112
KERNEL_SIZE = 5
N_STAGES = 5
CHANNEL_MEANS = (116.222, 109.270, 100.381)
"""Per-channel means (R, G, B, in 0..255 units) subtracted before stage 0."""
BATCH_NORM_EPS = 1e-5
"""The converted running variances already absorb Keras' 1e-3: use PyTorch's default."""
STAGE_STRIDES = (1, 2, 2, 1, 1)
KERAS_STRIDE2_PADDING = (1, 2, 1, 2)
"""Keras 'same' padding for a 5x5 kernel at stride 2 on an even size: 1 before, 2 after."""
OUTPUT_SIZE = IMAGE_SIZE // 4


def stage_sizes() -> list[int]:
    """Spatial size of each stage's output map (112, 56, 28, 28, 28)."""
    sizes, size = [], IMAGE_SIZE
    for stride in STAGE_STRIDES:
        size //= stride
        sizes.append(size)
    return sizes


def parameter_count(filters: Sequence[int]) -> int:
    """Trainable parameters of a compact model with these filters per stage.

    Counts conv weights and biases, batch-norm scale and shift, and the readout;
    batch-norm running statistics are buffers, not parameters.
    """
    n = filters
    count = 3 * n[0] * KERNEL_SIZE**2 + n[0] + 2 * n[0]
    for k in range(1, N_STAGES):
        count += n[k - 1] * KERNEL_SIZE**2 + n[k - 1] * n[k] + n[k] + 2 * n[k]
    count += OUTPUT_SIZE * OUTPUT_SIZE * n[-1] + 1
    return count


def forward_flops(filters: Sequence[int]) -> int:
    """Arithmetic of one forward pass on one image (multiply-adds x 2): for benchmarks that report how
    close a computation comes to the machine's limit. Depthwise filters run at their stage's output size."""
    sizes = stage_sizes()
    macs = sizes[0] ** 2 * 3 * KERNEL_SIZE**2 * filters[0]
    for k in range(1, N_STAGES):
        macs += sizes[k] ** 2 * filters[k - 1] * (KERNEL_SIZE**2 + filters[k])
    macs += OUTPUT_SIZE**2 * filters[-1]
    return 2 * macs

