"""The bank's readout features kept between runs: computed once, then read back exactly; never served for
other images or a broken file."""

from __future__ import annotations

import numpy as np

from compactrig.engine.models.bank import load_bank
from compactrig.engine.models.fast_predict import Predictor
from compactrig.engine.readout import feature_cache
from compactrig.engine.readout.features import outputs_and_grid
from compactrig.stimuli.textures import pink_noise_images


def test_features_are_computed_once_then_read_back_exactly_and_a_broken_file_is_computed_again(tmp_path,
                                                                                                monkeypatch):
    monkeypatch.setenv("COMPACTRIG_CACHE_DIR", str(tmp_path))
    computed = []

    def counted(*args, **kwargs):
        computed.append(len(args[1]))
        return outputs_and_grid(*args, **kwargs)

    monkeypatch.setattr(feature_cache, "outputs_and_grid", counted)
    bank = load_bank()
    pixels = pink_noise_images(12, seed=3)
    neurons = ["demo:0", "demo:2"]
    fresh = outputs_and_grid(Predictor(bank), pixels, neurons, 4)
    first = feature_cache.cached_outputs_and_grid(Predictor(bank), pixels, neurons, 4)
    again = feature_cache.cached_outputs_and_grid(Predictor(load_bank()), pixels.copy(), neurons, 4)
    assert computed == [12], "the second run (a new predictor, the same pixels) reads them"
    for kept in (first, again):
        assert all(a.dtype == np.float64 and np.array_equal(a, b) for a, b in zip(kept, fresh))

    other = pixels.copy()
    other[5, 0, 0, 0] ^= 1  # one pixel of one image
    feature_cache.cached_outputs_and_grid(Predictor(bank), other, neurons, 4)
    feature_cache.cached_outputs_and_grid(Predictor(bank), pixels, ["demo:2"], 4)
    assert computed == [12, 12, 12], "other images, other neurons: other keys"

    files = sorted(feature_cache.cache_folder().glob("*.npz"))
    assert len(files) == 3
    for broken in files:
        broken.write_bytes(b"not an archive")
    again = feature_cache.cached_outputs_and_grid(Predictor(bank), pixels, neurons, 4)
    assert computed == [12, 12, 12, 12] and all(np.array_equal(a, b) for a, b in zip(again, fresh))
