"""Fast prediction: many models on many images, the hot path of live fits and ``predict``.

The same function as ``CompactModel``, evaluated faster by:
- folding batch norm into the convolution weights (in float64, then cast to float32);
- flipping image and kernels spatially, which turns Keras' asymmetric stride-2
  padding (1 before, 2 after) into symmetric padding, so no padded copies are made;
- subtracting the channel means once per image block, shared by every model;
- on the CPU, oneDNN convolutions with the ReLU fused in (no extra pass over the
  large stage-0 map), channels-last throughout, and models run in parallel, one
  intra-op thread each (small convolutions scale poorly across threads);
- inference mode, small image chunks that stay in cache.
``benchmarks/predict.py`` compares it with a straightforward per-model loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from compactrig.engine.errors import CompactRigError
from compactrig.engine.models.architecture import CompactModel
from compactrig.engine.models.bank import ModelBank
from compactrig.engine.models.folded_cache import cached_weights, keep_weights
from compactrig.engine.models.layout import CHANNEL_MEANS, IMAGE_SIZE, N_STAGES, OUTPUT_SIZE, STAGE_STRIDES
from compactrig.engine.models.preprocess import to_model_batch
from compactrig.engine.progress import Progress

CHUNK = 4
"""Images per forward call: small enough that a stage-0 map stays in cache."""
BLOCK = 512
"""Images converted to float at once, bounding memory for large image sets."""
CPU_IMAGE_CHUNK = 1024
"""Images a stream decodes and predicts at a time on a CPU (fixed, so results never depend on the machine)."""
WIDEST_PUBLISHED_STAGE = 80
"""Upper bound on the filters of any stage of the published models (77 at most), for sizing before one is loaded."""
GPU_MEMORY_SHARE = 0.5
"""Share of the GPU's free memory one forward batch may fill (the rest: other processes, fragmentation)."""
_FUSED_CONV: Any = getattr(getattr(torch.ops, "mkldnn", None), "_convolution_pointwise", None) \
    if torch.backends.mkldnn.is_available() else None
"""oneDNN convolution with a fused ReLU (what torch.compile uses on the CPU); None falls back to eager."""


class Cancelled(Exception):
    """Raised when the caller's ``cancelled()`` returned True."""


