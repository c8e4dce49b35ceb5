"""Benchmark: what ``compactrig synth`` costs besides synthesis, on the published bank, and where it goes.

Runs the command itself (16 images, 1 step, so synthesis is a fraction of a second) with an empty
cache folder and again with the cache it left, then times its parts in this process: starting Python
and importing PyTorch, the command's other imports, folding the 219 models (read from the model files,
then from the folded-model cache) and predicting all 219 neurons on the 16 images for the manifest,
beside the arithmetic that prediction needs (stage 0 alone is most of it).

    python benchmarks/synth_fixed_cost.py [--data DIR] [--n 16]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from compactrig.engine.models.bank import load_directory
from compactrig.engine.models.fast_predict import Predictor
from compactrig.engine.models.layout import IMAGE_SIZE, forward_flops

REPEATS = 3
"""Each time is the least of this many (this machine's timing varies by tens of percent)."""
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "v4_compact_models"


def seconds(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def wall(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("COMPACTRIG_SHARED_DATA", DEFAULT_DATA)))
    parser.add_argument("--n", type=int, default=16)
    args = parser.parse_args()
    bank_dir = args.data / "data_compact_models"
    script = Path(sys.executable).with_name("compactrig")
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "COMPACTRIG_CACHE_DIR": str(Path(scratch) / "cache")}
        synth = [str(script), "synth", "max", "--bank", str(bank_dir), "--neuron", "201025:2",
                 "--n", str(args.n), "--steps", "1"]
        cold = wall([*synth, "--out", str(Path(scratch) / "a")], env)
        warm = min(wall([*synth, "--out", str(Path(scratch) / f"b{k}")], env) for k in range(REPEATS))
        imports = min(wall([sys.executable, "-c", "import compactrig.cli.commands.synth"], env) for _ in range(REPEATS))
        python_torch = min(wall([sys.executable, "-c", "import torch"], env) for _ in range(REPEATS))
        os.environ["COMPACTRIG_CACHE_DIR"] = env["COMPACTRIG_CACHE_DIR"]

        bank = load_directory(bank_dir)
        fold_warm = min(seconds(lambda: Predictor(bank).fold(bank.neuron_ids)) for _ in range(REPEATS))
        predictor = Predictor(bank)
        images = np.random.default_rng(0).integers(0, 256, (args.n, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
        predictor.predict(images[:1])  # folding and the convolutions' first-call set-up, not the work itself
        predict = min(seconds(lambda: predictor.predict(images)) for _ in range(REPEATS))
    gflop = sum(forward_flops(bank.info(n).filters) for n in bank.neuron_ids) * args.n / 1e9
    print(f"synth max, published bank, {args.n} images x 1 step (wall, includes starting Python):")
    print(f"  first run (empty cache):        {cold:6.2f} s")
    print(f"  next runs (cache kept):         {warm:6.2f} s (least of {REPEATS}, as every time below)")
    print("where the next run's time goes:")
    print(f"  Python + the command's imports: {imports:6.2f} s (Python + torch alone: {python_torch:.2f} s)")
    print(f"  219 folded models from cache:   {fold_warm:6.2f} s")
    print(f"  219 predictions x {args.n} images:   {predict:6.2f} s "
          f"({gflop:.0f} GFLOP, {gflop / predict:.0f} GFLOP/s)")


if __name__ == "__main__":
    main()
