"""Benchmark: ``Predictor`` versus a straightforward per-model float32 loop, in one run.

The straightforward loop is what a user would write first: for each model, the
reference ``CompactModel`` in float32 over batches of 100 images in inference mode.
Both run on the same models and images; the script checks that the outputs agree to
1e-4 relative and prints both times and the ratio (the goal: at least 5x).

    python benchmarks/predict.py                       # 48 models x 300 images (~2 min)
    python benchmarks/predict.py --models 219 --images 1200   # the full published case (~35 min)
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from compactrig.engine.files.image_files import read_images
from compactrig.engine.models.bank import load_directory
from compactrig.engine.models.fast_predict import Predictor, reference_predict

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "v4_compact_models"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("COMPACTRIG_SHARED_DATA", DEFAULT_DATA)))
    parser.add_argument("--models", type=int, default=48, help="models, spread evenly over the 219")
    parser.add_argument("--images", type=int, default=300, help="images of session 190923")
    args = parser.parse_args()

    bank = load_directory(args.data / "data_compact_models")
    picks = np.linspace(0, len(bank) - 1, min(args.models, len(bank))).round().astype(int)
    neuron_ids = [bank.neuron_ids[i] for i in sorted(set(picks))]
    images = read_images(args.data / "data_V4_responses" / "images" / "images_190923.zip").pixels[:args.images]
    for neuron_id in neuron_ids:  # file reading is not what either method is timed on
        bank.state_dict(neuron_id)
    print(f"{len(neuron_ids)} models x {len(images)} images, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")

    start = time.perf_counter()
    straightforward = reference_predict(bank, images, neuron_ids, dtype=torch.float32)
    t_straight = time.perf_counter() - start
    start = time.perf_counter()
    ours = Predictor(bank).predict(images, neuron_ids)
    t_ours = time.perf_counter() - start

    scale = np.abs(straightforward).max(axis=1)
    worst = float((np.abs(ours - straightforward).max(axis=1) / scale).max())
    per = 1e3 / (len(neuron_ids) * len(images))
    print(f"straightforward float32 loop: {t_straight:8.2f} s  ({t_straight * per:.3f} ms per image per model)")
    print(f"Predictor (ours):             {t_ours:8.2f} s  ({t_ours * per:.3f} ms per image per model)")
    print(f"speed-up: {t_straight / t_ours:.2f}x   worst relative difference: {worst:.2e} "
          f"({'ok' if worst <= 1e-4 else 'TOO LARGE'})")
    full = 219 * 1200 / 1e3
    print(f"extrapolated to 219 models x 1200 images: straightforward {t_straight * per * full:.0f} s, "
          f"ours {t_ours * per * full:.0f} s")


if __name__ == "__main__":
    main()
