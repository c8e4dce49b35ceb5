"""Compact models for new neurons: distillation parts checked against independent evaluation, and
``compactrig neurons fit`` end to end, whose bank every other command loads."""

from __future__ import annotations

import json
import os
import re
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from compactrig.engine.errors import CompactRigError
from compactrig.engine.models import fast_predict
from compactrig.engine.models.architecture import CompactModel
from compactrig.engine.models.bank import load_bank, load_directory
from compactrig.engine.models.bank_writer import read_provenance, write_model
from compactrig.engine.models.layout import parameter_count
from compactrig.engine.training.distill import (
    DistilledUnit,
    DistillSettings,
    Donor,
    HeadTraining,
    HeldOut,
    Pixels,
    distill_unit,
    predict_head,
    side_by_side,
    trunk_maps,
    without_channels,
)
from compactrig.stimuli.distillation_images import distillation_images
from compactrig.stimuli.new_neurons import NewNeuronSettings, Teacher, fit_new_neurons, response_sums
from compactrig.stimuli.probes import probe_family
from compactrig.stimuli.textures import pink_noise_images

from support.commands import compactrig_command, run_cli
from support.dask_workers import dask_workers, wait_until
from support.independent_model import evaluate
from support.independent_stats import direct_r2_er


@pytest.fixture(scope="module")
def published_model(shared_data) -> CompactModel:
    return load_directory(shared_data / "data_compact_models").model("201025:5")


def images(n: int, seed: int = 0) -> np.ndarray:
    return pink_noise_images(n, seed=seed, contrast=60.0)


PROBE = images(30, seed=13)
"""Held-out images of the pruning tests, without responses."""


