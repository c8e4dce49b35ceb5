"""Taking a model apart: filters, activations, readout weights and ablation contributions,
checked against the independent float64 implementation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from compactrig.engine.models.bank import load_bank
from compactrig.engine.models.inspection import inspect, mosaic
from compactrig.engine.models.layout import stage_sizes
from compactrig.stimuli.probes import colour_blob, dot_lattice

from support.independent_model import evaluate


@pytest.mark.parametrize("neuron_id, image", [("demo:1", colour_blob((1, -1, -1))), ("demo:2", dot_lattice())])
def test_contributions_are_the_response_lost_when_a_filter_is_silenced(neuron_id, image):
    bank = load_bank("demo")
    state = bank.state_dict(neuron_id)
    found = inspect(bank.model(neuron_id, dtype=torch.float64), image)
    assert found.response == pytest.approx(evaluate(state, image[None])[0], rel=1e-6, abs=1e-6)
    n0 = state["layers.layer0_conv.weight"].shape[0]
    for k in range(n0):
        silenced = {key: value.clone() for key, value in state.items()}
        silenced["layers.layer0_bn.weight"][k] = 0.0  # batch norm output 0 -> ReLU 0: the filter is gone
        silenced["layers.layer0_bn.bias"][k] = 0.0
        expected = found.response - evaluate(silenced, image[None])[0]
        assert found.contributions[k] == pytest.approx(expected, rel=1e-6, abs=1e-6)
    assert np.abs(found.contributions).max() > 0.1 * abs(found.response), "some filter carries the preference"


def test_activations_filters_and_readout_weights_have_the_published_layout():
    bank = load_bank("demo")
    model = bank.model("demo:0")
    image = dot_lattice()
    found = inspect(model, image)
    assert [a.shape[1] for a in found.activations] == stage_sizes()
    assert [a.shape[0] for a in found.activations] == list(model.filters)
    assert found.filters_rgb.shape == (model.filters[0], 5, 5, 3)
    assert found.filters_rgb.min() >= 0 and found.filters_rgb.max() <= 1
    assert np.isclose(np.abs(found.filters_rgb - 0.5).max(axis=(1, 2, 3)), 0.5).all()
    bias = float(bank.state_dict("demo:0")["layers.Beta.bias"][0])
    readout = (found.readout_weights * found.activations[-1]).sum() + bias
    assert readout == pytest.approx(found.response, rel=1e-6, abs=1e-6)
    tiles = mosaic(found.activations[1])
    count, size = found.activations[1].shape[:2]
    columns = int(np.ceil(np.sqrt(count)))
    assert tiles.shape[1] == columns * (size + 1) - 1
    assert np.nanmax(np.abs(tiles)) == pytest.approx(1.0), "scaled by the joint maximum"
    assert np.isnan(tiles[:, size]).all(), "a one-pixel gap between tiles"
    assert found.strongest_filters(1) == [int(np.argmax(found.contributions))]
    assert found.channel_weights() == pytest.approx(np.abs(found.readout_weights).sum(axis=(1, 2)))


def test_readout_weights_of_a_published_model_reproduce_its_response(published_bank, images_190923):
    neuron_id = published_bank.neuron_ids[5]
    image = images_190923.pixels[3]
    found = inspect(published_bank.model(neuron_id, dtype=torch.float64), image)
    state = published_bank.state_dict(neuron_id)
    assert found.response == pytest.approx(evaluate(state, image[None])[0], rel=1e-6, abs=1e-6)
    bias = float(state["layers.Beta.bias"][0])
    assert (found.readout_weights * found.activations[-1]).sum() + bias == pytest.approx(found.response, abs=1e-6)
    assert found.contributions.shape == (state["layers.layer0_conv.weight"].shape[0],)
    where = found.readout_map()
    assert where.max() == pytest.approx(1.0) and where.min() >= 0
    assert np.argmax(where) == np.argmax(np.abs(found.readout_weights).sum(axis=0))
