"""The embedded demo bank: three compact models whose weights are written in code.

They use exactly the published architecture, so every part of the app (prediction,
synthesis, inspection, simulated neurons) runs on a fresh machine with no download.
Each is a small, readable circuit:

- ``demo:0`` *vertical edge*: quadrature Gabor pairs (vertical and horizontal) in
  stage 0, rectified into local orientation energy; the readout prefers vertical
  energy and is suppressed by horizontal energy.
- ``demo:1`` *red blob*: a red-minus-green colour-opponent stage-0 filter, pooled
  over the receptive field; green or achromatic patterns leave it silent.
- ``demo:2`` *dot detector*: vertical and horizontal energies combined as
  ``min(Ev, Eh)`` (built from ReLUs: ``Ev - relu(Ev - Eh)``), so a dot lattice,
  which has both orientations, drives it and a grating, which has one, does not.

Batch norm is the identity (running variance ``1 - eps``), so each stage is
conv -> ReLU as written here.
"""

from __future__ import annotations

import numpy as np

from compactrig.engine.models.bank import ModelBank, NeuronInfo, StateDict
from compactrig.engine.models.layout import BATCH_NORM_EPS, KERNEL_SIZE, N_STAGES, OUTPUT_SIZE

GABOR_PERIOD = 4.0
"""Pixels per cycle of the stage-0 Gabors (the probe gratings use the same)."""
GABOR_SIGMA = 1.4
RF_SIGMA = 6.0
"""Receptive-field radius on the 28x28 readout map (about a quarter of the image)."""
_GAIN = 0.05


def _grid() -> tuple[np.ndarray, np.ndarray]:
    half = KERNEL_SIZE // 2
    y, x = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float64)
    return y, x


def _gabor(orientation_deg: float, phase: float) -> np.ndarray:
    """A zero-mean 5x5 Gabor; 0 degrees = vertical bars (varying along x)."""
    y, x = _grid()
    theta = np.deg2rad(orientation_deg)
    along = x * np.cos(theta) + y * np.sin(theta)
    kernel = np.cos(2 * np.pi * along / GABOR_PERIOD + phase) * np.exp(-(x**2 + y**2) / (2 * GABOR_SIGMA**2))
    return kernel - kernel.mean()


