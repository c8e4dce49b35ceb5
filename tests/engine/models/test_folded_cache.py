"""The folded-model cache: served only for the same model content, and a damaged cache costs time, not numbers."""

from __future__ import annotations

import json
import shutil

import numpy as np

from compactrig.engine.models.bank import load_directory
from compactrig.engine.models.bank_cache import cache_dir
from compactrig.engine.models.fast_predict import Predictor

from support.independent_model import evaluate

NEURONS = ["190923:3", "201025:7", "211022:1"]


def small_bank(shared_data, folder):
    """Three published models in a folder of their own (a bank the cache has never seen)."""
    source = shared_data / "data_compact_models"
    for sub, suffix in (("models_torch", ".pt"), ("nums_filters", ".npy")):
        (folder / sub).mkdir(parents=True)
        for neuron_id in NEURONS:
            session, index = neuron_id.split(":")
            name = f"compact_model_{session}_neuron{index}{suffix}"
            shutil.copy(source / sub / name, folder / sub / name)
    return folder


def kept_neurons(path) -> list[str]:
    """The neurons a cache file holds, read from its index as documented in ``engine.models.folded_cache``."""
    with np.load(path) as archive:
        return sorted({entry[0] for entry in json.loads(str(archive["index"]))})


def test_a_second_run_reads_the_kept_models_and_predicts_the_same_numbers(shared_data, images_201025, tmp_path):
    bank = load_directory(small_bank(shared_data, tmp_path / "bank"))
    images = images_201025.pixels[::150]
    first = Predictor(bank).predict(images)
    kept = cache_dir() / f"{bank.identity()['sha256']}.folded.npz"
    assert kept.is_file(), "folding several models keeps them"
    assert kept_neurons(kept) == sorted(NEURONS)
    second = Predictor(load_directory(tmp_path / "bank")).predict(images)
    np.testing.assert_array_equal(second, first)
    for row, neuron_id in enumerate(NEURONS):
        expected = evaluate(bank.state_dict(neuron_id), images)
        assert np.abs(second[row] - expected).max() <= 1e-4 * np.abs(expected).max(), neuron_id


def test_changed_models_are_not_served_from_the_cache_and_a_damaged_cache_is_rebuilt(
        shared_data, images_201025, tmp_path):
    folder = small_bank(shared_data, tmp_path / "bank")
    images = images_201025.pixels[::150]
    Predictor(load_directory(folder)).predict(images)
    # the lab replaces one model with another neuron's (same file name): the content hash changes
    shutil.copy(shared_data / "data_compact_models/models_torch/compact_model_201025_neuron2.pt",
                folder / "models_torch/compact_model_201025_neuron7.pt")
    shutil.copy(shared_data / "data_compact_models/nums_filters/compact_model_201025_neuron2.npy",
                folder / "nums_filters/compact_model_201025_neuron7.npy")
    changed = load_directory(folder)
    values = Predictor(changed).predict(images)[NEURONS.index("201025:7")]
    expected = evaluate(changed.state_dict("201025:7"), images)
    assert np.abs(values - expected).max() <= 1e-4 * np.abs(expected).max()

    kept = cache_dir() / f"{changed.identity()['sha256']}.folded.npz"
    assert kept.is_file()
    kept.write_bytes(b"PK\x03\x04 cut short by a full disk")
    again = Predictor(load_directory(folder)).predict(images)
    for row, neuron_id in enumerate(NEURONS):
        expected = evaluate(changed.state_dict(neuron_id), images)
        assert np.abs(again[row] - expected).max() <= 1e-4 * np.abs(expected).max(), neuron_id
    assert kept_neurons(kept) == sorted(NEURONS), "the damaged cache was written afresh"
