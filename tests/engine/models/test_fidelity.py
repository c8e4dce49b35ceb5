"""The published models, exactly: accuracy on recorded V4 responses and numerical agreement."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from compactrig.engine.models.fast_predict import Predictor
from compactrig.engine.models.layout import forward_flops, stage_sizes

from support.independent_model import evaluate
from support.independent_stats import pearson_rows


@pytest.mark.slow
def test_session_190923_second_half_matches_published_accuracy(shared_data, published_bank, images_190923):
    responses = np.load(shared_data / "data_V4_responses" / "responses_repeat_averaged" / "responses_190923.npy")
    neuron_ids = [f"190923:{i}" for i in range(33)]
    held_out = slice(600, 1200)
    assert images_190923.ids[600] == "image0601" and images_190923.ids[-1] == "image1200"
    predicted = Predictor(published_bank).predict(images_190923.pixels[held_out], neuron_ids)
    r = pearson_rows(predicted.astype(np.float64), responses[:, held_out])
    assert np.median(r) >= 0.60
    assert abs(np.median(r) - 0.635) < 0.01, "published models give median r 0.635 on this half"


def test_fast_float32_matches_independent_float64(published_bank, images_201025):
    neuron_ids = ["190923:0", "190923:17", "201025:2", "201025:88", "210225:30", "211022:41"]
    images = images_201025.pixels[::50]
    fast = Predictor(published_bank).predict(images, neuron_ids)
    for row, neuron_id in enumerate(neuron_ids):
        expected = evaluate(published_bank.state_dict(neuron_id), images)
        assert np.abs(fast[row] - expected).max() <= 1e-4 * np.abs(expected).max(), neuron_id


def test_reference_model_matches_independent_float64(published_bank, images_201025):
    images = images_201025.pixels[:8]
    model = published_bank.model("201025:2", dtype=torch.float64)
    with torch.no_grad():
        ours = model(torch.from_numpy(images).permute(0, 3, 1, 2).double()).numpy()
    np.testing.assert_allclose(ours, evaluate(published_bank.state_dict("201025:2"), images), rtol=1e-10, atol=1e-10)


def test_parameter_counts_equal_state_dict_sizes(published_bank):
    assert len(published_bank) == 219
    sessions = {}
    for info in published_bank.neurons:
        sessions[info.neuron_id.split(":")[0]] = sessions.get(info.neuron_id.split(":")[0], 0) + 1
        state = published_bank.state_dict(info.neuron_id)
        trainable = sum(t.numel() for k, t in state.items() if "running" not in k and "num_batches" not in k)
        assert info.n_params == trainable, info.neuron_id
    assert sessions == {"190923": 33, "201025": 89, "210225": 55, "211022": 42}


def test_forward_arithmetic_is_what_pytorchs_flop_counter_counts(published_bank):
    """The benchmarks report speed against ``forward_flops``; PyTorch's own counter, run on the model,
    is the independent count."""
    from torch.utils.flop_counter import FlopCounterMode
    for neuron_id in ("190923:0", "211022:41"):
        filters = published_bank.info(neuron_id).filters
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            published_bank.model(neuron_id)(torch.zeros(1, 3, 112, 112))
        assert forward_flops(filters) == counter.get_total_flops(), neuron_id


def test_every_stage_activation_is_readable(published_bank, images_201025):
    model = published_bank.model("201025:2")
    info = published_bank.info("201025:2")
    with torch.no_grad():
        stages = model.stage_outputs(torch.from_numpy(images_201025.pixels[:3]).permute(0, 3, 1, 2).float())
        output = model.readout(stages[-1])
    assert [tuple(s.shape) for s in stages] == [(3, n, size, size) for n, size in zip(info.filters, stage_sizes())]
    assert all(float(s.min()) >= 0 for s in stages), "each stage ends in a ReLU"
    expected = evaluate(published_bank.state_dict("201025:2"), images_201025.pixels[:3])
    np.testing.assert_allclose(output.numpy(), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_cuda_device_when_present(published_bank, images_201025):
    if not torch.cuda.is_available():
        from compactrig.engine.errors import CompactRigError
        with pytest.raises(CompactRigError, match="no CUDA GPU"):
            Predictor(published_bank, device="cuda")
        return
    images = images_201025.pixels[:16]
    on_gpu = Predictor(published_bank, device="cuda").predict(images, ["201025:2"])
    expected = evaluate(published_bank.state_dict("201025:2"), images)
    assert np.abs(on_gpu[0] - expected).max() <= 1e-4 * np.abs(expected).max()
