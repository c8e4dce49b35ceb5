"""Benchmark: streaming predictions over large collections, as ``compactrig predict --out FILE.zarr`` runs them.

Builds a collection of tar shards by repeating the 1,200 natural images of session 190923 (the
pixels repeat, the files and ids do not), then runs the command as a user would, in subprocesses,
and prints:

- images per second per core (one machine, and the same per worker on a local cluster);
- peak memory (resident set, sampled every 10 ms) against the number of images: it must stay flat,
  and under 600 MB for 36,000 images x 2 neurons;
- the speed-up from 1 to 2 local Dask workers, and that their output equals the single-machine one.

    python benchmarks/screen.py                    # 3,000 / 12,000 / 36,000 images x 2 neurons (~25 min)
    python benchmarks/screen.py --sizes 2000 8000  # quicker
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

from compactrig.engine.files.image_files import read_images
from compactrig.engine.files.prediction_store import read_predictions

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "v4_compact_models"
NEURONS = "201025:5,190923:0"
PER_SHARD = 2000


def make_shards(folder: Path, pixels: np.ndarray, n_images: int) -> Path:
    """``n_images`` PNGs (the session's images over and over, each under its own id) in tar shards."""
    encoded = []
    for image in pixels:
        data = io.BytesIO()
        Image.fromarray(image).save(data, format="PNG")
        encoded.append(data.getvalue())
    folder.mkdir(parents=True)
    for first in range(0, n_images, PER_SHARD):
        with tarfile.open(folder / f"shard-{first // PER_SHARD:06d}.tar", "w") as shard:
            for k in range(first, min(first + PER_SHARD, n_images)):
                member = tarfile.TarInfo(f"img{k:07d}.png")
                member.size = len(encoded[k % len(encoded)])
                shard.addfile(member, io.BytesIO(encoded[k % len(encoded)]))
    return folder


def measured(command: list[str]) -> tuple[float, float]:
    """(seconds, peak resident MB of the command itself; local-cluster workers are not counted)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    watched, peak = psutil.Process(process.pid), 0
    while process.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.01)
    if process.wait() != 0:
        raise SystemExit(process.stderr.read())
    return time.perf_counter() - started, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("COMPACTRIG_SHARED_DATA", DEFAULT_DATA)))
    parser.add_argument("--sizes", type=int, nargs="+", default=[3000, 12000, 36000])
    parser.add_argument("--cluster-images", type=int, default=6000, help="images for the 1 vs 2 worker comparison")
    args = parser.parse_args()

    pixels = read_images(args.data / "data_V4_responses" / "images" / "images_190923.zip").pixels
    bank = str(args.data / "data_compact_models")
    command = [str(Path(sys.executable).with_name("compactrig")), "predict", "--bank", bank, "--neurons", NEURONS]
    cores = psutil.cpu_count(logical=False) or os.cpu_count()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        print(f"{'images':>8}  {'seconds':>8}  {'img/s/core':>10}  {'peak MB':>8}")
        for n in args.sizes:
            shards = make_shards(scratch / f"shards{n}", pixels, n)
            seconds, peak = measured([*command, "--images", str(shards), "--out", str(scratch / f"out{n}.zarr")])
            print(f"{n:>8}  {seconds:>8.1f}  {n / seconds / cores:>10.1f}  {peak:>8.0f}", flush=True)

        n = args.cluster_images
        shards = make_shards(scratch / "cluster", pixels, n)
        timings = {}
        for name, extra in (("1 worker", ["--cluster", "local:1"]), ("2 workers", ["--cluster", "local:2"])):
            timings[name] = measured([*command, "--images", str(shards), "--out", str(scratch / f"{name}.zarr"),
                                      *extra])[0]
        single = measured([*command, "--images", str(shards), "--out", str(scratch / "single.zarr")])[0]
        same = np.array_equal(read_predictions(scratch / "2 workers.zarr")[0],
                              read_predictions(scratch / "single.zarr")[0])
        print(f"\n{n} images: one machine {single:.1f} s; local cluster 1 worker {timings['1 worker']:.1f} s, "
              f"2 workers {timings['2 workers']:.1f} s: speed-up {timings['1 worker'] / timings['2 workers']:.2f}x; "
              f"2-worker output identical to one machine: {same}")


if __name__ == "__main__":
    main()
