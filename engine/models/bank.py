"""A bank of compact models: which neurons there are, and each one's weights.

A bank comes from a folder in the published layout
(``models_torch/compact_model_S_neuronI.pt`` beside ``nums_filters/compact_model_S_neuronI.npy``),
from the upstream repository root (which holds ``data_compact_models/``), or from the
embedded demo bank built in code (``compactrig.resources.demo_bank``), so the app works offline.
Neuron ids are ``S:I`` (session, row of that session's response arrays), e.g. ``201025:2``.
A model file whose weights are not all finite (NaN or infinity anywhere) is refused when it is read,
naming the file: such a model predicts nothing meaningful, however finite its outputs may look.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from compactrig.engine.models.bank_cache import cached_identity, folder_signature
from compactrig.engine.models.layout import N_STAGES, parameter_count

if TYPE_CHECKING:  # torch is imported where weights are read: listing a bank needs only numpy
    import torch

    from compactrig.engine.models.architecture import CompactModel
from compactrig.engine.errors import CompactRigError

MODEL_FILE = re.compile(r"compact_model_(?P<session>\w+?)_neuron(?P<index>\d+)\.pt$")
PROVENANCE_FILE = "provenance.json"
"""Beside ``models_torch/`` in a bank that ``compactrig neurons fit`` made: what each model was made from."""
DEMO_BANK = "demo"
StateDict = dict[str, "torch.Tensor"]


@dataclass(frozen=True)
class NeuronInfo:
    """What is known about one neuron's model without evaluating it."""

    neuron_id: str
    filters: tuple[int, ...]
    label: str = ""

    @property
    def n_params(self) -> int:
        return parameter_count(self.filters)


@dataclass
class ModelBank:
    """An ordered set of compact models, loaded lazily and cached as state dicts."""

    name: str
    source: str
    neurons: list[NeuronInfo]
    _load_state: Callable[[str], StateDict]
    _cache: dict[str, StateDict] = field(default_factory=dict, repr=False)
    _identity: dict[str, str | int] | None = field(default=None, repr=False)
    signature: str | None = None
    """For a folder: a key that changes with any of its files (the identity is cached under it)."""

    def __len__(self) -> int:
        return len(self.neurons)

    @property
    def neuron_ids(self) -> list[str]:
        return [n.neuron_id for n in self.neurons]

    def info(self, neuron_id: str) -> NeuronInfo:
        for neuron in self.neurons:
            if neuron.neuron_id == neuron_id:
                return neuron
        raise CompactRigError(
            f"unknown neuron id {neuron_id!r} in bank {self.name}; `compactrig models list` shows the ids "
            "(form SESSION:INDEX)")

    def resolve(self, neuron_ids: list[str] | None) -> list[str]:
        """The ids asked for (all when None), each checked to be in the bank."""
        if neuron_ids is None:
            return self.neuron_ids
        return [self.info(i).neuron_id for i in neuron_ids]

    def state_dict(self, neuron_id: str) -> StateDict:
        """The model's published state dict (float64 as published; cached)."""
        info = self.info(neuron_id)
        if neuron_id not in self._cache:
            state = self._load_state(neuron_id)
            found = filters_of(state)
            if found != info.filters:
                raise CompactRigError(
                    f"{neuron_id}: nums_filters says {list(info.filters)} but the weights have "
                    f"{list(found)} filters per stage; re-fetch the bank (`compactrig models fetch`)")
            self._cache[neuron_id] = state
        return self._cache[neuron_id]

    def model(self, neuron_id: str, dtype: torch.dtype | None = None,
              device: str | torch.device = "cpu") -> CompactModel:
        """A reference ``CompactModel`` with this neuron's weights (float32 unless ``dtype`` says otherwise)."""
        import torch

        from compactrig.engine.models.architecture import CompactModel
        model = CompactModel(self.info(neuron_id).filters)
        try:
            model.load_state_dict(self.state_dict(neuron_id))
        except RuntimeError as error:
            first = str(error).strip().splitlines()[0]
            raise CompactRigError(f"{neuron_id}: weights do not fit the compact architecture ({first})") from None
        return model.to(device=device, dtype=dtype or torch.float32).eval()

    def identity(self) -> dict[str, str | int]:
        """Name, source, size and a content hash over all weights: provenance for stimulus sets."""
        if self._identity is None:
            if self.signature is None:
                self._identity = self._compute_identity()
            else:
                self._identity = cached_identity(self.signature, self._compute_identity)
        return dict(self._identity)

    def _compute_identity(self) -> dict[str, str | int]:
        digest = hashlib.sha256()
        for neuron_id in self.neuron_ids:
            digest.update(neuron_id.encode())
            for key, tensor in sorted(self.state_dict(neuron_id).items()):
                digest.update(key.encode())
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return {"name": self.name, "source": self.source, "n_neurons": len(self),
                "sha256": digest.hexdigest()}


