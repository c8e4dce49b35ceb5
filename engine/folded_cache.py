"""Folded models kept between runs, so predicting a whole bank does not re-read and re-fold every model.

Reading 219 PyTorch files and folding their batch norms costs about 2.5 s on a 2-core CPU; every
``synth`` pays it to annotate its images with every neuron's prediction, as does every ``predict`` of
the whole bank. The folded float32 weights (``FoldedModel.state_dict()``) of the neurons folded so far
are kept in one ``.npz`` per bank content (its SHA-256), in the user cache directory: reading them is a
fraction of that. The key is the content hash, so a changed model is never served from the cache; a
cache that cannot be read or written is skipped, since it only saves time.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from compactrig.engine.bank import ModelBank
from compactrig.engine.bank_cache import cache_dir

SEPARATOR = "|"
"""Between a neuron id and a weight name in the archive's keys (ids hold ':', names hold '.')."""
Weights = dict[str, torch.Tensor]


def cached_weights(bank: ModelBank, neuron_ids: Sequence[str]) -> dict[str, Weights]:
    """The folded weights kept for those of ``neuron_ids`` the cache has (only their members are read)."""
    wanted = set(neuron_ids)
    return _read(_path(bank), lambda neuron_id: neuron_id in wanted)


def keep_weights(bank: ModelBank, weights: dict[str, Weights]) -> None:
    """Adds ``weights`` (neuron id -> ``FoldedModel.state_dict()``) to the bank's cache."""
    path = _path(bank)
    everything = _read(path, lambda neuron_id: neuron_id not in weights) | weights
    arrays = {f"{neuron_id}{SEPARATOR}{name}": tensor.detach().cpu().contiguous().numpy()
              for neuron_id, state in everything.items() for name, tensor in state.items()}
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(partial, **arrays)
        os.replace(partial, path)
    except OSError:
        partial.unlink(missing_ok=True)


def _path(bank: ModelBank) -> Path:
    return cache_dir() / f"{bank.identity()['sha256']}.folded.npz"


def _read(path: Path, chosen: Callable[[str], bool]) -> dict[str, Weights]:
    weights: dict[str, Weights] = {}
    try:
        with np.load(path) as archive:
            for key in archive.files:
                neuron_id, name = key.split(SEPARATOR, 1)
                if chosen(neuron_id):
                    weights.setdefault(neuron_id, {})[name] = torch.from_numpy(archive[key])
    except (OSError, ValueError, zipfile.BadZipFile):
        return {}
    return weights