class FoldedModel(nn.Module):
    """A compact model with batch norm folded in, on spatially flipped, mean-subtracted input."""

    def __init__(self, model: CompactModel) -> None:
        super().__init__()
        self._build(folded_weights(model))

    @classmethod
    def from_weights(cls, weights: dict[str, torch.Tensor]) -> FoldedModel:
        """The model whose ``state_dict()`` is ``weights`` (as kept by ``engine.models.folded_cache``)."""
        folded = cls.__new__(cls)
        nn.Module.__init__(folded)
        folded._build(weights)
        return folded

    def _build(self, weights: dict[str, torch.Tensor]) -> None:
        self.stage0 = _conv(weights["stage0.weight"], weights["stage0.bias"], padding=2)
        stages = []
        for k in range(1, N_STAGES):
            depth, point = f"stages.{3 * (k - 1)}", f"stages.{3 * (k - 1) + 1}"
            groups = weights[f"{depth}.weight"].shape[0]
            stages += [
                _conv(weights[f"{depth}.weight"], None, padding=2, stride=STAGE_STRIDES[k], groups=groups),
                _conv(weights[f"{point}.weight"], weights[f"{point}.bias"]),
                nn.ReLU(),
            ]
        self.stages = nn.Sequential(*stages)
        self.readout = nn.Linear(weights["readout.weight"].shape[1], 1, device="meta")
        self.readout.weight = nn.Parameter(weights["readout.weight"].detach().float().clone())
        self.readout.bias = nn.Parameter(weights["readout.bias"].detach().float().clone())
        self.requires_grad_(False)  # gradients are only ever taken with respect to the images
        self.eval()

        self.convs = [(conv, relu) for conv, relu in
                      [(self.stage0, True)] + [(m, i % 3 == 1) for i, m in enumerate(self.stages)
                                              if isinstance(m, nn.Conv2d)]]

    def forward(self, prepared: torch.Tensor) -> torch.Tensor:
        """Responses ``(N,)`` for input from ``prepare_input`` (no autograd on the fused CPU path)."""
        return self.read(self.last_map(prepared))

    def last_map(self, prepared: torch.Tensor) -> torch.Tensor:
        """The last stage's map (flipped frame), through the fused convolutions when no gradient is needed."""
        if _FUSED_CONV is not None and prepared.device.type == "cpu" and not torch.is_grad_enabled():
            return _fused(prepared, self.convs)
        return self.stage_outputs(prepared)[-1]

    def through_depthwise(self, prepared: torch.Tensor, stage: int) -> torch.Tensor:
        """Stages 0..``stage - 1``, then stage ``stage``'s depthwise (spatial) filters, in the flipped frame and
        without gradients: the frozen part of a distilled student (``compactrig.engine.training.distill``)."""
        with torch.no_grad():
            if _FUSED_CONV is not None and prepared.device.type == "cpu":
                return _fused(prepared, self.convs[:2 * stage])  # stage 0, two per separable stage, one depthwise
            return self.stages[3 * (stage - 1)](self.stage_outputs(prepared, stage - 1)[-1])

    def stage_outputs(self, prepared: torch.Tensor, last_stage: int = N_STAGES - 1) -> list[torch.Tensor]:
        """Stage maps 0..``last_stage`` (after ReLU, in the flipped frame), differentiable."""
        if _FUSED_CONV is not None and prepared.device.type == "cpu":
            x = _Stage0ConvReLU.apply(prepared, self.stage0.weight, self.stage0.bias)
        else:
            x = torch.relu(self.stage0(prepared))
        outputs = [x]
        for k in range(1, last_stage + 1):
            depth, point, relu = (self.stages[i] for i in range(3 * (k - 1), 3 * k))
            x = relu(point(depth(x)))
            outputs.append(x)
        return outputs

    def stage_unit(self, prepared: torch.Tensor, stage: int, channel: int,
                   position: tuple[int, int] | None = None) -> torch.Tensor:
        """One channel of a stage ``(N,)``, differentiable: at ``position`` (row, col) in the published
        (image) frame, or averaged over space when None. The flipped frame stays in here."""
        unit_map = self.stage_outputs(prepared, stage)[-1][:, channel]
        if position is None:
            return unit_map.mean(dim=(1, 2))
        size = unit_map.shape[-1]
        return unit_map[:, size - 1 - position[0], size - 1 - position[1]]

    def read(self, last_stage: torch.Tensor) -> torch.Tensor:
        """The dense readout of the (flipped) last-stage map: the model's response ``(N,)``."""
        return self.readout(last_stage.contiguous().flatten(1))[:, 0]


def _fused(x: torch.Tensor, convs: list[tuple[nn.Conv2d, bool]]) -> torch.Tensor:
    """``convs`` (each with its ReLU or not) as oneDNN convolutions with the ReLU fused in (no autograd)."""
    for conv, relu in convs:
        x = _FUSED_CONV(x, conv.weight, conv.bias, list(conv.padding), list(conv.stride), [1, 1], conv.groups,
                        "relu" if relu else "none", [None], "")
    return x


