"""Folded models kept between runs, so predicting a whole bank does not re-read and re-fold every model.

Reading 219 PyTorch files and folding their batch norms costs about 2.5 s on a 2-core CPU; every
``synth`` pays it to annotate its images with every neuron's prediction, as does every ``predict`` of
the whole bank. The folded float32 weights (``FoldedModel.state_dict()``) of the neurons folded so far
are kept in one ``.npz`` per bank content (its SHA-256), in the user cache directory: reading them is a
fraction of that. The key is the content hash, so a changed model is never served from the cache; a
cache that cannot be read or written is skipped, since it only saves time. A neuron whose kept weights
are not all finite is not served either: its model is read from its file again, where a non-finite
weight is refused naming the file (``engine.models.bank``), so the cache can never hide a broken model.
"""

from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from compactrig.engine.errors import CompactRigError
from compactrig.engine.files.safe_output import write_atomically
from compactrig.engine.models.bank import ModelBank
from compactrig.engine.models.bank_cache import cache_dir

Weights = dict[str, torch.Tensor]


def cached_weights(bank: ModelBank, neuron_ids: Sequence[str]) -> dict[str, Weights]:
    """The folded weights kept for those of ``neuron_ids`` the cache has."""
    wanted = set(neuron_ids)
    return _read(_path(bank), lambda neuron_id: neuron_id in wanted)


def keep_weights(bank: ModelBank, weights: dict[str, Weights]) -> None:
    """Adds ``weights`` (neuron id -> ``FoldedModel.state_dict()``) to the bank's cache.

    Every tensor goes into one flat float32 array, with a JSON index of (neuron, name, start, shape):
    reading back is one array, not thousands of small ones (0.7 s for the published bank's 3,504)."""
    path = _path(bank)
    everything = _read(path, lambda neuron_id: neuron_id not in weights) | weights
    index, parts, start = [], [], 0
    for neuron_id, state in everything.items():
        for name, tensor in state.items():
            values = tensor.detach().cpu().float().contiguous().numpy().ravel()
            index.append([neuron_id, name, start, list(tensor.shape)])
            parts.append(values)
            start += values.size
    try:
        write_atomically(path, lambda partial: np.savez(partial, values=np.concatenate(parts),
                                                        index=np.array(json.dumps(index))))
    except CompactRigError:
        pass  # the cache only saves time


def _path(bank: ModelBank) -> Path:
    return cache_dir() / f"{bank.identity()['sha256']}.folded.npz"


def _read(path: Path, chosen: Callable[[str], bool]) -> dict[str, Weights]:
    weights: dict[str, Weights] = {}
    try:
        with np.load(path) as archive:
            values, index = archive["values"], json.loads(str(archive["index"]))
        for neuron_id, name, start, shape in index:
            if chosen(neuron_id):
                size = math.prod(shape)
                weights.setdefault(neuron_id, {})[name] = torch.from_numpy(values[start:start + size].reshape(shape))
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
        return {}
    return {neuron_id: state for neuron_id, state in weights.items()
            if all(torch.isfinite(tensor).all() for tensor in state.values())}