def _gaussian(sigma: float, size: int = KERNEL_SIZE) -> np.ndarray:
    half = size // 2
    y, x = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float64)
    kernel = np.exp(-(x**2 + y**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def _luminance(kernel: np.ndarray) -> np.ndarray:
    """The same spatial kernel on R, G and B: a luminance filter ``(3, 5, 5)``."""
    return np.stack([kernel] * 3) / 3


ORIENTATIONS = (0.0, 90.0, 45.0, 135.0)


def _energy_filters() -> np.ndarray:
    """Stage-0 filters: +/- even and odd Gabors, four per orientation of ``ORIENTATIONS``."""
    filters = []
    for orientation in ORIENTATIONS:
        for phase in (0.0, np.pi / 2):
            gabor = _luminance(_gabor(orientation, phase))
            filters += [gabor, -gabor]
    return np.stack(filters)


def _red_green_filters() -> np.ndarray:
    """Stage-0 filter: smoothed R minus G (red ON), one channel."""
    blur = _gaussian(1.5)
    return np.stack([np.stack([blur, -blur, np.zeros_like(blur)])])


class _Circuit:
    """Collects the weights of one demo model stage by stage (numpy; ``readout`` makes the state dict)."""

    def __init__(self, stage0: np.ndarray) -> None:
        self.state: dict[str, np.ndarray] = {}
        self.filters = [stage0.shape[0]]
        self._conv("layers.layer0_conv", stage0, np.zeros(stage0.shape[0]))
        self._identity_bn(0, stage0.shape[0])

    def _conv(self, name: str, weight: np.ndarray, bias: np.ndarray | None) -> None:
        self.state[f"{name}.weight"] = np.asarray(weight, dtype=np.float64)
        if bias is not None:
            self.state[f"{name}.bias"] = np.asarray(bias, dtype=np.float64)

    def _identity_bn(self, stage: int, n: int) -> None:
        prefix = f"layers.layer{stage}_bn"
        self.state[f"{prefix}.weight"] = np.ones(n)
        self.state[f"{prefix}.bias"] = np.zeros(n)
        self.state[f"{prefix}.running_mean"] = np.zeros(n)
        self.state[f"{prefix}.running_var"] = np.full(n, 1 - BATCH_NORM_EPS)
        self.state[f"{prefix}.num_batches_tracked"] = np.array(0, dtype=np.int64)

    def stage(self, depth_kernel: np.ndarray, point: list[list[float]]) -> None:
        """A separable stage: the same depthwise kernel on every channel, then a 1x1 mix."""
        k = len(self.filters)
        n_in = self.filters[-1]
        point_array = np.asarray(point, dtype=np.float64)
        if point_array.shape[1] != n_in:
            raise ValueError(f"stage {k}: mixing matrix has {point_array.shape[1]} inputs, expected {n_in}")
        self._conv(f"layers.layer{k}_conv_depth", np.stack([depth_kernel[None]] * n_in), None)
        self._conv(f"layers.layer{k}_conv_point", point_array[:, :, None, None], np.zeros(len(point_array)))
        self._identity_bn(k, len(point_array))
        self.filters.append(len(point_array))

    def readout(self, channel_gains: list[float]) -> tuple[tuple[int, ...], StateDict]:
        """A Gaussian receptive field on the 28x28 map, one signed gain per last-stage channel."""
        if len(self.filters) != N_STAGES or self.filters[-1] != len(channel_gains):
            raise ValueError(f"demo circuit must have {N_STAGES} stages ending in "
                             f"{len(channel_gains)} channels, has {self.filters}")
        half = (OUTPUT_SIZE - 1) / 2
        y, x = np.mgrid[0:OUTPUT_SIZE, 0:OUTPUT_SIZE] - half
        field = np.exp(-(x**2 + y**2) / (2 * RF_SIGMA**2))
        field = field / field.sum()
        weights = field[:, :, None] * np.asarray(channel_gains)[None, None, :]  # (row, col, channel)
        self.state["layers.Beta.weight"] = weights.reshape(1, -1)
        self.state["layers.Beta.bias"] = np.zeros(1)
        import torch  # only when a demo model's weights are asked for: listing the bank needs none
        return tuple(self.filters), {name: torch.from_numpy(value) for name, value in self.state.items()}


def _delta() -> np.ndarray:
    kernel = np.zeros((KERNEL_SIZE, KERNEL_SIZE))
    kernel[KERNEL_SIZE // 2, KERNEL_SIZE // 2] = 1.0
    return kernel


def _orientation_energies(circuit: _Circuit) -> None:
    """Stage 1: pool |even| + |odd| per orientation -> [E0, E90, E45, E135] at 56x56."""
    groups = len(ORIENTATIONS)
    circuit.stage(_gaussian(1.0), [[1.0 if j // 4 == i else 0.0 for j in range(4 * groups)]
                                   for i in range(groups)])


def _vertical_edge() -> tuple[tuple[int, ...], StateDict]:
    circuit = _Circuit(_energy_filters())
    _orientation_energies(circuit)
    circuit.stage(_gaussian(1.0), [[1.0, -0.5, -0.25, -0.25]])
    circuit.stage(_delta(), [[1.0]])
    circuit.stage(_delta(), [[1.0]])
    return circuit.readout([_GAIN])


def _red_blob() -> tuple[tuple[int, ...], StateDict]:
    circuit = _Circuit(_red_green_filters())
    for kernel in (_gaussian(1.0), _gaussian(1.0), _delta(), _delta()):
        circuit.stage(kernel, [[1.0]])
    return circuit.readout([_GAIN * 4])


def _dot_detector() -> tuple[tuple[int, ...], StateDict]:
    """min over the four orientation energies, as ``min(a, b) = a - relu(a - b)`` in three steps."""
    circuit = _Circuit(_energy_filters())
    _orientation_energies(circuit)
    # relu(E0 - E90), E0, relu(E45 - E135), E45
    circuit.stage(_gaussian(1.0), [[1, -1, 0, 0], [1, 0, 0, 0], [0, 0, 1, -1], [0, 0, 1, 0]])
    # m1 = min(E0, E90), m2 = min(E45, E135)
    circuit.stage(_delta(), [[-1, 1, 0, 0], [0, 0, -1, 1]])
    # relu(m1 - m2), m1; the readout takes m1 - relu(m1 - m2) = min(m1, m2)
    circuit.stage(_delta(), [[1, -1], [1, 0]])
    return circuit.readout([-_GAIN * 2, _GAIN * 2])


_DEMO_NEURONS = (("vertical edge", (16, 4, 1, 1, 1), _vertical_edge), ("red blob", (1, 1, 1, 1, 1), _red_blob),
                 ("dot detector", (16, 4, 4, 2, 2), _dot_detector))
"""Label, filters per stage (what the bank lists; the loaded weights are checked against them), builder."""


def build_demo_bank() -> ModelBank:
    """The embedded demo bank (ids ``demo:0`` .. ``demo:2``), deterministic, built in code when first used."""
    builders = {f"demo:{index}": build for index, (_, _, build) in enumerate(_DEMO_NEURONS)}
    neurons = [NeuronInfo(f"demo:{index}", filters, f"{label} (demo model, no recorded neuron)")
               for index, (label, filters, _) in enumerate(_DEMO_NEURONS)]
    return ModelBank(name="demo", source="embedded demo bank (resources/demo_bank.py)",
                     neurons=neurons, _load_state=lambda neuron_id: builders[neuron_id]()[1])
