"""Stimulus sets on disk: exact pixels, full provenance, merge/filter/reorder, clear errors; the CLI."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from compactrig.engine import __version__
from compactrig.engine.errors import CompactRigError
from compactrig.engine.models.bank import load_bank, load_directory
from compactrig.stimuli.probes import colour_blob, dot_lattice, grating
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet, annotate

from support.banks import TWO_SESSIONS, two_session_bank
from support.commands import run_cli
from support.independent_model import evaluate


@pytest.fixture(scope="module")
def probe_set():
    bank = load_bank()
    pixels = np.stack([grating(0), dot_lattice(), colour_blob((1, -1, 0))])
    records = [StimulusRecord(image_id=i, kind="natural", method={"method": "probe"})
               for i in ("grating", "dots", "blob")]
    return annotate(bank, pixels, records, all_neurons=True)


def test_round_trip_gives_the_same_pixels_and_manifest(tmp_path, probe_set):
    probe_set.save(tmp_path / "set")
    loaded = StimulusSet.load(tmp_path / "set")
    assert (loaded.pixels == probe_set.pixels).all() and loaded.records == probe_set.records
    png = np.asarray(Image.open(tmp_path / "set" / "dots.png"))
    assert png.shape == (112, 112, 3) and (png == dot_lattice()).all(), "lossless, exactly the shown pixels"
    record = loaded.records[0]
    assert record.software_version == __version__ and record.created.endswith("+00:00")
    assert record.bank["name"] == "demo" and len(record.bank["sha256"]) == 64
    bank = load_bank()
    for index, r in enumerate(loaded.records):
        assert set(r.predicted) == set(bank.neuron_ids)
        for neuron_id in bank.neuron_ids:
            expected = evaluate(bank.state_dict(neuron_id), loaded.pixels[index:index + 1])[0]
            assert r.predicted[neuron_id] == pytest.approx(expected, rel=1e-4, abs=1e-5)


def test_a_designed_image_records_its_target_and_its_sessions_neurons_unless_all_are_asked_for(tmp_path):
    bank = load_directory(two_session_bank(tmp_path / "bank"))
    pixels = np.stack([grating(45), dot_lattice()])
    records = [StimulusRecord(image_id="for_a1", kind="max", target_neuron="a:1"),
               StimulusRecord(image_id="untargeted", kind="natural")]
    default = annotate(bank, pixels, records)
    assert set(default.records[0].predicted) == {"a:0", "a:1"}, "the target and the neuron recorded with it"
    assert default.records[1].predicted == {} and default.records[1].bank == {}, "nothing asked of an untargeted image"
    demo = load_bank("demo")
    for neuron_id, value in default.records[0].predicted.items():
        expected = evaluate(demo.state_dict(TWO_SESSIONS[neuron_id]), pixels[:1])[0]
        assert value == pytest.approx(expected, rel=1e-4, abs=1e-5)
    every = annotate(bank, pixels, records, all_neurons=True)
    assert all(set(r.predicted) == set(TWO_SESSIONS) for r in every.records)
    assert every.records[0].bank["sha256"] == bank.identity()["sha256"]


def test_stimuli_predict_adds_predictions_later_and_checks_the_bank_that_made_them(tmp_path, cli):
    bank = two_session_bank(tmp_path / "bank")
    out = tmp_path / "set"
    made = cli("synth", "max", "--bank", str(bank), "--neuron", "b:0", "--n", "2", "--steps", "2", "--out", str(out))
    assert made.returncode == 0, made.stderr
    assert [sorted(r.predicted) for r in StimulusSet.load(out).records] == [["b:0"], ["b:0"]]
    pngs = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    added = cli("stimuli", "predict", str(out), "--bank", str(bank), "--neurons", "a:1")
    assert added.returncode == 0, added.stderr
    loaded = StimulusSet.load(out)
    expected = evaluate(load_bank("demo").state_dict(TWO_SESSIONS["a:1"]), loaded.pixels)
    for record, value in zip(loaded.records, expected):
        assert sorted(record.predicted) == ["a:1", "b:0"]
        assert record.predicted["a:1"] == pytest.approx(value, rel=1e-4, abs=1e-5)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")} == pngs, "only the manifest is rewritten"
    assert cli("stimuli", "predict", str(out), "--bank", str(bank), "--all-neurons").returncode == 0
    assert all(set(r.predicted) == set(TWO_SESSIONS) for r in StimulusSet.load(out).records)

    before = (out / "manifest.json").read_text()
    nothing = cli("stimuli", "predict", str(out))  # the demo bank: none of its neurons is the target
    assert nothing.returncode == 2 and "pass the bank it was designed with (--bank)" in nothing.stderr
    other = cli("stimuli", "predict", str(out), "--neurons", "demo:0")
    assert other.returncode == 2 and "made by the bank 'bank'" in other.stderr and "--replace" in other.stderr
    assert (out / "manifest.json").read_text() == before, "a refused prediction writes nothing"
    replaced = cli("stimuli", "predict", str(out), "--neurons", "demo:0", "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert all(sorted(r.predicted) == ["demo:0"] and r.bank["name"] == "demo" for r in StimulusSet.load(out).records)


def test_merge_filter_reorder(tmp_path, probe_set):
    order = probe_set.reordered(["blob", "grating", "dots"])
    assert order.ids == ["blob", "grating", "dots"] and (order.pixels[0] == probe_set.pixels[2]).all()
    only = probe_set.filtered(lambda r: r.image_id != "dots")
    assert only.ids == ["grating", "blob"]
    with pytest.raises(CompactRigError, match="an image named 'blob' is already in the stimulus set"):
        probe_set.merged(only)
    assert probe_set.not_in(only).ids == [], "the same images: nothing new"
    changed = StimulusSet(only.records, only.pixels[::-1].copy())
    assert probe_set.not_in(changed).ids == ["grating", "blob"], "same names, other pixels: not the same images"
    renamed = StimulusSet([StimulusRecord(image_id="extra", kind="gaudy")], probe_set.pixels[:1])
    merged = probe_set.merged(renamed)
    assert merged.ids == ["grating", "dots", "blob", "extra"]
    merged.save(tmp_path / "s")
    only.save(tmp_path / "s")
    assert sorted(p.name for p in (tmp_path / "s").glob("*.png")) == ["blob.png", "grating.png"]
    with pytest.raises(CompactRigError, match="'nope' is not in"):
        probe_set.reordered(["nope"])


@pytest.mark.parametrize("ids, fragment", [
    (["Blob", "blob"], "'Blob' and 'blob' differ only in case"),
    (["NUL"], "Windows reserves that name"),
    (["com3.tilted"], "Windows reserves that name"),
])
def test_ids_that_windows_or_macos_would_write_as_one_file_or_refuse_are_refused(ids, fragment):
    """Windows and macOS compare file names ignoring case, and Windows reserves device names whatever the
    extension: such ids would overwrite each other or fail to save there, so they are refused everywhere."""
    pixels = np.stack([grating(0)] * len(ids))
    with pytest.raises(CompactRigError, match=fragment):
        StimulusSet([StimulusRecord(image_id=i, kind="natural") for i in ids], pixels)


def test_a_merge_that_differs_only_in_case_is_refused(probe_set):
    with pytest.raises(CompactRigError, match="an image named 'blob' is already in the stimulus set \\(names become"):
        probe_set.merged(StimulusSet([StimulusRecord(image_id="BLOB", kind="natural")], probe_set.pixels[:1]))
    assert StimulusSet([StimulusRecord(image_id="console", kind="natural")], probe_set.pixels[:1]).ids == ["console"]


def test_damaged_sets_are_named(tmp_path, probe_set):
    folder = probe_set.save(tmp_path / "set")
    (folder / "dots.png").unlink()
    with pytest.raises(CompactRigError, match=r"dots.png: unusable stimulus image"):
        StimulusSet.load(folder)
    Image.new("RGB", (50, 50)).save(folder / "dots.png")
    with pytest.raises(CompactRigError, match="expected RGB 112x112"):
        StimulusSet.load(folder)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(CompactRigError, match="not a valid stimulus-set manifest"):
        StimulusSet.load(folder)
    with pytest.raises(CompactRigError, match="no manifest.json"):
        StimulusSet.load(tmp_path)
    with pytest.raises(CompactRigError, match="image id '../x'"):
        StimulusSet([StimulusRecord(image_id="../x", kind="max")], probe_set.pixels[:1])


def test_cli_synth_writes_a_set_with_provenance(tmp_path, cli):
    out = tmp_path / "designed"
    result = run_cli("synth", "max", "--neuron", "demo:2", "--n", "2", "--steps", "20", "--seed", "7",
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "most similar" in result.stdout and "synthesizing" in result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    first = manifest["images"][0]
    assert [m["image_id"] for m in manifest["images"]] == ["max_demo-2_seed7", "max_demo-2_seed8"]
    assert first["kind"] == "max" and first["target_neuron"] == "demo:2" and first["seed"] == 7
    assert first["method"]["steps"] == 20 and first["method"]["step_size"] == 10.0
    pixels = np.asarray(Image.open(out / first["file"]))
    expected = evaluate(load_bank().state_dict("demo:2"), pixels[None])[0]
    assert first["predicted"]["demo:2"] == pytest.approx(expected, rel=1e-4)
    again = cli("synth", "min", "--neuron", "demo:2", "--steps", "5", "--out", str(out))
    assert again.returncode == 0 and len(StimulusSet.load(out)) == 3, "a second run adds to the set"


def test_cli_import_gaudy_adversarial_and_show(tmp_path, shared_data, cli):
    out = tmp_path / "set"
    zipped = tmp_path / "images_210325_first12.zip"  # the published layout, 12 of its 640 images
    with zipfile.ZipFile(shared_data / "data_V4_responses/images/images_210325.zip") as published, \
            zipfile.ZipFile(zipped, "w") as few_images:
        for member in [m for m in published.infolist() if not m.is_dir()][:12]:
            few_images.writestr(member, published.read(member))
    assert cli("stimuli", "import", str(zipped), "--out", str(out)).returncode == 0
    natural = StimulusSet.load(out)
    assert len(natural) == 12 and natural.ids[6] == "image0007" and natural.records[6].kind == "natural"
    few = tmp_path / "few"
    few.mkdir()
    for index in (0, 1):
        Image.fromarray(natural.pixels[index]).save(few / f"{natural.ids[index]}.png")
    assert cli("gaudy", "--images", str(few), "--mode", "global", "--out", str(out)).returncode == 0
    result = cli("synth", "adversarial", "--neuron", "demo:0", "--images", str(few), "--direction", "down",
                 "--eps", "4", "--steps", "5", "--out", str(out))
    assert result.returncode == 0, result.stderr
    final = StimulusSet.load(out)
    assert final.ids[-2:] == ["advdown_demo-0_image0001", "advdown_demo-0_image0002"]
    assert final.records[-1].source_image == "image0002" and final.records[-1].method["eps"] == 4.0
    assert np.abs(final.pixels[-1].astype(int) - natural.pixels[1].astype(int)).max() <= 4
    assert set(np.unique(final.pixels[12:14])) <= {0, 255}
    shown = cli("stimuli", "show", str(out))
    assert shown.returncode == 0 and "16 images (12 natural, 2 gaudy, 2 adversarial)" in shown.stdout


@pytest.mark.parametrize("args, fragment", [
    (["synth", "max", "--neuron", "demo:9", "--out", "{tmp}/o"], "unknown neuron id 'demo:9'"),
    (["synth", "max", "--neuron", "demo:0", "--target", "stage2", "--out", "{tmp}/o"], "target 'stage2'"),
    (["synth", "max", "--neuron", "demo:0", "--target", "7:0", "--out", "{tmp}/o"], "stage must be 0..4"),
    (["synth", "max", "--neuron", "demo:0", "--n", "0", "--out", "{tmp}/o"], "argument --n: 0 is out of range"),
    (["stimuli", "show", "{tmp}"], "no manifest.json"),
    (["gaudy", "--images", "{tmp}/none", "--out", "{tmp}/o"], "no such file or folder"),
])
def test_cli_bad_input_one_line(tmp_path, cli, args, fragment):
    result = cli(*[a.format(tmp=tmp_path) for a in args])  # in this process: an uncaught error fails the test
    assert result.returncode == 2 and fragment in result.stderr.strip().splitlines()[-1], result.stderr


def test_adding_to_a_saved_set_writes_only_the_new_images_and_reads_back_a_subset(tmp_path):
    from compactrig.stimuli.probes import colour_blob, grating
    from compactrig.stimuli.stimulus_set import add_to_folder
    StimulusSet([StimulusRecord(image_id=f"g{a}", kind="natural") for a in (0, 90)],
                np.stack([grating(0), grating(90)])).save(tmp_path)
    first_png = (tmp_path / "g0.png").stat().st_mtime_ns
    blob = StimulusSet([StimulusRecord(image_id="blob", kind="natural")], colour_blob((1, -1, 0))[None])
    add_to_folder(tmp_path, blob)
    assert (tmp_path / "g0.png").stat().st_mtime_ns == first_png, "existing PNGs are not rewritten"
    whole = StimulusSet.load(tmp_path)
    assert whole.ids == ["g0", "g90", "blob"] and np.array_equal(whole.pixels[2], blob.pixels[0])
    subset = StimulusSet.load(tmp_path, only={"blob", "g0"})
    assert subset.ids == ["g0", "blob"] and np.array_equal(subset.pixels, whole.pixels[[0, 2]])
    with pytest.raises(CompactRigError, match="'blob' is already in"):
        add_to_folder(tmp_path, blob)
