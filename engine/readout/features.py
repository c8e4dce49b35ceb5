"""What a readout reads: the loaded bank's responses to each image, or one internal stage pooled.

A new neuron on today's electrode is described as a weighted sum of features the bank
already computes (the paper's shared representation mapped to a new neuron). The
features are either every chosen bank neuron's output or, for a chosen internal stage,
each of its channels averaged over space (a pooled map is the same in the flipped frame
the fast models use, so no unflipping is needed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from compactrig.engine.errors import CompactRigError
from compactrig.engine.models.bank import ModelBank
from compactrig.engine.models.fast_predict import (
    CHUNK,
    Cancelled,
    FoldedModel,
    Predictor,
    prepare_input,
    single_intra_op_thread,
)
from compactrig.engine.models.layout import N_STAGES
from compactrig.engine.models.preprocess import to_model_batch
from compactrig.engine.progress import Progress


@dataclass(frozen=True)
class FeatureSpec:
    """Bank neurons whose outputs (``stage`` None) or pooled stage-``stage`` channels are the features."""

    neuron_ids: tuple[str, ...]
    stage: int | None = None

    def check(self, bank: ModelBank) -> None:
        """Raise a one-line error naming a neuron or stage the bank does not have."""
        bank.resolve(list(self.neuron_ids))
        if self.stage is not None and not 0 <= self.stage < N_STAGES:
            raise CompactRigError(f"feature stage {self.stage}: stages are 0..{N_STAGES - 1}, or none for outputs")

    def widths(self, bank: ModelBank) -> list[int]:
        """Features per neuron: 1 for outputs, the stage's channel count otherwise."""
        if self.stage is None:
            return [1] * len(self.neuron_ids)
        return [bank.info(n).filters[self.stage] for n in self.neuron_ids]

    def names(self, bank: ModelBank) -> list[str]:
        """One readable name per feature column: ``S:I`` or ``S:I/stage2:ch5``."""
        if self.stage is None:
            return list(self.neuron_ids)
        return [f"{n}/stage{self.stage}:ch{c}" for n, w in zip(self.neuron_ids, self.widths(bank)) for c in range(w)]

    def owners(self, bank: ModelBank) -> np.ndarray:
        """For each feature column, the index (into ``neuron_ids``) of the neuron it comes from."""
        return np.repeat(np.arange(len(self.neuron_ids)), self.widths(bank))

    def describe(self) -> str:
        source = "outputs" if self.stage is None else f"stage {self.stage} channels (pooled over space)"
        return f"{len(self.neuron_ids)} bank neurons' {source}"


def pooled_stage(model: FoldedModel, prepared: torch.Tensor, stage: int) -> torch.Tensor:
    """``(N, channels)``: the stage's map averaged over space (differentiable)."""
    return model.stage_outputs(prepared, stage)[-1].mean(dim=(2, 3))


def compute_features(predictor: Predictor, images: np.ndarray, spec: FeatureSpec,
                     progress: Progress | None = None,
                     cancelled: Callable[[], bool] | None = None) -> np.ndarray:
    """float64 ``(n_images, n_features)`` in ``spec.names`` column order."""
    spec.check(predictor.bank)
    if spec.stage is None:
        return predictor.predict(images, list(spec.neuron_ids), progress, cancelled).T.astype(np.float64)
    prepared = prepare_input(to_model_batch(np.asarray(images)), predictor.device)
    columns = []
    for done, neuron_id in enumerate(spec.neuron_ids):
        if cancelled is not None and cancelled():
            raise Cancelled()
        model = predictor.folded(neuron_id)
        with torch.inference_mode():
            columns.append(torch.cat([pooled_stage(model, prepared[i:i + CHUNK], spec.stage)
                                      for i in range(0, len(prepared), CHUNK)]).double().cpu().numpy())
        if progress is not None:
            progress(done + 1, len(spec.neuron_ids))
    return np.concatenate(columns, axis=1) if columns else np.zeros((len(images), 0))


def outputs_and_grid(predictor: Predictor, images: np.ndarray, neuron_ids: list[str], grid: int,
                     progress: Progress | None = None,
                     cancelled: Callable[[], bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Readout features that keep space: every neuron's output ``(n_images, n_neurons)`` and its last
    stage's channels averaged over ``grid`` x ``grid`` blocks ``(n_images, sum of channels * grid^2)``,
    from one pass. Pooling over the whole map discards where in the image a feature is; the blocks keep
    it (``compactrig.engine.readout.scale`` reads them at several resolutions). Blocks are in the
    models' flipped frame: a readout only needs them consistent, not in image order. On a CPU the neurons
    run side by side, one intra-op thread each (as ``Predictor.predict`` runs them)."""
    prepared = prepare_input(to_model_batch(np.asarray(images)), predictor.device)
    neuron_ids = predictor.bank.resolve(neuron_ids)
    predictor.fold(neuron_ids)

    def one(neuron_id: str) -> tuple[np.ndarray, np.ndarray]:
        if cancelled is not None and cancelled():
            raise Cancelled()
        model = predictor.folded(neuron_id)
        out, pooled = [], []
        with torch.inference_mode():
            for i in range(0, len(prepared), CHUNK):
                last = model.last_map(prepared[i:i + CHUNK])
                out.append(model.read(last))
                pooled.append(torch.nn.functional.adaptive_avg_pool2d(last, grid).flatten(1))
        return torch.cat(out).double().cpu().numpy(), torch.cat(pooled).double().cpu().numpy()

    outputs, blocks = [], []

    def collect(results: Iterator[tuple[np.ndarray, np.ndarray]]) -> None:
        for done, (out, pooled) in enumerate(results):
            outputs.append(out)
            blocks.append(pooled)
            if progress is not None:
                progress(done + 1, len(neuron_ids))

    if predictor.device.type == "cpu" and predictor.workers > 1:
        with single_intra_op_thread(), ThreadPoolExecutor(predictor.workers) as pool:
            collect(pool.map(one, neuron_ids))
    else:
        collect(map(one, neuron_ids))
    return np.stack(outputs, axis=1), np.concatenate(blocks, axis=1)
