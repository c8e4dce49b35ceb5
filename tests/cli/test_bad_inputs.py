"""Hostile and careless input through the real command line: odd images, bombs, huge archive members, broken
models, impossible rig values and command-line numbers, a resumed run pointed at another collection, and a
defect that must reach the user as one line and a log file, never as a traceback."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from compactrig.stimuli.probes import colour_blob, dot_lattice, grating

from support.commands import run_cli


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("compactrig: error:")]


def one_line_error(result, fragment: str, code: int = 2) -> str:
    """The single ``compactrig: error:`` line of a failed command (no traceback), checked to hold ``fragment``."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = error_lines(result)
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    return lines[0]


def imported_pixels(cli, source: Path, out: Path) -> dict[str, np.ndarray]:
    """``stimuli import`` the images at ``source`` and read the set's PNGs back (the pixels the models see)."""
    result = cli("stimuli", "import", str(source), "--out", str(out))
    assert result.returncode == 0, result.stderr
    return {path.stem: np.asarray(Image.open(path)) for path in out.glob("*.png")}


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int, height: int) -> bytes:
    """A valid 1-bit greyscale PNG of ``width`` x ``height`` black pixels: a few kB declaring a huge image."""
    squeeze = zlib.compressobj(9)
    row = bytes(1 + (width + 7) // 8)  # filter byte, then the packed bits
    data = b"".join(squeeze.compress(row) for _ in range(height)) + squeeze.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


def test_sixteen_bit_and_float_images_are_scaled_to_0_255(tmp_path, cli):
    rng = np.random.default_rng(3)
    deep = rng.integers(0, 65536, (112, 112), dtype=np.uint16)
    deep[0, :4] = [0, 257, 65535, 32896]  # black, one level, white, mid-grey 128
    unit = rng.uniform(0, 1, (112, 112)).astype(np.float32)
    unit[0, :2] = [0.0, 1.0]
    folder = tmp_path / "deep"
    folder.mkdir()
    Image.fromarray(deep).save(folder / "sixteen.png")
    Image.fromarray(unit).save(folder / "float.tif")
    assert Image.open(folder / "sixteen.png").mode == "I;16" and Image.open(folder / "float.tif").mode == "F"
    pixels = imported_pixels(cli, folder, tmp_path / "set")
    expected_deep = (deep.astype(np.int64) + 128) // 257  # nearest of the 256 levels, 65535 / 257 = 255
    expected_unit = np.floor(unit.astype(np.float64) * 255 + 0.5)
    for name, expected in (("sixteen", expected_deep), ("float", expected_unit)):
        assert pixels[name].shape == (112, 112, 3)
        for channel in range(3):
            np.testing.assert_array_equal(pixels[name][..., channel], expected, err_msg=name)
    assert list(pixels["sixteen"][0, :4, 0]) == [0, 1, 255, 128]


def test_a_float_image_outside_0_1_is_refused_in_one_line(tmp_path, cli):
    folder = tmp_path / "float"
    folder.mkdir()
    Image.fromarray(np.full((112, 112), 200.0, dtype=np.float32)).save(folder / "bright.tif")
    result = cli("stimuli", "import", str(folder), "--out", str(tmp_path / "set"))
    line = one_line_error(result, "bright.tif: a floating-point image with values from 200 to 200")
    assert "0..1" in line and not (tmp_path / "set").exists()


@pytest.mark.parametrize("side", [9000, 20000])  # above CompactRig's limit only, and above Pillow's own too
def test_a_decompression_bomb_is_refused_in_one_line(tmp_path, cli, side):
    folder = tmp_path / "bomb"
    folder.mkdir()
    (folder / "huge.png").write_bytes(bomb_png(side, side))
    assert (folder / "huge.png").stat().st_size < 200_000
    result = cli("predict", "--images", str(folder), "--out", str(tmp_path / "o.npy"))
    one_line_error(result, "huge.png")
    assert "decompression bomb" in result.stderr and not (tmp_path / "o.npy").exists()


def imported_set(cli, tmp_path: Path) -> Path:
    """A stimulus set made by ``stimuli import`` of two natural images (ids grating, dots)."""
    folder = tmp_path / "natural"
    folder.mkdir()
    Image.fromarray(grating(0)).save(folder / "grating.png")
    Image.fromarray(dot_lattice()).save(folder / "dots.png")
    result = cli("stimuli", "import", str(folder), "--out", str(tmp_path / "set"))
    assert result.returncode == 0, result.stderr
    return tmp_path / "set"


def test_a_stimulus_sets_sixteen_bit_png_is_scaled_like_any_image(tmp_path, cli):
    """A set's PNG re-saved at 16 bits (by an image editor) is read by the one decoder: divided by 257, rounded,
    grey copied to R, G and B, exactly what importing that file gives (not refused, not read as white)."""
    stimuli = imported_set(cli, tmp_path)
    deep = np.random.default_rng(5).integers(0, 65536, (112, 112), dtype=np.uint16)
    deep[0, :4] = [0, 257, 65535, 32896]
    Image.fromarray(deep).save(stimuli / "dots.png")
    assert Image.open(stimuli / "dots.png").mode == "I;16"
    extra = tmp_path / "extra"
    extra.mkdir()
    Image.fromarray(colour_blob((1, -1, 0))).save(extra / "blob.png")
    added = cli("stimuli", "import", str(extra), "--out", str(stimuli))  # loads the set, saves it again
    assert added.returncode == 0, added.stderr
    saved = np.asarray(Image.open(stimuli / "dots.png"))
    expected = (deep.astype(np.int64) + 128) // 257
    assert saved.shape == (112, 112, 3) and list(saved[0, :4, 0]) == [0, 1, 255, 128]
    for channel in range(3):
        np.testing.assert_array_equal(saved[..., channel], expected)
    alone = tmp_path / "alone"
    alone.mkdir()
    Image.fromarray(deep).save(alone / "dots.png")
    np.testing.assert_array_equal(imported_pixels(cli, alone, tmp_path / "other")["dots"], saved)


@pytest.mark.parametrize("side", [9000, 20000])
def test_a_stimulus_sets_png_that_is_a_decompression_bomb_is_refused_in_one_line(tmp_path, cli, side):
    stimuli = imported_set(cli, tmp_path)
    (stimuli / "dots.png").write_bytes(bomb_png(side, side))
    result = cli("stimuli", "show", str(stimuli))
    line = one_line_error(result, "dots.png: unusable stimulus image")
    assert "decompression bomb" in line


def patched_zip(path: Path, name: str, data: bytes, declared: int) -> None:
    """A zip whose one member ``name`` holds ``data`` (deflated) but declares ``declared`` bytes uncompressed,
    in both its local header and the central directory (offsets from the zip format, APPNOTE 4.3.7/4.3.12)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    raw = bytearray(path.read_bytes())
    local = raw.index(b"PK\x03\x04")
    central = raw.index(b"PK\x01\x02")
    raw[local + 22:local + 26] = struct.pack("<I", declared)
    raw[central + 24:central + 28] = struct.pack("<I", declared)
    path.write_bytes(bytes(raw))


def png_bytes(pixels: np.ndarray) -> bytes:
    encoded = io.BytesIO()
    Image.fromarray(pixels).save(encoded, format="PNG")
    return encoded.getvalue()


def test_an_archive_member_declaring_gigabytes_is_refused_before_it_is_read(tmp_path, cli):
    huge = tmp_path / "huge.zip"
    patched_zip(huge, "image0001.png", png_bytes(grating(0)), 3_000_000_000)
    assert huge.stat().st_size < 10_000
    result = cli("predict", "--images", str(huge), "--out", str(tmp_path / "o.npy"))
    one_line_error(result, "image0001.png: declares 3,000,000,000 bytes")
    assert not (tmp_path / "o.npy").exists()


def test_an_archive_member_longer_than_it_declares_is_refused_in_one_line(tmp_path, cli):
    lying = tmp_path / "lying.zip"
    patched_zip(lying, "image0001.png", png_bytes(grating(0)), 100)
    result = cli("predict", "--images", str(lying), "--out", str(tmp_path / "o.npy"))
    one_line_error(result, "image0001.png: cannot be read from its archive")


def small_bank(shared_data, folder: Path, neurons: list[str]) -> Path:
    source = shared_data / "data_compact_models"
    for sub, suffix in (("models_torch", ".pt"), ("nums_filters", ".npy")):
        (folder / sub).mkdir(parents=True)
        for neuron_id in neurons:
            session, index = neuron_id.split(":")
            name = f"compact_model_{session}_neuron{index}{suffix}"
            shutil.copy(source / sub / name, folder / sub / name)
    return folder


@pytest.fixture()
def three_images(tmp_path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for name, pixels in {"a": grating(0), "b": dot_lattice(), "c": colour_blob((1, -1, 0))}.items():
        Image.fromarray(pixels).save(folder / f"{name}.png")
    return folder


def break_a_weight(model_file: Path, value: float) -> str:
    """Write ``value`` into the first weight of the first floating-point tensor of a model file; its name."""
    state = torch.load(model_file, weights_only=True)
    key = min(k for k, v in state.items() if v.is_floating_point())
    state[key].view(-1)[0] = value
    torch.save(state, model_file)
    return key


def test_a_model_with_a_nan_weight_is_refused_naming_the_file(shared_data, tmp_path, three_images, cli):
    bank = small_bank(shared_data, tmp_path / "bank", ["190923:3", "201025:7"])
    key = break_a_weight(bank / "models_torch" / "compact_model_201025_neuron7.pt", float("nan"))
    result = cli("predict", "--bank", str(bank), "--images", str(three_images), "--out", str(tmp_path / "o.npy"))
    line = one_line_error(result, "compact_model_201025_neuron7.pt")
    assert "NaN or infinite" in line and key in line and not (tmp_path / "o.npy").exists()


def test_synth_names_a_broken_model_recorded_with_its_target_in_one_line(shared_data, tmp_path):
    """``synth`` folds the models of the neurons recorded with its target on a thread of its own while it
    synthesizes; a broken one is still one line naming its file (no traceback from that thread: the
    installed script, since only a process of its own shows what such a thread prints), and no set."""
    bank = small_bank(shared_data, tmp_path / "bank", ["201025:3", "201025:7"])
    break_a_weight(bank / "models_torch" / "compact_model_201025_neuron7.pt", float("inf"))
    out = tmp_path / "set"
    result = run_cli("synth", "max", "--bank", str(bank), "--neuron", "201025:3", "--steps", "2", "--out", str(out))
    line = one_line_error(result, "compact_model_201025_neuron7.pt")
    assert "NaN or infinite" in line and not (out / "manifest.json").exists()


def test_the_folded_model_cache_never_serves_non_finite_weights(shared_data, tmp_path, three_images, cli):
    """A cache holding NaN (a damaged file, or one folded from a broken model by an older version) costs time,
    never numbers: the models are read from their files again."""
    from compactrig.engine.models.bank import load_directory
    from compactrig.engine.models.bank_cache import cache_dir

    from support.independent_model import evaluate
    neurons = ["190923:3", "211022:1"]
    folder = small_bank(shared_data, tmp_path / "bank", neurons)
    first = cli("predict", "--bank", str(folder), "--images", str(three_images), "--out", str(tmp_path / "1.npy"))
    assert first.returncode == 0, first.stderr
    bank = load_directory(folder)
    kept = cache_dir() / f"{bank.identity()['sha256']}.folded.npz"
    with np.load(kept) as archive:
        values, index = archive["values"], archive["index"]
    np.savez(kept, values=np.full_like(values, np.nan), index=index)  # the cache's documented layout
    again = cli("predict", "--bank", str(folder), "--images", str(three_images), "--out", str(tmp_path / "2.npy"))
    assert again.returncode == 0, again.stderr
    predicted = np.load(tmp_path / "2.npy")
    pixels = np.stack([np.asarray(Image.open(p)) for p in sorted(three_images.glob("*.png"))])
    for row, neuron_id in enumerate(neurons):
        expected = evaluate(bank.state_dict(neuron_id), pixels)
        assert np.isfinite(predicted[row]).all(), neuron_id
        assert np.abs(predicted[row] - expected).max() <= 1e-4 * np.abs(expected).max(), neuron_id


@pytest.mark.parametrize("section, line, key", [
    ("screen", "distance_cm = inf", "screen.distance_cm = inf"),
    ("screen", "width_cm = inf", "screen.width_cm = inf"),
    ("screen", "resolution = [1000000, 720]", "screen.resolution"),
    ("image", "position_deg = [nan, 0.0]", "image.position_deg = [nan, 0.0]"),
    ("fixation", "size_deg = inf", "fixation.size_deg = inf"),
    ("fixation", "colour = [true, 0, 0]", "fixation.colour = [True, 0, 0]"),
    ("timing", "on_ms = inf", "timing.on_ms = inf"),
    ("timing", "inter_trial_s = inf", "timing.inter_trial_s = inf"),
    ("timing", "frames_on = true", "timing.frames_on = True"),
    ("timing", "images_per_trial = 1000000000", "timing.images_per_trial = 1000000000"),
])
def test_rig_values_that_are_not_finite_or_not_physical_are_refused_one_line_each(tmp_path, cli, section, line, key):
    rig = tmp_path / "rig.toml"
    rig.write_text(f"[{section}]\n{line}\n")
    result = cli("rig", "check", str(rig))
    one_line_error(result, f"{rig}: {key}")


def test_every_bad_rig_value_is_its_own_line(tmp_path, cli):
    rig = tmp_path / "rig.toml"
    rig.write_text("[screen]\ndistance_cm = nan\nwidth_cm = inf\nrefresh_hz = inf\n"
                   "[timing]\nframes_off = -1\ninter_trial_s = -0.5\n")
    result = cli("rig", "check", str(rig))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = error_lines(result)
    assert len(lines) == 5, result.stderr
    for fragment in ("screen.distance_cm = nan", "screen.width_cm = inf", "screen.refresh_hz = inf",
                     "timing.frames_off = -1", "timing.inter_trial_s = -0.5"):
        assert sum(fragment in line for line in lines) == 1, fragment


@pytest.mark.parametrize("source, line, fragment", [
    ("simulated", "unknown = 1000000000", "option unknown = 1000000000: give from 0 to 2048"),
    ("simulated", 'gain = "nan"', "option gain = nan: give from -1000 to 1000"),
    ("simulated", 'baseline = "0.5,inf,2"', "option baseline = inf: give from 0 to 1000"),
    ("simulated", "timeout_s = -1", "option timeout_s = -1.0: give from 0.01 to 600"),
    ("simulated", "window_end_s = inf", "option window_end_s = inf: give from 0 to 5"),
    ("openephys", "data_port = 70000", "option data_port = 70000: give from 1 to 65534"),
    ("openephys", "sample_rate = 0", "option sample_rate = 0.0: give from 1 to 1e+06"),
    ("openephys", "heartbeat_s = 0", "option heartbeat_s = 0.0: give from 0.1 to 60"),
    ("lsl", "match_tolerance_s = nan", "option match_tolerance_s = nan: give from 1e-06 to 10"),
])
def test_source_options_out_of_range_fail_rig_check_in_one_line(tmp_path, cli, source, line, fragment):
    """A source option no source can work with (a billion simulated units filled the memory until the system killed
    the command; a NaN gain made every presentation go missing; port 70000 was dialled all session) is refused by
    ``rig check`` and by ``session run`` before anything is shown, naming the source and the option."""
    rig = tmp_path / "rig.toml"
    rig.write_text(f'[source]\nname = "{source}"\n[source.options]\n{line}\n')
    one_line_error(cli("rig", "check", str(rig)), f"source {source!r}: {fragment}")
    one_line_error(cli("session", "run", "--stimuli", str(tmp_path / "none"), "--rig", str(rig),
                       "--out", str(tmp_path / "session")), f"source {source!r}: {fragment}")
    assert not (tmp_path / "session").exists()


def test_a_replayed_recording_of_text_fails_rig_check_in_one_line(tmp_path, cli):
    """It passed the check, then every presentation of the session went missing."""
    np.save(tmp_path / "words.npy", np.array([[["3", "4"]]]))
    rig = tmp_path / "rig.toml"
    rig.write_text(f'[source]\nname = "replay"\n[source.options]\nresponses = "{tmp_path / "words.npy"}"\n')
    one_line_error(cli("rig", "check", str(rig)), "holds <U1 values, not spike counts")


def test_a_folder_given_as_the_rig_file_is_one_line(tmp_path, cli):
    one_line_error(cli("rig", "check", str(tmp_path)), f"{tmp_path} is a folder, not a rig file")


def test_two_outputs_of_one_command_on_one_file_are_refused_before_any_work(tmp_path, three_images, cli):
    """``--out`` and ``--csv`` on one file (the CSV replaced the array without a word), and a ``present --log``
    among the frames ``--capture`` writes (the log replaced a frame)."""
    out = tmp_path / "x.npy"
    one_line_error(cli("predict", "--images", str(three_images), "--out", str(out), "--csv", str(out)),
                   f"--out and --csv are both {out}; give two files")
    one_line_error(cli("predict", "--images", str(three_images), "--out", str(tmp_path / "p.zarr"),
                       "--csv", str(tmp_path / "p.zarr" / "p.csv")), "is inside --out")
    cli("stimuli", "import", str(three_images), "--out", str(tmp_path / "set"))
    one_line_error(cli("present", "--stimuli", str(tmp_path / "set"), "--log", str(tmp_path / "cap" / "00000.png"),
                       "--capture", str(tmp_path / "cap")), "is inside --capture")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "set"], "nothing was written"


@pytest.mark.parametrize("flag, value, fragment", [
    ("--neurons", "", "--neurons '' names nothing"),
    ("--neurons", " , ", "--neurons ' , ' names nothing"),
    ("--neurons", "demo:0,demo:1,demo:0", "names demo:0 twice"),
])
def test_a_neuron_list_naming_nothing_or_a_neuron_twice_is_refused(tmp_path, three_images, cli, flag, value,
                                                                   fragment):
    """It wrote an array of no rows, or the same neuron's row twice."""
    one_line_error(cli("predict", "--images", str(three_images), "--out", str(tmp_path / "o.npy"), flag, value),
                   fragment)
    assert not (tmp_path / "o.npy").exists()


def test_a_scheduler_file_that_is_not_there_is_one_line(tmp_path, three_images, cli):
    one_line_error(cli("predict", "--images", str(three_images), "--out", str(tmp_path / "o.npy"),
                       "--cluster", str(tmp_path / "scheduler.json")), "no such scheduler file")
    one_line_error(cli("predict", "--images", str(three_images), "--out", str(tmp_path / "o.npy"),
                       "--cluster", "scheduler"), "--cluster scheduler: not a scheduler address")


@pytest.mark.parametrize("args, option", [
    (["predict", "--images", "{images}", "--out", "{tmp}/o.npy", "--chunk", "-1"], "--chunk"),
    (["predict", "--images", "{images}", "--out", "{tmp}/o.npy", "--chunk", "0"], "--chunk"),
    (["screen", "--images", "{images}", "--top", "-1", "--out", "{tmp}/s"], "--top"),
    (["synth", "max", "--neuron", "demo:0", "--n", "0", "--out", "{tmp}/s"], "--n"),
    (["synth", "max", "--neuron", "demo:0", "--n", "100000000", "--out", "{tmp}/s"], "--n"),
    (["synth", "max", "--neuron", "demo:0", "--steps", "-5", "--out", "{tmp}/s"], "--steps"),
    (["synth", "max", "--neuron", "demo:0", "--step-size", "nan", "--out", "{tmp}/s"], "--step-size"),
    (["synth", "max", "--neuron", "demo:0", "--seed", "-1", "--out", "{tmp}/s"], "--seed"),
    (["synth", "adversarial", "--neuron", "demo:0", "--images", "{images}", "--direction", "up", "--eps", "inf",
      "--out", "{tmp}/s"], "--eps"),
    (["gaudy", "--images", "{images}", "--sigma", "-1", "--out", "{tmp}/s"], "--sigma"),
    (["gaudy", "--images", "{images}", "--sigma", "nan", "--out", "{tmp}/s"], "--sigma"),
    (["neurons", "fit", "--images", "{images}", "--responses", "{tmp}/r.npy", "--session", "x",
      "--out", "{tmp}/n", "--epochs", "0"], "--epochs"),
    (["session", "run", "--stimuli", "{tmp}/s", "--repeats", "0", "--out", "{tmp}/session"], "--repeats"),
    (["present", "--stimuli", "{tmp}/s", "--repeats", "-2"], "--repeats"),
    (["present", "--stimuli", "{tmp}/s", "--shuffle", "--seed", "-1"], "--seed"),
    (["session", "run", "--stimuli", "{tmp}/s", "--max-missing", "0", "--out", "{tmp}/session"], "--max-missing"),
    (["session", "run", "--stimuli", "{tmp}/s", "--max-dropped-frames", "-1", "--out", "{tmp}/session"],
     "--max-dropped-frames"),
])
def test_command_line_numbers_out_of_range_are_a_usage_error_before_any_work(tmp_path, three_images, cli, args,
                                                                                option):
    result = cli(*[a.format(tmp=tmp_path, images=three_images) for a in args])
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert f"error: argument {option}: " in last and "out of range" in last, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"], "nothing was written"


def test_an_unknown_device_is_refused_in_one_line(tmp_path, three_images, cli):
    result = cli("predict", "--images", str(three_images), "--out", str(tmp_path / "o.npy"), "--device", "gpu")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "argument --device: 'gpu' is not a device" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "o.npy").exists()


