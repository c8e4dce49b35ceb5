"""The ``compactrig`` command as a user runs it: output, files, and one-line errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from compactrig.stimuli.probes import colour_blob, dot_lattice, grating

from support.commands import run_cli
from support.independent_model import evaluate


def test_demo_table_stars_each_neurons_preferred_probe(cli):
    result = cli("demo")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[3:]}
    assert set(rows) >= {"grating_0", "grating_90", "dots", "blob_red", "blob_green", "grey"}
    starred = {name: line.count("*") for name, line in rows.items()}
    assert starred["grating_0"] == 1 and starred["dots"] == 1 and starred["blob_red"] == 1
    assert sum(starred.values()) == 3


def test_models_list_text_and_json(shared_data, cli):
    result = cli("models", "list", "--bank", str(shared_data / "data_compact_models"), "--json")
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert len(listing["neurons"]) == 219
    first = listing["neurons"][0]
    filters = np.load(shared_data / "data_compact_models" / "nums_filters" / "compact_model_190923_neuron0.npy")
    assert first["id"] == "190923:0" and first["filters"] == filters.tolist()
    text = cli("models", "list")
    assert text.returncode == 0 and text.stdout.splitlines()[1].split()[:2] == ["demo:0", "2674"]


@pytest.fixture()
def image_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    images = {"b_dots": dot_lattice(), "a_grating": grating(0), "c_blob": colour_blob((1, -1, 0))}
    for name, pixels in images.items():
        Image.fromarray(pixels).save(folder / f"{name}.png")
    return folder, [images[k] for k in sorted(images)]


def test_predict_writes_npy_and_csv_in_the_promised_order(tmp_path, image_folder, shared_data, cli):
    folder, pixels = image_folder
    out, table = tmp_path / "p.npy", tmp_path / "p.csv"
    bank = shared_data / "data_compact_models"
    result = cli("predict", "--bank", str(bank), "--images", str(folder), "--out", str(out),
                 "--neurons", "201025:2,190923:5", "--csv", str(table))
    assert result.returncode == 0, result.stderr
    values = np.load(out)
    assert values.dtype == np.float32 and values.shape == (2, 3)
    import torch
    for row, name in enumerate(["compact_model_201025_neuron2.pt", "compact_model_190923_neuron5.pt"]):
        state = torch.load(bank / "models_torch" / name, weights_only=True)
        expected = evaluate(state, np.stack(pixels))
        assert np.abs(values[row] - expected).max() <= 1e-4 * np.abs(expected).max()
    with open(table) as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["neuron", "a_grating", "b_dots", "c_blob"]
    assert [r[0] for r in rows[1:]] == ["201025:2", "190923:5"]
    np.testing.assert_allclose(np.array([r[1:] for r in rows[1:]], dtype=float), values, rtol=1e-6)


def test_predict_from_published_zip_default_bank(tmp_path, shared_data):
    out = tmp_path / "demo.npy"
    result = run_cli("predict", "--images", str(shared_data / "data_V4_responses/images/images_210325.zip"),
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert np.load(out).shape == (3, 640)
    assert "predicting" in result.stderr, "a progress bar is shown on stderr"


@pytest.mark.parametrize("args, fragment", [
    (["predict", "--images", "{tmp}/nowhere", "--out", "{tmp}/o.npy"], "nowhere: no such file or folder"),
    (["predict", "--images", "{tmp}/empty", "--out", "{tmp}/o.npy"], "empty: holds no images"),
    (["predict", "--images", "{tmp}/notes.txt", "--out", "{tmp}/o.npy"], "notes.txt: not a folder, a .zip or a .tar"),
    (["predict", "--images", "{tmp}/bad", "--out", "{tmp}/o.npy"], "broken.png: not a readable image"),
    (["predict", "--images", "{tmp}/bad", "--out", "{tmp}/o.npy", "--neurons", "demo:7"], "unknown neuron id 'demo:7'"),
    (["models", "list", "--bank", "{tmp}/empty"], "empty: no models_torch/ folder"),
    (["predict", "--bank", "{tmp}/corrupt", "--images", "{tmp}/good", "--out", "{tmp}/o.npy"],
     "compact_model_1_neuron0.pt: not a readable PyTorch state dict"),
    (["predict", "--images", "{tmp}/good", "--out", "{tmp}/o.npy", "--device", "cuda:7"], "device 'cuda:7'"),
    (["predict", "--images", "{tmp}/good", "--out", "{tmp}/empty.zarr"], "empty.zarr: already exists; add --resume"),
    (["predict", "--images", "{tmp}/good", "--out", "{tmp}/empty", "--resume"], "empty: must end in .npy or .zarr"),
    (["predict", "--images", "{tmp}/good", "--out", "{tmp}/o.zarr", "--cluster", "local:0"], "--cluster local:0: give"),
    (["screen", "--images", "{tmp}/good", "--top", "1", "--out", "{tmp}/s"], "--top 1: the collection has 1 images"),
])
def test_bad_input_is_one_line_exit_2_no_traceback(tmp_path, cli, args, fragment):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty.zarr").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.png").write_bytes(b"\x89PNG but not really")
    (tmp_path / "good").mkdir()
    Image.fromarray(grating(0)).save(tmp_path / "good" / "g.png")
    corrupt = tmp_path / "corrupt"
    (corrupt / "models_torch").mkdir(parents=True)
    (corrupt / "nums_filters").mkdir()
    (corrupt / "models_torch" / "compact_model_1_neuron0.pt").write_bytes(b"truncated")
    np.save(corrupt / "nums_filters" / "compact_model_1_neuron0.npy", np.array([4, 4, 4, 4, 4]))
    result = cli(*[a.format(tmp=tmp_path) for a in args])  # in this process: an uncaught error fails the test
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("compactrig: error:")]
    assert len(lines) == 1 and fragment in lines[0], result.stderr


def test_only_the_chosen_command_is_loaded_so_help_rig_files_and_listings_need_no_torch(tmp_path, shared_data):
    """The presenter process re-imports the console script when it is spawned, and a user waits for
    ``--help`` and ``models list``: none of them should pay for PyTorch (about a second here)."""
    import subprocess
    import sys
    rig = tmp_path / "rig.toml"
    assert run_cli("rig", "init", str(rig)).returncode == 0
    code = ("import sys, contextlib, io\nfrom compactrig.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out: status = main(sys.argv[1:])\n"
            "print(status, 'torch' in sys.modules, len(out.getvalue().splitlines()))")
    for command, lines in ((["rig", "check", str(rig)], None), (["models", "list"], 4),
                           (["models", "list", "--bank", str(shared_data / "data_compact_models")], 220)):
        checked = subprocess.run([sys.executable, "-c", code, *command], capture_output=True, text=True)
        status, torch_loaded, printed = checked.stdout.split()
        assert (status, torch_loaded) == ("0", "False"), (command, checked.stderr)
        assert lines is None or int(printed) == lines, command
    listing = run_cli("--help")
    assert listing.returncode == 0
    from compactrig.cli import COMMANDS, build_parser
    for name, (_, help_line) in COMMANDS.items():
        assert help_line in " ".join(listing.stdout.split())  # argparse wraps long lines
        full = build_parser([name])  # the module's own registration says the same as the listing
        action = next(a for a in full._subparsers._group_actions if name in a.choices)
        assert next(c.help for c in action._choices_actions if c.dest == name) == help_line