class _Stage0ConvReLU(torch.autograd.Function):
    """Stage 0 as one fused oneDNN conv+ReLU, with the gradient for the input only.

    The 112x112 stage-0 map is the largest tensor of the model; fusing the ReLU saves a
    pass over it, and keeping only the output (its sign is the ReLU mask) saves memory.
    Synthesis differentiates through this for every step.
    """

    @staticmethod
    def forward(ctx, images: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        out = _FUSED_CONV(images, weight, bias, [2, 2], [1, 1], [1, 1], 1, "relu", [None], "")
        ctx.save_for_backward(out, weight)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        out, weight = ctx.saved_tensors
        masked = torch.ops.aten.threshold_backward(grad_out, out, 0.0)
        transposed = weight.transpose(0, 1).flip(-1, -2).contiguous(memory_format=torch.channels_last)
        grad_in = _FUSED_CONV(masked.contiguous(memory_format=torch.channels_last), transposed, None,
                              [2, 2], [1, 1], [1, 1], 1, "none", [None], "")
        return grad_in, None, None


def folded_weights(model: CompactModel) -> dict[str, torch.Tensor]:
    """``model``'s weights as ``FoldedModel`` holds them (its ``state_dict`` names): batch norm folded into
    the convolutions in float64, kernels and readout flipped to the flipped frame, then cast to float32."""
    layers = model.layers
    assert layers.layer0_conv.bias is not None  # the published architecture's convolutions have biases
    scale, shift = _bn_affine(layers.layer0_bn)
    weights = {"stage0.weight": layers.layer0_conv.weight.flip(-1, -2) * scale.view(-1, 1, 1, 1),
               "stage0.bias": layers.layer0_conv.bias * scale + shift}
    for k in range(1, N_STAGES):
        point = getattr(layers, f"layer{k}_conv_point")
        scale, shift = _bn_affine(getattr(layers, f"layer{k}_bn"))
        weights[f"stages.{3 * (k - 1)}.weight"] = getattr(layers, f"layer{k}_conv_depth").weight.flip(-1, -2)
        weights[f"stages.{3 * (k - 1) + 1}.weight"] = point.weight * scale.view(-1, 1, 1, 1)
        weights[f"stages.{3 * (k - 1) + 1}.bias"] = point.bias * scale + shift
    beta = layers.Beta.weight.detach().double().view(OUTPUT_SIZE, OUTPUT_SIZE, model.filters[-1])
    weights["readout.weight"] = beta.flip(0, 1).permute(2, 0, 1).reshape(1, -1)
    weights["readout.bias"] = layers.Beta.bias
    return {name: tensor.detach().float().contiguous() for name, tensor in weights.items()}


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    assert bn.weight is not None and bn.bias is not None  # affine batch norm with running statistics, as published
    assert bn.running_mean is not None and bn.running_var is not None
    scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
    return scale, bn.bias.detach().double() - bn.running_mean.double() * scale


class _GivenConv2d(nn.Conv2d):
    """A convolution whose weights are given: built without PyTorch's random initialization, which even on
    the meta device costs about 0.3 ms a layer (a tenth of a second to fold the 42 models of one session)."""

    def reset_parameters(self) -> None:
        """Nothing to initialize: ``_conv`` sets the weights next."""


def _conv(weight: torch.Tensor, bias: torch.Tensor | None, padding: int = 0, stride: int = 1,
          groups: int = 1) -> nn.Conv2d:
    out_channels, in_per_group, size, _ = weight.shape
    conv = _GivenConv2d(in_per_group * groups, out_channels, size, stride=stride, padding=padding, groups=groups,
                        bias=bias is not None, device="meta")
    conv.weight = nn.Parameter(weight.detach().float().contiguous(memory_format=torch.channels_last))
    if bias is not None:
        conv.bias = nn.Parameter(bias.detach().float().contiguous())
    return conv


def prepare_input(images: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 or float ``(N, 112, 112, 3)`` in 0..255 -> float32 ``(N, 3, 112, 112)``, mean-subtracted, flipped.

    One float copy (the flipped images in height-width-channel order, which is PyTorch's channels-last
    layout), so a block of images costs its float size once, not four times."""
    prepared = np.asarray(images)[:, ::-1, ::-1, :].astype(np.float32)
    prepared -= np.asarray(CHANNEL_MEANS, dtype=np.float32)
    return torch.from_numpy(prepared).permute(0, 3, 1, 2).to(device)


def restore_pixels(prepared: torch.Tensor) -> np.ndarray:
    """Inverse of ``prepare_input``: float ``(N, 112, 112, 3)`` in 0..255 (not rounded)."""
    means = torch.tensor(CHANNEL_MEANS, device=prepared.device).view(1, 3, 1, 1)
    raw = prepared.detach().flip(-1, -2) + means
    return raw.permute(0, 2, 3, 1).cpu().numpy()


@contextmanager
def single_intra_op_thread() -> Iterator[None]:
    """PyTorch on one intra-op thread while inside (small convolutions side by side, each on its own thread)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class Predictor:
    """Predicts a bank's neurons on image sets; keeps folded models between calls."""

    def __init__(self, bank: ModelBank, device: str = "cpu", workers: int | None = None) -> None:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise CompactRigError(f"device {device!r}: no CUDA GPU is available here; use --device cpu")
        self.bank = bank
        self.device = torch.device(device)
        self.workers = workers or torch.get_num_threads()
        self._folded: dict[str, FoldedModel] = {}
        self._lock = threading.Lock()

    def folded(self, neuron_id: str) -> FoldedModel:
        """The neuron's folded model on this predictor's device (built once, then cached)."""
        self.fold([neuron_id])
        return self._folded[neuron_id]

    def fold(self, neuron_ids: list[str]) -> None:
        """Folds the neurons not yet held. Many at once go through the bank's folded-model cache
        (``engine.models.folded_cache``): reading 219 model files and folding them costs seconds; one costs ~10 ms."""
        with self._lock:
            missing = [n for n in neuron_ids if n not in self._folded]
            kept = cached_weights(self.bank, missing) if len(missing) > 1 else {}
            made = {}
            for neuron_id in missing:
                try:
                    model = FoldedModel.from_weights(kept[neuron_id])
                except (KeyError, ValueError, RuntimeError, IndexError):  # not kept, or kept incomplete or misshapen
                    model = FoldedModel(self.bank.model(neuron_id, dtype=torch.float64))
                    made[neuron_id] = model.state_dict()
                self._folded[neuron_id] = model.to(self.device)
            if len(made) > 1:
                keep_weights(self.bank, made)

    def predict(self, images: np.ndarray, neuron_ids: list[str] | None = None,
                progress: Progress | None = None,
                cancelled: Callable[[], bool] | None = None) -> np.ndarray:
        """float32 ``(n_neurons, n_images)``, rows in ``neuron_ids`` order (bank order if None)."""
        ids = self.bank.resolve(neuron_ids)
        self.fold(ids)
        pixels = to_model_batch(np.asarray(images))
        out = np.empty((len(ids), len(pixels)), dtype=np.float32)
        if self.device.type == "cpu":
            block, chunk = BLOCK, CHUNK
        else:
            free, _ = torch.cuda.mem_get_info(self.device)
            block = chunk = gpu_batch(free, max(max(self.bank.info(i).filters) for i in ids))
        blocks = list(range(0, len(pixels), block))
        total, done = len(ids) * len(blocks), 0
        done_lock = threading.Lock()

        def run(row: int, prepared: torch.Tensor, start: int) -> None:
            nonlocal done
            if cancelled is not None and cancelled():
                raise Cancelled()
            model = self._folded[ids[row]]  # folded above, before the threads start
            with torch.inference_mode():
                values = torch.cat([model(prepared[i:i + chunk]) for i in range(0, len(prepared), chunk)])
            out[row, start:start + len(prepared)] = values.cpu().numpy()
            with done_lock:
                done += 1
                if progress is not None:
                    progress(done, total)

        for start in blocks:
            prepared = prepare_input(pixels[start:start + block], self.device)
            if self.device.type == "cpu" and self.workers > 1:
                with single_intra_op_thread(), ThreadPoolExecutor(self.workers) as pool:
                    for future in [pool.submit(run, row, prepared, start) for row in range(len(ids))]:
                        future.result()
            else:
                for row in range(len(ids)):
                    run(row, prepared, start)
        return out


def gpu_batch(free_bytes: int, widest_stage: int) -> int:
    """Images per GPU forward pass that fit in ``GPU_MEMORY_SHARE`` of ``free_bytes``: the input, and the
    widest stage's map at full resolution three times over (input, output and the fused ReLU's copy)."""
    per_image = 4 * IMAGE_SIZE * IMAGE_SIZE * (3 + 3 * widest_stage)
    return int(min(max(GPU_MEMORY_SHARE * free_bytes // per_image, 64), 65536))


def image_chunk_for(device: str) -> int:
    """Images a stream decodes at a time: fixed on a CPU, what a forward pass of the widest published model
    takes on a GPU (so each chunk is one batch)."""
    if not str(device).startswith("cuda"):
        return CPU_IMAGE_CHUNK
    if not torch.cuda.is_available():
        raise CompactRigError(f"device {device!r}: no CUDA GPU is available here; use --device cpu")
    free, _ = torch.cuda.mem_get_info(torch.device(device))
    return gpu_batch(free, WIDEST_PUBLISHED_STAGE)


def reference_predict(bank: ModelBank, images: np.ndarray, neuron_ids: list[str] | None = None,
                      dtype: torch.dtype = torch.float64, batch: int = 100) -> np.ndarray:
    """The straightforward evaluation: each reference model in turn, in ``dtype``."""
    ids = bank.resolve(neuron_ids)
    pixels = np.require(to_model_batch(np.asarray(images)), requirements=["C", "W"])
    tensor = torch.from_numpy(pixels).permute(0, 3, 1, 2).to(dtype)
    out = np.empty((len(ids), len(tensor)), dtype=np.float64)
    with torch.inference_mode():
        for row, neuron_id in enumerate(ids):
            model = bank.model(neuron_id, dtype=dtype)
            out[row] = torch.cat([model(tensor[i:i + batch]) for i in range(0, len(tensor), batch)]).numpy()
    return out