def test_resume_refuses_another_collection_whose_file_names_match(tmp_path, cli):
    first, other = tmp_path / "monday", tmp_path / "tuesday"
    for folder, images in ((first, [grating(0), grating(90)]), (other, [dot_lattice(), colour_blob((1, -1, 0))])):
        folder.mkdir()
        for k, pixels in enumerate(images):
            Image.fromarray(pixels).save(folder / f"image{k + 1:04d}.png")
    out = tmp_path / "p.zarr"
    made = cli("predict", "--images", str(first), "--out", str(out), "--chunk", "1")
    assert made.returncode == 0, made.stderr
    mixed = cli("predict", "--images", str(other), "--out", str(out), "--resume")
    one_line_error(mixed, "another collection")
    again = cli("predict", "--images", str(first), "--out", str(out), "--resume")
    assert again.returncode == 0 and "0 of 2 chunks computed now" in again.stdout, again.stderr
    Image.fromarray(np.zeros((300, 300, 3), dtype=np.uint8)).save(first / "image0002.png")  # same name, new file
    changed = cli("predict", "--images", str(first), "--out", str(out), "--resume")
    one_line_error(changed, "another collection")


def test_responses_saved_as_text_are_refused_in_one_line(tmp_path, three_images):
    """Responses saved as text (numpy met them deep inside the fit, a traceback) are named in one line."""
    np.save(tmp_path / "responses.npy", np.array([["12.5", "n/a", "3"]]))
    result = run_cli("neurons", "fit", "--images", str(three_images), "--responses", str(tmp_path / "responses.npy"),
                     "--session", "x", "--out", str(tmp_path / "new"))
    one_line_error(result, "responses are <U4 values, not numbers")
    assert not list(Path(os.environ["COMPACTRIG_LOG_DIR"]).glob("crash-*.log"))


