"""Synthesis: the published method, its evidence on published neurons, progress and cancelling."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from scipy import ndimage

from compactrig.engine.errors import CompactRigError
from compactrig.engine.models.bank import load_bank
from compactrig.engine.models.fast_predict import FoldedModel, Predictor
from compactrig.stimuli.adversarial import adversarial
from compactrig.stimuli.diversity import diversity_report
from compactrig.stimuli.gaudy import gaudy
from compactrig.stimuli.smoothing import smooth
from compactrig.stimuli.synthesis import SynthesisSettings, initial_noise, synthesize
from compactrig.stimuli.targets import UnitTarget

from support import REPO
from support.independent_model import evaluate

sys.path.insert(0, str(REPO / "benchmarks"))
from straightforward_synthesis import synthesize_one  # noqa: E402

EVIDENCE_NEURONS = ["201025:0", "201025:20", "201025:40"]


@pytest.fixture(scope="module")
def demo_bank():
    return load_bank()


def folded(bank, neuron_id):
    return FoldedModel(bank.model(neuron_id, dtype=torch.float64))


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_torch_smoothing_is_scipys_gaussian_filter(sigma):
    images = np.random.default_rng(1).normal(size=(2, 3, 40, 37)).astype(np.float32)
    expected = ndimage.gaussian_filter(images.astype(np.float64), (0, 0, sigma, sigma))
    np.testing.assert_allclose(smooth(torch.from_numpy(images), sigma).numpy(), expected, atol=1e-5)


def test_noise_start_is_128_plus_minus_25_and_seeded():
    settings = SynthesisSettings()
    noise = initial_noise(3, settings)
    assert noise.shape == (112, 112, 3) and 103 <= noise.min() and noise.max() <= 153
    assert abs(noise.mean() - 128) < 0.5 and (noise == initial_noise(3, settings)).all()
    assert not (noise == initial_noise(4, settings)).all()


def test_batched_synthesis_reproduces_the_straightforward_port(demo_bank):
    settings = SynthesisSettings(steps=4)
    ours = synthesize(folded(demo_bank, "demo:0"), [0, 1, 2], settings)
    for row, seed in enumerate([0, 1, 2]):
        image, response = synthesize_one(demo_bank.model("demo:0"), seed, settings)
        port = np.clip(np.rint(image), 0, 255)
        assert np.abs(port - ours.images[row]).max() <= 1, "same method, same seed, same image"
        assert ours.responses[row] == pytest.approx(response, rel=0.02)


def test_demo_neurons_synthesize_what_they_prefer(demo_bank):
    results = {n: synthesize(folded(demo_bank, n), [0], SynthesisSettings(steps=60)) for n in demo_bank.neuron_ids}
    red = results["demo:1"].images[0].astype(float)
    centre = red[36:76, 36:76]
    assert (centre[..., 0] - centre[..., 1]).mean() > 100, "the red-blob neuron's image is red in the middle"
    vertical = results["demo:0"].images[0].astype(float).mean(axis=2)[30:82, 30:82]
    assert np.abs(np.diff(vertical, axis=1)).mean() > 3 * np.abs(np.diff(vertical, axis=0)).mean(), \
        "the vertical-edge neuron's image varies across columns (vertical bars)"
    predicted = Predictor(demo_bank).predict(np.concatenate([r.images for r in results.values()]))
    np.testing.assert_allclose(np.diag(predicted), [r.responses[0] for r in results.values()], rtol=1e-4)


@pytest.fixture(scope="module")
def natural_201025(published_bank, images_201025) -> np.ndarray:
    """The evidence neurons' predictions for session 201025's natural images."""
    return Predictor(published_bank).predict(images_201025.pixels, EVIDENCE_NEURONS)


@pytest.mark.slow
def test_published_neurons_beyond_natural_extremes(published_bank, natural_201025):
    natural = natural_201025
    for row, neuron_id in enumerate(EVIDENCE_NEURONS):
        model = folded(published_bank, neuron_id)
        top = synthesize(model, [0], SynthesisSettings(direction="max"))
        bottom = synthesize(model, [0], SynthesisSettings(direction="min"))
        shown = evaluate(published_bank.state_dict(neuron_id), np.concatenate([top.images, bottom.images]))
        assert shown[0] > np.percentile(natural[row], 99), neuron_id
        assert shown[1] < np.percentile(natural[row], 1), neuron_id


@pytest.mark.slow
def test_adversarial_images_stay_within_eps_and_move_the_response(published_bank, images_201025, natural_201025):
    natural = natural_201025[:2]
    originals = images_201025.pixels[[5, 500, 1000]]
    for row, neuron_id in enumerate(EVIDENCE_NEURONS[:2]):
        model = folded(published_bank, neuron_id)
        spread = natural[row].std()
        for direction, sign in (("up", 1), ("down", -1)):
            result = adversarial(model, originals, direction, eps=8)
            change = result.images.astype(int) - originals.astype(int)
            assert np.abs(change).max() <= 8 and result.images.dtype == np.uint8
            np.testing.assert_allclose(result.max_abs, np.abs(change).max(axis=(1, 2, 3)))
            np.testing.assert_allclose(result.rms, np.sqrt((change.astype(float) ** 2).mean(axis=(1, 2, 3))))
            before = evaluate(published_bank.state_dict(neuron_id), originals)
            after = evaluate(published_bank.state_dict(neuron_id), result.images)
            np.testing.assert_allclose(result.before, before, rtol=1e-4, atol=1e-4)
            assert (sign * (after - before) > 0.5 * spread).all(), (neuron_id, direction)


def test_gaudy_matches_the_definition_on_real_images(images_201025):
    originals = images_201025.pixels[:20]
    per_channel = gaudy(originals)
    assert set(np.unique(per_channel)) <= {0, 255}
    for image, result in zip(originals, per_channel):
        for channel in range(3):
            values = image[..., channel].astype(float)
            assert ((values >= values.mean()) == (result[..., channel] == 255)).all()
    global_mode = gaudy(originals, "global")
    for image, result in zip(originals, global_mode):
        assert ((image.astype(float) >= image.astype(float).mean()) == (result == 255)).all()
    blurred = gaudy(originals[:2], sigma=2.0)
    expected = ndimage.gaussian_filter(originals[:2].astype(float), (0, 2, 2, 0))
    assert ((expected >= expected.mean(axis=(1, 2), keepdims=True)) == (blurred == 255)).all()


def test_progress_and_cancel_return_the_best_so_far(demo_bank):
    model = folded(demo_bank, "demo:2")
    seen = []

    def on_progress(report):
        seen.append((report.step, report.best_responses.copy()))
        if report.step == 3:
            preview = report.current_images()
            assert preview.shape == (2, 112, 112, 3) and preview.dtype == np.uint8

    counted = []
    result = synthesize(model, [5, 6], SynthesisSettings(steps=100), partial=on_progress,
                        progress=lambda done, total, phase="": counted.append((done, total)),
                        cancelled=lambda: len(seen) >= 7)
    assert result.cancelled and result.steps_done == 7 and [s for s, _ in seen] == list(range(1, 8))
    assert counted == [(step, 100) for step in range(1, 8)]
    assert all((later >= earlier - 1e-6).all() for (_, earlier), (_, later) in zip(seen[1:], seen[2:]))
    check = evaluate(demo_bank.state_dict("demo:2"), result.images)
    np.testing.assert_allclose(result.responses, check, rtol=1e-4, atol=1e-5)


def test_grayscale_and_seeds_give_distinct_gray_images(demo_bank):
    result = synthesize(folded(demo_bank, "demo:0"), [0, 1, 2], SynthesisSettings(steps=30, grayscale=True))
    spread = np.ptp(result.images.astype(int), axis=3)
    assert spread.max() <= 1, "R, G and B equal up to rounding"
    report = diversity_report(["a", "b", "c"], result.images, result.responses)
    assert report.correlations.shape == (3, 3) and np.allclose(np.diag(report.correlations), 1)
    assert report.most_similar_pair()[2] < 0.9, "different seeds are different images"


def test_diversity_report_correlations_are_pixel_pearson():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)
    images = np.stack([image, 255 - image, rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)])
    report = diversity_report(["x", "negative", "other"], images, np.array([1.0, 2.0, 3.0]))
    assert report.correlations[0, 1] == pytest.approx(-1.0)
    expected = np.corrcoef(images[0].ravel().astype(float), images[2].ravel().astype(float))[0, 1]
    assert report.correlations[0, 2] == pytest.approx(expected)
    assert "most similar" in report.format()


def test_internal_unit_target_drives_that_unit(demo_bank):
    target = UnitTarget.parse("1:1:28:28")  # stage 1, horizontal-energy channel, centre of the 56x56 map
    result = synthesize(folded(demo_bank, "demo:0"), [0], SynthesisSettings(steps=40), target=target)
    reference = demo_bank.model("demo:0")
    with torch.no_grad():
        pixels = torch.from_numpy(np.concatenate([result.images, initial_noise(0, SynthesisSettings())[None]
                                                  .round().astype(np.uint8)])).permute(0, 3, 1, 2).float()
        unit = reference.stage_outputs(pixels)[1][:, 1, 28, 28].numpy()
    assert unit[0] > 5 * max(unit[1], 1e-3)
    assert result.responses[0] == pytest.approx(unit[0], rel=1e-3)
    with pytest.raises(Exception, match="stage 1 has channels 0..3"):
        UnitTarget.parse("1:9").check(demo_bank.info("demo:0").filters)


def test_a_direction_other_than_max_or_min_is_refused():
    """Any direction but "max" used to be taken for "min": compactrig.synthesize(direction="up") made the images
    that drive the neuron down."""
    with pytest.raises(CompactRigError, match="direction 'up'"):
        SynthesisSettings(direction="up")


def test_a_unit_target_with_a_row_and_no_column_is_refused():
    with pytest.raises(CompactRigError, match="give both row and col"):
        UnitTarget(stage=1, channel=0, row=2).check((8, 8, 8, 8, 8))
