"""Screening large collections: predictions streamed in chunks to a Zarr store that survives SIGKILL,
the same work on a 2-worker Dask cluster that loses a worker, memory that does not grow with the
collection, and ``screen``'s choice checked against an independent evaluation."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import tracemalloc
from pathlib import Path

import numpy as np
import psutil
import pytest
import zarr
from PIL import Image

from compactrig.cli import main
from compactrig.engine.compute.streaming import stream_here
from compactrig.engine.files.image_files import list_images
from compactrig.engine.files.prediction_store import Layout, read_predictions
from compactrig.engine.models.bank import load_bank, load_directory
from compactrig.engine.models.fast_predict import CPU_IMAGE_CHUNK, Predictor, gpu_batch, image_chunk_for
from compactrig.stimuli.screening import safe_image_id
from compactrig.stimuli.stimulus_set import StimulusSet
from compactrig.stimuli.textures import pink_noise_images

from support.commands import compactrig_command, run_cli
from support.dask_workers import dask_workers, wait_until
from support.independent_model import evaluate

NEURONS = "201025:5,190923:0"


def tar_shards(folder: Path, pixels: np.ndarray, per_shard: int) -> Path:
    """WebDataset-style shards of PNGs named ``imgNNNNN.png``."""
    folder.mkdir()
    for first in range(0, len(pixels), per_shard):
        with tarfile.open(folder / f"shard-{first // per_shard:06d}.tar", "w") as shard:
            for k in range(first, min(first + per_shard, len(pixels))):
                data = io.BytesIO()
                Image.fromarray(pixels[k]).save(data, format="PNG")
                member = tarfile.TarInfo(f"img{k:05d}.png")
                member.size = data.tell()
                data.seek(0)
                shard.addfile(member, data)
    return folder


def done_units(store: Path) -> int:
    try:
        return int(zarr.open_group(str(store), mode="r")["done"][:].sum())
    except Exception:  # noqa: BLE001 - not created yet
        return 0


CHECKED = slice(None, None, 16)
"""Images whose predictions are also computed independently (float64, slow: every 16th)."""


@pytest.fixture(scope="module")
def collection(tmp_path_factory, shared_data):
    """320 textures in 3 tar shards; the published models' predictions by an uninterrupted single-machine run,
    and for every 16th image by an independent float64 evaluation."""
    folder = tmp_path_factory.mktemp("collection")
    pixels = pink_noise_images(320, seed=11, contrast=60.0)
    shards = tar_shards(folder / "shards", pixels, 128)
    bank = load_directory(shared_data / "data_compact_models")
    reference = np.stack([evaluate(bank.state_dict(n), pixels[CHECKED]) for n in NEURONS.split(",")])
    assert main(["predict", "--bank", str(shared_data / "data_compact_models"), "--neurons", NEURONS, "--images",
                 str(shards), "--out", str(folder / "whole.npy")]) == 0
    return shards, np.load(folder / "whole.npy"), reference


def test_a_run_killed_with_sigkill_then_resumed_gives_the_numbers_of_an_uninterrupted_run(collection, tmp_path,
                                                                                          shared_data, cli):
    shards, uninterrupted, reference = collection
    bank = str(shared_data / "data_compact_models")
    common = ["predict", "--bank", bank, "--neurons", NEURONS, "--images", str(shards), "--chunk", "16"]
    store = tmp_path / "run.zarr"
    first = subprocess.Popen(compactrig_command(*common, "--out", str(store)), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    wait_until(first, lambda: done_units(store) >= 3, "three chunks were written")
    first.kill()  # SIGKILL (TerminateProcess on Windows)
    first.wait()
    interrupted = done_units(store)
    assert 3 <= interrupted < 20, "killed mid-run"

    resumed = run_cli(*common, "--out", str(store), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"{20 - interrupted} of 20 chunks computed now" in resumed.stdout
    values, neurons, images, attributes = read_predictions(store)
    assert np.array_equal(values, uninterrupted), "resumed == never interrupted (in one chunk), bit for bit"
    np.testing.assert_allclose(values[:, CHECKED], reference, rtol=2e-4, atol=2e-4 * np.abs(reference).max())
    assert neurons == NEURONS.split(",") and images == [f"img{k:05d}" for k in range(320)]
    assert attributes["bank"]["sha256"] == load_directory(bank).identity()["sha256"]

    other = cli(*common[:4], "201025:5", *common[5:], "--out", str(store), "--resume")
    assert other.returncode == 2 and "holds other neurons (2); resume with the same --neurons" in other.stderr


@pytest.mark.slow
def test_a_two_worker_local_cluster_that_loses_a_worker_to_sigkill_gives_identical_output(collection, tmp_path,
                                                                                         shared_data):
    """Dask's LocalCluster runs two worker processes (children of the command); one is killed mid-run, the
    scheduler reruns its tasks on a fresh worker, and every unit is written exactly once."""
    shards, single, reference = collection
    common = ["predict", "--bank", str(shared_data / "data_compact_models"), "--neurons", NEURONS,
              "--images", str(shards), "--chunk", "16"]
    store = tmp_path / "cluster.zarr"
    run = subprocess.Popen(compactrig_command(*common, "--out", str(store), "--cluster", "local:2"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def workers() -> list[psutil.Process]:
        return dask_workers(run)

    wait_until(run, lambda: done_units(store) >= 4 and len(workers()) == 2, "the workers were busy")
    victim = workers()[0]
    victim.kill()  # SIGKILL (TerminateProcess on Windows)
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    assert not victim.is_running() or victim.status() == psutil.STATUS_ZOMBIE
    values = read_predictions(store)[0]
    assert done_units(store) == 20 and not np.isnan(values).any()
    assert np.array_equal(values, single), "cluster == one machine, bit for bit"
    np.testing.assert_allclose(values[:, CHECKED], reference, rtol=2e-4, atol=2e-4 * np.abs(reference).max())


def test_memory_does_not_grow_with_the_number_of_images(tmp_path):
    """Eight times the images, the same peak of traced allocations (numpy's included) while streaming:
    one chunk of 64 images is 2.4 MB, and decoding all 1,024 would be 38 MB. (``benchmarks/screen.py``
    measures the whole process: 36,000 images x 2 published neurons.)"""
    pixels = pink_noise_images(64, seed=2)
    predictor = Predictor(load_bank("demo"))
    peaks = []
    for copies in (2, 16):
        listing = list_images(tar_shards(tmp_path / f"x{copies}", np.concatenate([pixels] * copies), 256))
        layout = Layout(1, len(listing), image_chunk=64)
        tracemalloc.start()
        stream_here(predictor, listing, ["demo:1"], layout, layout.units(), lambda unit, values: None)
        peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
        tracemalloc.stop()
    assert peaks[1] < 20 and abs(peaks[1] - peaks[0]) < 1, peaks


def test_screen_keeps_each_neurons_most_and_least_driving_images_as_stimulus_sets(tmp_path):
    """Ranks checked against an independent float64 evaluation of the demo models; each set's PNGs are the
    collection's images and name their source."""
    pixels = pink_noise_images(120, seed=5, contrast=60.0)
    folder = tmp_path / "collection"
    folder.mkdir()
    for k, image in enumerate(pixels):
        Image.fromarray(image).save(folder / f"photo {k:03d}.png")
    assert main(["screen", "--images", str(folder), "--neurons", "demo:0,demo:2", "--top", "4", "--chunk", "48",
                 "--out", str(tmp_path / "screened")]) == 0
    bank = load_bank("demo")
    for neuron in ("demo:0", "demo:2"):
        truth = evaluate(bank.state_dict(neuron), pixels)
        chosen = StimulusSet.load(tmp_path / "screened" / neuron.replace(":", "_"))
        most = [r for r in chosen.records if r.method["screen"] == "most"]
        least = [r for r in chosen.records if r.method["screen"] == "least"]
        assert [r.method["collection_index"] for r in most] == list(np.argsort(-truth, kind="stable")[:4])
        assert [r.method["collection_index"] for r in least] == list(np.argsort(truth, kind="stable")[:4])
        assert [r.method["rank"] for r in most] == [1, 2, 3, 4]
        for record, image in zip(chosen.records, chosen.pixels):
            index = record.method["collection_index"]
            assert record.image_id == f"photo_{index:03d}" and record.target_neuron == neuron
            assert record.source_image == str(folder / f"photo {index:03d}.png")
            assert (image == pixels[index]).all()
            assert record.method["predicted"] == pytest.approx(truth[index], rel=1e-4, abs=1e-4)
            assert record.predicted[neuron] == pytest.approx(truth[index], rel=1e-4, abs=1e-4)
    assert [safe_image_id(i) for i in ("CON", "nul.backup", ".hidden", "a b")] == \
        ["imgCON", "imgnul.backup", "img.hidden", "a_b"], "ids stay file names on every system"
    summary = json.loads((tmp_path / "screened" / "screen.json").read_text())
    assert summary["screened_images"] == 120 and summary["neurons"] == {"demo:0": "demo_0", "demo:2": "demo_2"}


def test_gpu_batches_fill_half_the_free_memory_and_a_cpu_keeps_its_fixed_chunk():
    """The widest published stage (77 filters) at 112x112 in float32, three maps per image."""
    per_image = 4 * 112 * 112 * (3 + 3 * 80)
    assert gpu_batch(80 * 2**30, 80) == min(int(0.5 * 80 * 2**30 // per_image), 65536)
    assert gpu_batch(2**20, 80) == 64, "a nearly full GPU still makes progress"
    assert image_chunk_for("cpu") == CPU_IMAGE_CHUNK