def explode(*args, **kwargs):
    """Stands in for a fault CompactRig has no answer for (every genuine one found is fixed and tested as such):
    what is tested is the handler's promise, one line and the traceback in a log file."""
    raise RuntimeError("an internal fault")


def test_an_unexpected_error_is_one_line_and_a_log_file_holding_the_traceback(tmp_path, monkeypatch, capsys):
    from compactrig.cli import main
    from compactrig.cli.commands import demo
    monkeypatch.setattr(demo, "standard_probes", explode)
    assert main(["demo"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("compactrig: error: compactrig demo failed unexpectedly (RuntimeError"), lines
    logs = list(Path(os.environ["COMPACTRIG_LOG_DIR"]).glob("crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in lines[0]
    text = logs[0].read_text()
    assert "Traceback (most recent call last)" in text and "an internal fault" in text and "explode" in text


def test_a_window_job_that_fails_unexpectedly_shows_one_line_and_logs_the_traceback(qtbot, window, tmp_path):
    """A job of the window that meets a fault: the window stays up, its status bar shows one line naming the log,
    and the log holds the traceback."""
    from compactrig.gui.worker import Job
    job = Job(lambda progress, cancelled: explode())
    job.label = "Reading the responses"
    job.failed.connect(window.show_message)
    with qtbot.waitSignal(job.failed, timeout=20000) as said:
        job.start(window)
    # the thread ends when the window's event loop serves its queued quit: wait serving events (a bare
    # QThread.wait() here hung CI at stop 48, the quit still queued behind the signal just taken)
    qtbot.waitUntil(job.worker_thread.isFinished, timeout=20000)
    line = said.args[0]
    assert len(line.splitlines()) == 1 and line.startswith("Reading the responses failed unexpectedly (RuntimeError")
    assert window.statusBar().currentMessage() == line and window.isVisible()
    logs = list(Path(os.environ["COMPACTRIG_LOG_DIR"]).glob("crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in line
    assert "Traceback (most recent call last)" in logs[0].read_text()


def test_a_window_action_that_fails_unexpectedly_shows_one_line_and_logs_the_traceback(qtbot, window, tmp_path,
                                                                                      monkeypatch):
    """The Stimulus set view's Open meets a fault while it fills the table: the slot fails on the GUI thread. With
    the hook ``compactrig`` installs (``run_app``), the window stays up, its status bar shows one line naming the
    log, the log holds the traceback, and the next Open works."""
    from PyQt6.QtWidgets import QFileDialog

    from compactrig.gui.app import report_errors_in
    from compactrig.gui.stimulus_set_tab import StimulusSetTab
    from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

    from support.user_input import click, open_tab
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # put back after the test
    report_errors_in(window)
    folder = tmp_path / "set"
    StimulusSet([StimulusRecord(image_id="dots", kind="max", target_neuron="demo:2", predicted={"demo:2": 1.5})],
                dot_lattice()[None]).save(folder)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *args, **kwargs: str(folder)))
    tab = window.stimuli
    open_tab(qtbot, window.tabs, tab)
    fill = StimulusSetTab._fill
    monkeypatch.setattr(StimulusSetTab, "_fill", explode)
    click(qtbot, tab.open_button)
    qtbot.waitUntil(lambda: "failed unexpectedly" in window.statusBar().currentMessage(), timeout=10000)
    line = window.statusBar().currentMessage()
    assert len(line.splitlines()) == 1 and line.startswith("the window's last action failed unexpectedly "
                                                           "(RuntimeError")
    logs = list(Path(os.environ["COMPACTRIG_LOG_DIR"]).glob("crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in line
    text = logs[0].read_text()
    assert "Traceback (most recent call last)" in text and "stimulus_set_tab.py" in text and "explode" in text
    assert window.isVisible()
    monkeypatch.setattr(StimulusSetTab, "_fill", fill)
    with qtbot.waitSignal(tab.saved, timeout=10000):
        click(qtbot, tab.open_button)
    assert tab.table.rowCount() == 1 and tab.table.item(0, 6).text() == "1.500"


def test_a_manifest_value_of_the_wrong_kind_is_refused_in_one_line(tmp_path, cli):
    """A manifest edited by hand (text where the predicted responses belong, a seed that is not a whole number, an
    entry that is not a table): the set is refused naming the manifest and the entry, not met as a traceback."""
    from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet
    folder = tmp_path / "set"
    StimulusSet([StimulusRecord(image_id="dots", kind="max", target_neuron="demo:2", seed=3,
                                predicted={"demo:2": 1.5})], dot_lattice()[None]).save(folder)
    good = json.loads((folder / "manifest.json").read_text())
    for change, fragment in ((lambda entry: entry.update(predicted="high"), "'predicted' must map neuron ids"),
                             (lambda entry: entry["predicted"].update({"demo:2": float("nan")}), "finite numbers"),
                             (lambda entry: entry.update(seed=2.5), "'seed' is 2.5"),
                             (lambda entry: entry.update(target_neuron=7), "'target_neuron' is 7"),
                             (lambda entry: entry.update(kind="bogus"), "kind is 'bogus', not one of natural, max")):
        manifest = json.loads(json.dumps(good))
        change(manifest["images"][0])
        (folder / "manifest.json").write_text(json.dumps(manifest))
        one_line_error(cli("stimuli", "show", str(folder)), fragment)
    (folder / "manifest.json").write_text(json.dumps({**good, "format_version": 99}))
    one_line_error(cli("stimuli", "show", str(folder)), "format_version is 99; this CompactRig reads 1 to 1")
    (folder / "manifest.json").write_text(json.dumps({**good, "images": ["dots.png"]}))
    one_line_error(cli("stimuli", "show", str(folder)), "image 0 is str, not a table")
    (folder / "manifest.json").write_text(json.dumps(good))
    assert cli("stimuli", "show", str(folder)).returncode == 0