def filters_of(state: StateDict) -> tuple[int, ...]:
    """Filters per stage as the weight shapes say."""
    try:
        first = state["layers.layer0_conv.weight"].shape[0]
        rest = [state[f"layers.layer{k}_conv_point.weight"].shape[0] for k in range(1, N_STAGES)]
    except (KeyError, AttributeError, IndexError) as error:
        raise CompactRigError(f"state dict lacks the compact-model layer {error}") from None
    return (int(first), *(int(n) for n in rest))


def _model_folder(path: Path) -> Path:
    for candidate in (path, path / "data_compact_models"):
        if (candidate / "models_torch").is_dir():
            return candidate
    raise CompactRigError(
        f"{path}: no models_torch/ folder here or in data_compact_models/; give the folder that holds "
        "models_torch/ and nums_filters/, or run `compactrig models fetch`")


def _read_filters(path: Path) -> tuple[int, ...]:
    if not path.is_file():
        raise CompactRigError(f"{path}: missing; every model needs its nums_filters .npy beside models_torch/")
    try:
        values = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise CompactRigError(f"{path}: not a readable .npy file ({error}); re-fetch the bank") from None
    if values.shape != (N_STAGES,) or not np.issubdtype(values.dtype, np.integer) or values.min() < 1:
        raise CompactRigError(f"{path}: expected {N_STAGES} positive integers, found {values!r}; re-fetch the bank")
    return tuple(int(v) for v in values)


def _read_state(path: Path) -> StateDict:
    import torch
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch.load raises anything the unpickler meets
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CompactRigError(f"{path}: not a readable PyTorch state dict ({reason}); re-fetch the bank") from None
    if not isinstance(state, dict):
        raise CompactRigError(f"{path}: holds a {type(state).__name__}, not a state dict; re-fetch the bank")
    for key, tensor in state.items():
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CompactRigError(f"{path}: the weights {key} hold NaN or infinite values, so every prediction "
                                  "would be meaningless; re-fetch the bank or retrain this model")
    return state


def read_provenance(folder: Path) -> dict:
    """Neuron id -> what its model was made from ({} for a bank without provenance, e.g. the published one)."""
    path = Path(folder) / PROVENANCE_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (ValueError, OSError) as error:
        raise CompactRigError(f"{path}: not readable JSON ({error}); delete it or re-make the bank") from None


def recorded_unit_label(session: str, index: int, provenance: dict | None = None) -> str:
    """The recorded unit a folder bank's model ``compact_model_S_neuronI`` predicts, named as its data name it:
    a published model predicts neuron I of recording session S (row I of that session's response arrays); one
    that ``compactrig neurons fit`` made also says what the recording called the unit (its provenance's
    ``recorded_unit``, a source's channel or unit name), when that is not the number itself."""
    recorded = (provenance or {}).get("recorded_unit")
    if recorded is None or str(recorded) == str(index):
        return f"session {session}, neuron {index}"
    return f"session {session}, unit {index} (recorded as {recorded})"


def load_directory(path: str | Path) -> ModelBank:
    """A bank from a folder in the published layout (or the upstream repository root)."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise CompactRigError(f"{root}: no such folder; give the folder holding models_torch/ and nums_filters/")
    folder = _model_folder(root)
    found = []
    for weights in (folder / "models_torch").iterdir():
        match = MODEL_FILE.match(weights.name)
        if match:
            found.append((match["session"], int(match["index"]), weights))
    if not found:
        raise CompactRigError(f"{folder / 'models_torch'}: holds no compact_model_S_neuronI.pt files")
    found.sort(key=lambda item: (not item[0].isdigit(), int(item[0]) if item[0].isdigit() else 0, item[0], item[1]))
    neurons, files, filter_files = [], {}, []
    provenance = read_provenance(folder)
    for session, index, weights in found:
        neuron_id = f"{session}:{index}"
        filter_files.append(folder / "nums_filters" / weights.with_suffix(".npy").name)
        neurons.append(NeuronInfo(neuron_id, _read_filters(filter_files[-1]),
                                  recorded_unit_label(session, index, provenance.get(neuron_id))))
        files[neuron_id] = weights
    return ModelBank(name=root.name, source=str(root.resolve()), neurons=neurons,
                     _load_state=lambda neuron_id: _read_state(files[neuron_id]),
                     signature=folder_signature(root, [*files.values(), *filter_files]))


def load_bank(spec: str | Path | None = None) -> ModelBank:
    """The bank a command names: a folder, ``published`` (fetched copy), or the demo bank (default)."""
    if spec is None or str(spec) == DEMO_BANK:
        from compactrig.resources.demo_bank import build_demo_bank
        return build_demo_bank()
    if str(spec) == "published":
        from compactrig.engine.models.fetch import default_models_dir, finish_interrupted_swap
        finish_interrupted_swap(default_models_dir())
        if not default_models_dir().exists():
            raise CompactRigError(f"the published models are not on this machine yet ({default_models_dir()}): "
                                  "fetch them with the Models view's Fetch button or `compactrig models fetch`")
        return load_directory(default_models_dir())
    return load_directory(spec)
