"""The embedded demo neurons prefer what their names say, deterministically, offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from compactrig.engine.models.bank import load_bank
from compactrig.engine.models.fast_predict import Predictor
from compactrig.stimuli.probes import colour_blob, dot_lattice, grating

from support.independent_model import evaluate

ORIENTATIONS = np.arange(0, 180, 22.5)


@pytest.fixture(scope="module")
def demo():
    bank = load_bank()
    return bank, Predictor(bank)


def responses(demo, neuron_id: str, images: list[np.ndarray]) -> np.ndarray:
    bank, predictor = demo
    return predictor.predict(np.stack(images), [neuron_id])[0]


def test_bank_is_the_published_architecture_and_deterministic(demo):
    bank, _ = demo
    again = load_bank("demo")
    assert bank.neuron_ids == ["demo:0", "demo:1", "demo:2"]
    assert [n.label for n in bank.neurons] == [f"{name} (demo model, no recorded neuron)"
                                               for name in ("vertical edge", "red blob", "dot detector")]
    assert again.identity() == bank.identity()
    probe = np.stack([grating(0), dot_lattice(), colour_blob((1, -1, 0))])
    for neuron_id in bank.neuron_ids:
        bank.model(neuron_id)  # strict load: every published key, right shapes
        expected = evaluate(bank.state_dict(neuron_id), probe)
        got = Predictor(bank).predict(probe, [neuron_id])[0]
        assert np.abs(got - expected).max() <= 1e-4 * max(np.abs(expected).max(), 1e-6)


def test_vertical_edge_prefers_vertical_gratings(demo):
    for phase in (0.0, np.pi / 2, np.pi):
        tuning = responses(demo, "demo:0", [grating(o, phase=phase) for o in ORIENTATIONS])
        assert tuning.argmax() == 0, "0 degrees is vertical"
        assert tuning[0] > 1.1 * np.delete(tuning, 0).max()
        assert tuning[4] < 0.1 * tuning[0], "the orthogonal (horizontal) grating barely drives it"
    others = responses(demo, "demo:0", [dot_lattice(), colour_blob((1, -1, 0)), colour_blob((0, 0, 1))])
    assert responses(demo, "demo:0", [grating(0)])[0] > 3 * others.max()


def test_red_blob_prefers_red_over_other_colours_and_patterns(demo):
    red, green, blue = responses(demo, "demo:1", [colour_blob((1, -1, 0)), colour_blob((-1, 1, 0)),
                                                  colour_blob((0, 0, 1))])
    patterns = responses(demo, "demo:1", [grating(o) for o in ORIENTATIONS] + [dot_lattice()])
    assert red > 3 * max(green, blue, patterns.max())
    small, large = responses(demo, "demo:1", [colour_blob((1, -1, 0), radius_px=5),
                                              colour_blob((1, -1, 0), radius_px=25)])
    assert large > small, "a blob filling the receptive field drives it more"


def test_dot_detector_prefers_dots_to_gratings_of_the_same_contrast(demo):
    for contrast in (0.5, 1.0):
        dots = responses(demo, "demo:2", [dot_lattice(contrast=contrast)])[0]
        gratings = responses(demo, "demo:2", [grating(o, contrast=contrast) for o in ORIENTATIONS])
        assert dots > 2 * gratings.max(), contrast
    blobs = responses(demo, "demo:2", [colour_blob((1, -1, 0)), colour_blob((0, 0, 1))])
    assert responses(demo, "demo:2", [dot_lattice()])[0] > 10 * blobs.max()


def test_reference_model_gradients_flow_to_pixels(demo):
    bank, _ = demo
    model = bank.model("demo:0")
    image = torch.from_numpy(grating(0)).permute(2, 0, 1)[None].float().requires_grad_(True)
    model(image).sum().backward()
    assert image.grad is not None and float(image.grad.abs().sum()) > 0
