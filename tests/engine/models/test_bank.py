"""Bank loading: the published layout, the upstream root, and clear messages for bad files."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from compactrig.engine.errors import CompactRigError
from compactrig.engine.models.bank import load_bank, load_directory
from compactrig.engine.models.bank_writer import write_model


def small_bank(shared_data, tmp_path, neurons=("201025_neuron2", "201025_neuron10", "190923_neuron5")):
    """A copy of a few published models in the published layout (tests may damage it)."""
    for folder, suffix in (("models_torch", ".pt"), ("nums_filters", ".npy")):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        for name in neurons:
            shutil.copy(shared_data / "data_compact_models" / folder / f"compact_model_{name}{suffix}",
                        tmp_path / folder)
    return tmp_path


def test_published_layout_and_upstream_root_give_the_same_bank(shared_data, published_bank):
    root = load_directory(shared_data)  # the upstream root holds data_compact_models/
    assert root.neuron_ids == published_bank.neuron_ids
    assert published_bank.neuron_ids[:3] == ["190923:0", "190923:1", "190923:2"]
    assert published_bank.info("201025:2").filters == tuple(
        np.load(shared_data / "data_compact_models" / "nums_filters" / "compact_model_201025_neuron2.npy"))


def test_ids_sort_numerically(shared_data, tmp_path):
    bank = load_directory(small_bank(shared_data, tmp_path))
    assert bank.neuron_ids == ["190923:5", "201025:2", "201025:10"]


def test_each_model_names_the_recorded_unit_it_predicts(shared_data, published_bank, tmp_path):
    """As the data README says: compact_model_S_neuronI predicts neuron I of recording session S. A model that
    ``neurons fit`` made names the unit as the recording called it (its provenance's recorded_unit)."""
    files = sorted((shared_data / "data_compact_models" / "models_torch").glob("compact_model_*_neuron*.pt"))
    named = {f"{s}:{i}": f"session {s}, neuron {i}"
             for s, i in (file.stem.removeprefix("compact_model_").split("_neuron") for file in files)}
    assert {n.neuron_id: n.label for n in published_bank.neurons} == named and len(named) == 219
    assert published_bank.info("201025:2").label == "session 201025, neuron 2"
    demo = load_bank("demo")
    write_model(tmp_path, "day1", 3, demo.model("demo:0"), {"recorded_unit": "CH12 u1"})
    write_model(tmp_path, "day1", 4, demo.model("demo:1"), {"recorded_unit": 4})
    assert [n.label for n in load_directory(tmp_path).neurons] == ["session day1, unit 3 (recorded as CH12 u1)",
                                                                  "session day1, neuron 4"]


def test_unknown_neuron_id_is_named(published_bank):
    with pytest.raises(CompactRigError, match="unknown neuron id '201025:999'"):
        published_bank.info("201025:999")


def test_corrupt_weights_are_named(shared_data, tmp_path):
    folder = small_bank(shared_data, tmp_path)
    (folder / "models_torch" / "compact_model_201025_neuron2.pt").write_bytes(b"\x00garbage")
    bank = load_directory(folder)
    with pytest.raises(CompactRigError, match=r"compact_model_201025_neuron2\.pt: not a readable PyTorch state dict"):
        bank.model("201025:2")
    bank.model("201025:10")  # the others still load


def test_filters_that_disagree_with_weights_are_named(shared_data, tmp_path):
    folder = small_bank(shared_data, tmp_path)
    np.save(folder / "nums_filters" / "compact_model_201025_neuron10.npy", np.array([1, 2, 3, 4, 5]))
    with pytest.raises(CompactRigError, match=r"201025:10: nums_filters says \[1, 2, 3, 4, 5\]"):
        load_directory(folder).model("201025:10")


def test_missing_filters_file_and_wrong_folder(shared_data, tmp_path):
    folder = small_bank(shared_data, tmp_path)
    (folder / "nums_filters" / "compact_model_190923_neuron5.npy").unlink()
    with pytest.raises(CompactRigError, match="compact_model_190923_neuron5.npy: missing"):
        load_directory(folder)
    with pytest.raises(CompactRigError, match="no models_torch/ folder"):
        load_directory(tmp_path / "nums_filters")
    with pytest.raises(CompactRigError, match="no such folder"):
        load_bank(tmp_path / "nowhere")


def test_identity_changes_with_weights(shared_data, tmp_path):
    first = load_directory(small_bank(shared_data, tmp_path / "a")).identity()
    second = load_directory(small_bank(shared_data, tmp_path / "b", ("201025_neuron2",))).identity()
    assert first["sha256"] != second["sha256"] and first["n_neurons"] == 3


def test_the_identity_is_kept_between_runs_and_recomputed_when_a_file_changes(shared_data, tmp_path, monkeypatch):
    """Kept: a second opening reads it without loading any weights. Recomputed: a model file replaced by
    another model's weights (same name) gives the hash of the new content, as a fresh cache does."""
    import torch
    monkeypatch.setenv("COMPACTRIG_CACHE_DIR", str(tmp_path / "cache"))
    folder = small_bank(shared_data, tmp_path / "bank")
    first = load_directory(folder).identity()
    reopened = load_directory(folder)
    reopened._load_state = None  # any weight loading would now fail
    assert reopened.identity() == first
    target = folder / "models_torch" / "compact_model_201025_neuron10.pt"
    state = torch.load(target, weights_only=True)
    state["layers.Beta.bias"] = state["layers.Beta.bias"] + 1.0
    torch.save(state, target)
    changed = load_directory(folder).identity()
    monkeypatch.setenv("COMPACTRIG_CACHE_DIR", str(tmp_path / "fresh"))
    assert changed["sha256"] != first["sha256"] and changed == load_directory(folder).identity()