def distilled_to_stay_itself(donor: CompactModel, rival: CompactModel | None = None) -> DistilledUnit:
    """``donor`` distilled on its own predictions (no training epochs) and pruned, judged on held-out
    responses too noisy to notice a 2% loss (its own predictions plus twice their SD of noise), so the
    agreement on ``PROBE`` decides the cuts; ``rival``, if given, is offered as a second donor."""
    training, validation = images(60, seed=11), images(30, seed=12)
    validation_maps = trunk_maps(donor, validation)
    own = predict_head(donor, validation_maps)
    noisy = own + np.random.default_rng(0).normal(0, 2 * own.std(), len(own))

    def offered(neuron_id: str, model: CompactModel) -> Donor:
        return Donor(neuron_id, model, trunk_maps(model, training),
                     HeldOut(trunk_maps(model, validation), noisy, trunk_maps(model, PROBE)))

    donors = [offered("donor", donor)] + ([offered("rival", rival)] if rival is not None else [])
    return distill_unit(donors, predict_head(donor, donors[0].maps), DistillSettings(epochs=0, prune_epochs=1))


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r of two 1-D arrays, computed by numpy (independent of the app's code)."""
    return float(np.corrcoef(a, b)[0, 1])


def follows_on_probe(distilled: DistilledUnit, original: dict[str, torch.Tensor]) -> float:
    """r between the distilled model and the original state dict on ``PROBE``, both evaluated by the
    independent float64 implementation."""
    pruned = {key: value.double() for key, value in distilled.model.state_dict().items()}
    return pearson(evaluate(pruned, PROBE), evaluate(original, PROBE))


@pytest.mark.parametrize("fused", [True, False], ids=["oneDNN", "eager"])
def test_the_frozen_part_then_the_head_is_the_whole_published_model(published_model, shared_data, fused, monkeypatch):
    """On both of the frozen part's paths: oneDNN's fused convolutions (this CPU) and the eager one that runs
    where oneDNN is missing and on a GPU."""
    if fused and fast_predict._FUSED_CONV is None:
        pytest.fail("this torch build has no oneDNN fused convolution: the fused path cannot be checked here")
    if not fused:
        monkeypatch.setattr(fast_predict, "_FUSED_CONV", None)
    pixels = images(6)
    whole = evaluate(load_directory(shared_data / "data_compact_models").state_dict("201025:5"), pixels)
    split = predict_head(published_model, trunk_maps(published_model, pixels))
    np.testing.assert_allclose(split, whole, rtol=1e-4, atol=1e-4 * np.abs(whole).max())


def test_a_pruned_channel_takes_with_it_everything_that_reads_it(published_model):
    """Silencing a channel's readers in the original, then removing the channel, changes nothing (a stage-0
    channel's removal changes the frozen part, whose output is computed again); the parameter count drops."""
    pixels = images(4, seed=1)
    for stage in (0, 1, 2, 3, 4):
        model = CompactModel(published_model.filters)
        model.load_state_dict(published_model.state_dict())
        silenced = 1
        with torch.no_grad():
            if stage < 4:
                getattr(model.layers, f"layer{stage + 1}_conv_point").weight[:, silenced] = 0
            else:
                model.layers.Beta.weight.view(28, 28, -1)[:, :, silenced] = 0
        keep = [c for c in range(model.filters[stage]) if c != silenced]
        pruned = without_channels(model.float(), stage, keep)
        maps = trunk_maps(model.float(), pixels)
        pruned_maps = maps[:, keep] if stage == 1 else trunk_maps(pruned, pixels) if stage == 0 else maps
        np.testing.assert_allclose(predict_head(pruned, pruned_maps), predict_head(model.float(), maps), rtol=1e-5,
                                   atol=1e-5)
        assert pruned.filters[stage] == model.filters[stage] - 1
        assert parameter_count(pruned.filters) < parameter_count(model.filters)


def test_two_models_side_by_side_answer_the_sum_of_their_answers(shared_data):
    """Evaluated independently, the side-by-side model answers what its two models answer together, and its
    frozen part's output is theirs, concatenated."""
    bank = load_directory(shared_data / "data_compact_models")
    pixels = images(5, seed=4)
    both = side_by_side(bank.model("201025:5").float(), bank.model("190923:3").float())
    assert both.filters == tuple(a + b for a, b in zip(bank.info("201025:5").filters, bank.info("190923:3").filters))
    summed = evaluate(bank.state_dict("201025:5"), pixels) + evaluate(bank.state_dict("190923:3"), pixels)
    own = evaluate({key: value.double() for key, value in both.state_dict().items()}, pixels)
    np.testing.assert_allclose(own, summed, rtol=1e-6, atol=1e-6 * np.abs(summed).max())
    maps = torch.cat([trunk_maps(bank.model(n).float(), pixels) for n in ("201025:5", "190923:3")], dim=1)
    np.testing.assert_allclose(predict_head(both, maps), summed, rtol=1e-4, atol=1e-4 * np.abs(summed).max())


def test_a_student_of_two_donors_side_by_side_is_cut_under_the_cap_at_stage_0_too(shared_data):
    """Two published models side by side hold 20,000-odd parameters (the zero blocks between them count in the
    published layout): the student ends under the cap, with fewer stage-0 channels than the two had, named for
    both donors, and judged by its own predictions (independent evaluation of the written model)."""
    bank = load_directory(shared_data / "data_compact_models")
    training, held_out = images(60, seed=11), images(30, seed=12)
    labels, responses = (evaluate(bank.state_dict("190923:7"), pixels) for pixels in (training, held_out))

    def donor(neuron_id: str) -> Donor:
        model = bank.model(neuron_id).float()
        return Donor(neuron_id, model, trunk_maps(model, training),
                     HeldOut(trunk_maps(model, held_out), responses, trunk_maps(model, PROBE)))

    pair = ("201025:5", "190923:3")
    assert parameter_count([sum(n) for n in zip(*(bank.info(k).filters for k in pair))]) > 20_000
    made = distill_unit([donor(k) for k in pair], labels, DistillSettings(epochs=2, prune_epochs=1, side_by_side=True),
                        pixels=Pixels(training, held_out, PROBE))
    assert made.donor == "201025:5+190923:3" and made.trials == {}
    assert made.n_parameters == parameter_count(made.model.filters) <= 20_000
    assert made.model.filters[0] < bank.info(pair[0]).filters[0] + bank.info(pair[1]).filters[0]
    own = evaluate({k: v.double() for k, v in made.model.state_dict().items()}, held_out)
    np.testing.assert_allclose(made.validation_predictions, own, rtol=1e-4, atol=1e-4 * np.abs(own).max())
    assert pearson(own, responses) == pytest.approx(made.validation_r, abs=1e-4)


def test_written_models_load_as_a_bank_in_the_published_layout(published_model, tmp_path):
    neuron_id = write_model(tmp_path / "bank", "today", 7, published_model, {"held_out_r": 0.5})
    bank = load_bank(tmp_path / "bank")
    assert neuron_id == "today:7" and bank.neuron_ids == ["today:7"]
    assert (tmp_path / "bank/models_torch/compact_model_today_neuron7.pt").is_file()
    written = np.load(tmp_path / "bank/nums_filters/compact_model_today_neuron7.npy")
    assert list(written) == list(published_model.filters)
    pixels = images(3, seed=2)
    np.testing.assert_allclose(evaluate(bank.state_dict("today:7"), pixels),
                               evaluate({k: v for k, v in published_model.state_dict().items()}, pixels), rtol=1e-6)
    assert read_provenance(tmp_path / "bank") == {"today:7": {"held_out_r": 0.5}}
    write_model(tmp_path / "bank", "today", 8, published_model, {"held_out_r": float("nan"), "r": [np.inf, 0.25]})
    strict = json.loads((tmp_path / "bank/provenance.json").read_text(), parse_constant=pytest.fail)
    assert strict["today:8"] == {"held_out_r": None, "r": [None, 0.25]} and strict["today:7"] == {"held_out_r": 0.5}
    with pytest.raises(CompactRigError, match="letters and digits"):
        write_model(tmp_path / "bank", "to_day", 1, published_model, {})


def test_pruning_keeps_the_students_predictions_of_held_out_images(published_model, shared_data):
    """A student that starts as a published model and is asked to stay that model is pruned: the
    pruned model, evaluated independently on held-out images, still follows the original at r >= 0.98,
    although the few held-out recorded responses are too noisy to notice a 2% loss."""
    distilled = distilled_to_stay_itself(published_model.float())
    assert distilled.model.filters != published_model.filters  # something was pruned
    original = load_directory(shared_data / "data_compact_models").state_dict("201025:5")
    assert follows_on_probe(distilled, original) >= 0.98


def test_a_donor_over_the_parameter_cap_is_cut_where_its_student_changes_least(shared_data):
    """201025:51, the one published model over the 20,000-parameter cap (24,558), asked to stay itself: its
    student ends under the cap and, evaluated independently on held-out images, still follows the original
    at r >= 0.9. (Cutting later stages first regardless of what held left stage 4 one channel wide: r 0.79.)
    Offered beside another donor, it wins the trial, and the trials are still reported after the extra cuts."""
    bank = load_directory(shared_data / "data_compact_models")
    donor = bank.model("201025:51").float()
    assert parameter_count(donor.filters) > DistillSettings().max_parameters
    distilled = distilled_to_stay_itself(donor, rival=bank.model("201025:5").float())
    assert distilled.donor == "donor" and set(distilled.trials) == {"donor", "rival"}
    assert distilled.n_parameters <= DistillSettings().max_parameters
    assert follows_on_probe(distilled, bank.state_dict("201025:51")) >= 0.9


def test_training_in_parts_ends_where_one_uninterrupted_training_ends(published_model):
    """A donor's quick trial is the start of the training its student continues: 2 epochs and then the rest
    give the same weights as all 4 at once."""
    maps = trunk_maps(published_model.float(), images(40, seed=5))
    targets = torch.from_numpy(np.random.default_rng(1).normal(size=40).astype(np.float32))
    settings = DistillSettings(batch_size=16)
    students = [CompactModel(published_model.filters).float() for _ in range(2)]
    for student in students:
        student.load_state_dict(published_model.state_dict())
        student.eval()
    HeadTraining(students[0], maps, targets, 4, settings).run(4)
    in_parts = HeadTraining(students[1], maps, targets, 4, settings)
    in_parts.run(2)
    in_parts.run(10)  # only the 2 epochs left
    assert in_parts.done == 4
    for (name, whole), part in zip(students[0].state_dict().items(), students[1].state_dict().values()):
        assert torch.equal(whole, part), name
    trained_readout = students[0].state_dict()["layers.Beta.weight"]
    assert not torch.equal(trained_readout, published_model.state_dict()["layers.Beta.weight"])


def test_of_two_donors_the_one_whose_trial_follows_the_held_out_responses_goes_on():
    """A unit that fires like demo:2, offered demo:0 first and demo:2 second: demo:2's trial follows the noisy
    held-out responses better, and its student ends exactly as if demo:2 had been the only donor."""
    bank = load_bank()
    truth = bank.model("demo:2").float()
    training_images, held_out_images = images(80, seed=6), images(40, seed=7)
    targets = predict_head(truth, trunk_maps(truth, training_images))
    responses = predict_head(truth, trunk_maps(truth, held_out_images))
    responses = responses + np.random.default_rng(2).normal(0, 0.5 * responses.std(), len(responses))

    def donor(neuron_id: str) -> Donor:
        model = bank.model(neuron_id).float()
        return Donor(neuron_id, model, trunk_maps(model, training_images),
                     HeldOut(trunk_maps(model, held_out_images), responses, trunk_maps(model, PROBE)))

    settings = DistillSettings(epochs=4, trial_epochs=2, prune_epochs=1)
    chosen = distill_unit([donor("demo:0"), donor("demo:2")], targets, settings)
    assert chosen.donor == "demo:2" and set(chosen.trials) == {"demo:0", "demo:2"}
    assert chosen.trials["demo:2"] > chosen.trials["demo:0"]
    alone = distill_unit([donor("demo:2")], targets, settings)
    assert alone.trials == {} and alone.model.filters == chosen.model.filters
    for name, value in alone.model.state_dict().items():
        assert torch.equal(value, chosen.model.state_dict()[name]), name


@pytest.mark.parametrize("first", [1, 0])
def test_a_student_trained_from_an_earlier_stage_keeps_only_the_frozen_part_and_is_judged_as_itself(first):
    """Trained from stage 1, a student's stage 0 and stage 1's spatial filters stay its donor's and stage 1's
    channel mixing changes; from stage 0, stage 0 changes too. Either way the held-out predictions it is judged
    by are the written model's own (independent float64 evaluation): pruning ran on its own trunk, not the
    donor's."""
    demo = load_bank()
    donor = demo.model("demo:2").float()
    training, held_out = images(80, seed=6), images(30, seed=7)
    labels = evaluate(demo.state_dict("demo:0"), training)  # another neuron: the student has to change
    responses = evaluate(demo.state_dict("demo:0"), held_out)
    offered = Donor("demo:2", donor, trunk_maps(donor, training),
                    HeldOut(trunk_maps(donor, held_out), responses, trunk_maps(donor, PROBE)))
    settings = DistillSettings(epochs=2, prune_epochs=1, train_from_stage=first, whole_epochs=2)
    made = distill_unit([offered], labels, settings, pixels=Pixels(training, held_out, PROBE))
    before, after = demo.state_dict("demo:2"), made.model.state_dict()
    kept = ["layers.layer0_conv.weight", "layers.layer1_conv_depth.weight"] if first == 1 else []
    assert all(torch.equal(after[name], before[name].float()) for name in kept)
    changed = "layers.layer0_conv.weight" if first == 0 else "layers.layer1_conv_point.weight"  # rows may be cut
    rows_before, rows_after = (state[changed].float().flatten(1) for state in (before, after))
    assert not any(torch.equal(row, original) for row in rows_after for original in rows_before)
    own = evaluate({k: v.double() for k, v in after.items()}, held_out)
    np.testing.assert_allclose(made.validation_predictions, own, rtol=1e-4, atol=1e-4 * np.abs(own).max())
    assert pearson(own, responses) == pytest.approx(made.validation_r, abs=1e-4)


def test_distillation_images_keep_the_natural_ones_and_shift_by_a_few_pixels():
    natural = images(5, seed=3)
    pixels, kinds = distillation_images(natural, seed=0)
    assert kinds == ["natural"] * 5 + ["gaudy"] * 5 + ["texture"] * 5 + ["shifted"] * 5
    library = images(3, seed=4)
    with_library, kinds = distillation_images(natural, seed=0, library=library)
    assert kinds[20:] == ["library"] * 3 and np.array_equal(with_library[:20], pixels)
    assert np.array_equal(with_library[20:], library)
    assert np.array_equal(pixels[:5], natural)
    assert set(np.unique(pixels[5:10])) <= {0, 255}
    for original, moved in zip(natural, pixels[15:]):
        best = min(np.abs(np.roll(original, (dy, dx), axis=(0, 1))[8:-8, 8:-8].astype(int) - moved[8:-8, 8:-8]).mean()
                   for dy in range(-4, 5) for dx in range(-4, 5))
        assert best == 0


def test_neurons_fit_makes_compact_models_that_follow_a_new_unit_and_every_command_loads(tmp_path, cli):
    """A new unit that fires like the demo dot detector (plus trial noise, three repeats, some missing):
    its compact model, made from the demo bank by the command, predicts images it never saw about as
    well as the truth allows, and ``predict`` reads the new bank."""
    rng = np.random.default_rng(0)
    pixels = np.concatenate([images(100, seed=4), np.stack([p.pixels for p in probe_family()])])
    truth = evaluate(load_bank().state_dict("demo:2"), pixels)
    rate = 2 + 3 * (truth - truth.mean()) / truth.std()
    folder = tmp_path / "images"
    folder.mkdir()
    for k, image in enumerate(pixels):
        Image.fromarray(image).save(folder / f"image{k + 1:04d}.png")
    trials = rate[None, :, None] + rng.normal(0, 1.0, (1, len(pixels), 3))
    trials[0, rng.random(len(pixels)) < 0.2, 2] = np.nan
    noise_only = np.concatenate([trials, rng.normal(0, 1.0, (1, len(pixels), 3))])  # unit 1: no signal
    np.save(tmp_path / "responses.npy", noise_only)
    library = tmp_path / "library"  # a lab's images without responses; one of them was also recorded
    library.mkdir()
    for k, image in enumerate([*images(12, seed=5), pixels[3]]):
        Image.fromarray(image).save(library / f"stock{k}.png")
    result = run_cli("neurons", "fit", "--bank", "demo", "--images", str(folder), "--responses",
                     str(tmp_path / "responses.npy"), "--units", "0", "--session", "today", "--out",
                     str(tmp_path / "bank"), "--epochs", "5", "--prune-epochs", "1", "--library", str(library))
    assert result.returncode == 0, result.stderr
    assert "today:0" in result.stdout
    provenance = read_provenance(tmp_path / "bank")["today:0"]
    assert provenance["images"]["distillation"]["library"] == 12  # the recorded one is left out
    assert provenance["compact"]["parameters"] <= 20_000
    assert provenance["compact"]["donor_of_stages_0_1"] == "demo:2"
    assert provenance["readout"]["held_out_r"] > 0.8 and provenance["compact"]["held_out_r"] > 0.8
    held_out = [int(i[5:]) - 1 for i in provenance["images"]["held_out"]]
    assert held_out and not set(held_out) & {int(i[5:]) - 1 for i in provenance["images"]["fitted"]}
    predicted = cli("predict", "--bank", str(tmp_path / "bank"), "--images", str(folder), "--out",
                    str(tmp_path / "predicted.npy"))
    assert predicted.returncode == 0, predicted.stderr
    values = np.load(tmp_path / "predicted.npy")[0]
    assert np.corrcoef(values[held_out], truth[held_out])[0, 1] > 0.9
    # the paper's measure on the held-out images, from the written model (independent float64 evaluation) and
    # the repeats themselves
    compact = evaluate(load_directory(tmp_path / "bank").state_dict("today:0"), pixels[held_out])
    expected = direct_r2_er(compact, [row[~np.isnan(row)] for row in trials[0, held_out]])
    assert provenance["compact"]["held_out_r2_er"] == pytest.approx(expected, abs=1e-3) and expected > 0.8
    printed = re.search(r"r2_ER readout [-0-9.]+, compact ([-0-9.]+)", result.stdout)
    assert printed and float(printed.group(1)) == pytest.approx(expected, abs=2e-3), result.stdout
    assert 0.8 < provenance["readout"]["held_out_r2_er"] < 1.2

    common = ["neurons", "fit", "--bank", "demo", "--images", str(folder),
              "--responses", str(tmp_path / "responses.npy")]
    bad = cli(*common, "--units", "5", "--session", "today", "--out", str(tmp_path / "b2"))
    assert bad.returncode == 2 and "units [5] are not rows of the responses (it has 2 neurons)" in bad.stderr
    named = cli(*common, "--session", "to-day", "--out", str(tmp_path / "b3"))
    assert named.returncode == 2 and "session name 'to-day': use 1 to 64 letters and digits only" in named.stderr
    long = cli(*common, "--session", "a" * 65, "--out", str(tmp_path / "b7"))
    assert long.returncode == 2 and "use 1 to 64 letters" in long.stderr and not (tmp_path / "b7").exists()
    recorded = np.load(tmp_path / "responses.npy")
    for change, said in ((lambda r: r[1].__setitem__(np.isfinite(r[1]), 0.0),
                          "unit 1's responses are the same for every image (0); no model can follow them"),
                         (lambda r: r[1].__setitem__(..., np.nan), "(unit 1 answered 0: leave it out of the units)"),
                         (lambda r: r[0].__setitem__((0, 0), np.inf), "responses hold infinite values"),
                         (lambda r: r[0].__setitem__((0, 0), 1e300), "responses hold values beyond 1e6")):
        changed = recorded.copy()
        change(changed)
        np.save(tmp_path / "changed.npy", changed)
        refused = cli(*common[:-1], str(tmp_path / "changed.npy"), "--session", "today", "--out",
                      str(tmp_path / "b8"))
        assert refused.returncode == 2 and said in refused.stderr, refused.stderr
    stage = cli(*common, "--session", "today", "--out", str(tmp_path / "b4"), "--train-from-stage", "3")
    assert stage.returncode == 2 and "--train-from-stage" in stage.stderr
    workers = cli(*common, "--session", "today", "--out", str(tmp_path / "b5"), "--cluster", "local:0")
    assert workers.returncode == 2 and "give local:N with N >= 1 worker processes" in workers.stderr
    if not torch.cuda.is_available():
        gpu = cli(*common, "--session", "today", "--out", str(tmp_path / "b6"), "--device", "cuda")
        assert gpu.returncode == 2 and gpu.stderr.strip().endswith("no CUDA GPU is available here; use --device cpu")


def test_the_readout_also_predicts_images_nothing_was_fitted_on(tmp_path):
    """What a benchmark needs to show where distillation loses: the readout's predictions of images the
    caller names, the same readout whose held-out r the provenance reports, following the unit's truth
    (the demo dot detector, independent float64 evaluation) on images it never saw."""
    recorded, unseen = images(80, seed=4), images(40, seed=20)
    truth = evaluate(load_bank().state_dict("demo:2"), np.concatenate([recorded, unseen]))
    rate = 2 + 3 * (truth - truth.mean()) / truth.std()
    responses = rate[None, :80, None] + np.random.default_rng(0).normal(0, 0.5, (1, 80, 3))
    ids = [f"image{k + 1:04d}" for k in range(80)]
    trials = response_sums(ids, responses, [0])
    settings = NewNeuronSettings(distill=DistillSettings(epochs=1, prune_epochs=1))
    reports = []
    made, = fit_new_neurons(load_bank(), ids, recorded, trials, [0], "today", tmp_path / "bank", settings,
                            judged_pixels=np.concatenate([recorded, unseen]),
                            progress=lambda done, total, phase="": reports.append((phase, done, total)))
    phases = list(dict.fromkeys(phase for phase, _, _ in reports))
    assert "bank features of the recorded images" in phases and "unit 0: training" in phases, phases
    assert all(phase and 1 <= done <= total for phase, done, total in reports), "each report names its phase"
    provenance = read_provenance(tmp_path / "bank")["today:0"]
    held_out = [ids.index(i) for i in provenance["images"]["held_out"]]
    assert pearson(made.readout_judged[held_out], responses[0, held_out].mean(axis=1)) == pytest.approx(
        provenance["readout"]["held_out_r"], abs=1e-9)
    assert pearson(made.readout_judged[80:], truth[80:]) > 0.9


def test_a_teacher_in_the_readouts_place_is_what_the_compact_model_learns(tmp_path):
    """What ``benchmarks/new_neurons.py --teacher published`` relies on to measure distillation alone: the unit
    fires like the demo dot detector (demo:2) plus another demo neuron (demo:0), and the readout learns that
    mixture; the teacher given is the dot detector alone. The compact model follows the teacher on images it
    never saw, not the recorded unit (independent float64 evaluations; without the teacher it follows the
    unit at r 0.96 and the dot detector at 0.81), and its provenance names the teacher."""
    recorded, unseen = images(80, seed=4), images(40, seed=20)
    demo = load_bank()
    dot, other = (evaluate(demo.state_dict(n), np.concatenate([recorded, unseen])) for n in ("demo:2", "demo:0"))
    unit = (dot - dot.mean()) / dot.std() + 0.8 * (other - other.mean()) / other.std()
    responses = unit[None, :80, None] + np.random.default_rng(0).normal(0, 0.1, (1, 80, 3))
    ids = [f"image{k + 1:04d}" for k in range(80)]
    teacher = Teacher("the dot detector", lambda pixels: evaluate(demo.state_dict("demo:2"), pixels)[None])
    settings = NewNeuronSettings(distill=DistillSettings(epochs=2, prune_epochs=1))
    made, = fit_new_neurons(demo, ids, recorded, response_sums(ids, responses, [0]), [0], "today", tmp_path / "bank",
                            settings, judged_pixels=unseen, teacher=teacher)
    compact = evaluate({k: v.double() for k, v in load_bank(tmp_path / "bank").state_dict(made.neuron_id).items()},
                       unseen)
    assert pearson(made.readout_judged, unit[80:]) > 0.95
    assert pearson(compact, dot[80:]) > 0.95
    assert pearson(compact, unit[80:]) < 0.85
    assert read_provenance(tmp_path / "bank")["today:0"]["compact"]["teacher"] == "the dot detector"
    transposed = Teacher("a transposed teacher", lambda pixels: np.zeros((len(pixels), 1)))  # (images, units)
    with pytest.raises(CompactRigError, match=r"teacher a transposed teacher answered shape \(256, 1\) for 256 "
                                              r"images; expected \(1 units, 256 images\)"):
        fit_new_neurons(demo, ids, recorded, response_sums(ids, responses, [0]), [0], "today", tmp_path / "b2",
                        settings, teacher=transposed)


@pytest.mark.slow
def test_a_second_fit_reads_the_bank_features_and_a_cluster_that_loses_a_worker_makes_the_same_models(
        tmp_path, monkeypatch):
    """Four units like two demo neurons, fitted twice by the command: here, then on a 2-worker local cluster
    one of whose workers is killed (SIGKILL) once the first model is back. The second run reads the bank
    features the first computed (the same cache files, read, not written again: their inodes stay and their
    use is stamped) and makes every unit, bit for bit the models of the first."""
    monkeypatch.setenv("COMPACTRIG_CACHE_DIR", str(tmp_path / "cache"))
    pixels = images(60, seed=4)
    demo = load_bank()
    rates = np.stack([evaluate(demo.state_dict(n), pixels) for n in ("demo:2", "demo:0", "demo:2", "demo:0")])
    responses = rates[:, :, None] + np.random.default_rng(0).normal(0, 0.5 * rates.std(), (4, 60, 2))
    folder = tmp_path / "images"
    folder.mkdir()
    for k, image in enumerate(pixels):
        Image.fromarray(image).save(folder / f"image{k + 1:04d}.png")
    np.save(tmp_path / "responses.npy", responses)
    common = ["neurons", "fit", "--bank", "demo", "--images", str(folder), "--responses",
              str(tmp_path / "responses.npy"), "--session", "today", "--epochs", "2", "--prune-epochs", "1"]
    here = run_cli(*common, "--out", str(tmp_path / "here"))
    assert here.returncode == 0, here.stderr
    features = sorted((tmp_path / "cache" / "features").glob("*.npz"))
    assert len(features) == 2  # the recorded images' and the distillation images'
    for path in features:
        os.utime(path, (0, 0))
    inodes = {path: path.stat().st_ino for path in features}

    run = subprocess.Popen(compactrig_command(*common, "--out", str(tmp_path / "cluster"), "--cluster", "local:2"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    written = tmp_path / "cluster" / "models_torch"
    wait_until(run, lambda: len(list(written.glob("compact_model_*.pt"))) >= 1 and len(dask_workers(run)) == 2,
               "the first model came back", timeout=300)
    dask_workers(run)[0].kill()  # SIGKILL (TerminateProcess on Windows)
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    assert "Wrote 4 compact model(s)" in out
    assert sorted((tmp_path / "cache" / "features").glob("*.npz")) == features
    assert all(path.stat().st_ino == inodes[path] and path.stat().st_mtime > 0 for path in features)
    ours, theirs = load_bank(tmp_path / "here"), load_bank(tmp_path / "cluster")
    assert ours.neuron_ids == theirs.neuron_ids == [f"today:{unit}" for unit in range(4)]
    for neuron_id in ours.neuron_ids:
        mine, other = ours.state_dict(neuron_id), theirs.state_dict(neuron_id)
        assert mine.keys() == other.keys() and all(torch.equal(mine[k], other[k]) for k in mine), neuron_id


def test_the_windows_compact_models_leave_out_a_unit_that_never_fired(tmp_path):
    """A session with a silent channel (a declared unit counted 0 on every image): "Make compact models" makes the
    other units' models and none of it (a model of a constant predicts a constant; it used to be written)."""
    from compactrig.engine.stats.response_sums import PerImageSums
    from compactrig.rig.session.compact_models import make_session_models
    from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

    pixels = images(60, seed=5)
    ids = [f"tex{k:02d}" for k in range(60)]
    StimulusSet([StimulusRecord(image_id=i, kind="natural") for i in ids], pixels).save(tmp_path / "stimuli")
    truth = evaluate(load_bank().state_dict("demo:1"), pixels)
    counts = np.stack([2 + 3 * (truth - truth.mean()) / truth.std(), np.zeros(60)], axis=1)
    responses = PerImageSums(["ch1", "ch2"], ids)
    responses.add(ids, counts)
    settings = NewNeuronSettings(distill=DistillSettings(epochs=1, prune_epochs=1))
    out, made = make_session_models(load_bank(), tmp_path, responses, settings)
    assert [(n.neuron_id, n.unit) for n in made] == [(f"{tmp_path.name.replace('_', '')}:0", 0)]
    assert read_provenance(out)[made[0].neuron_id]["recorded_unit"] == "ch1"
