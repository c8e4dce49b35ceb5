"""Benchmark: batched synthesis (``compactrig.stimuli.synthesis``) versus the straightforward port, in one run.

Both make maximizing images for the same neuron and seeds by the same method (16 images
of 100 steps by default). Prints both times, the ratio (goal: at least 2x), the
fraction of the machine's single-precision arithmetic limit that ours reaches, and how
close the two methods' final responses are.

    python benchmarks/synth.py [--neuron 201025:2] [--n 16] [--steps 100] [--peak-gflops 180]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from compactrig.engine.models.bank import load_bank
from compactrig.engine.models.fast_predict import FoldedModel
from compactrig.engine.models.layout import forward_flops
from compactrig.stimuli.synthesis import SynthesisSettings, synthesize

sys.path.insert(0, str(Path(__file__).resolve().parent))
from straightforward_synthesis import synthesize_one  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "v4_compact_models"


def step_flops(filters: tuple[int, ...]) -> float:
    """One forward pass and the input gradient (about the same work again)."""
    return 2 * forward_flops(filters)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("COMPACTRIG_SHARED_DATA", DEFAULT_DATA)))
    parser.add_argument("--neuron", default="201025:2")
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--peak-gflops", type=float, default=180.0,
                        help="the machine's single-precision arithmetic limit (default: 2 cores here)")
    args = parser.parse_args()

    bank = load_bank(args.data / "data_compact_models" if (args.data / "data_compact_models").is_dir() else "demo")
    neuron_id = args.neuron if args.neuron in bank.neuron_ids else bank.neuron_ids[0]
    settings = SynthesisSettings(steps=args.steps)
    seeds = list(range(args.n))
    print(f"{neuron_id}, {args.n} images x {args.steps} steps, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")

    reference = bank.model(neuron_id)
    start = time.perf_counter()
    port = [synthesize_one(reference, seed, settings) for seed in seeds]
    t_port = time.perf_counter() - start

    model = FoldedModel(bank.model(neuron_id, dtype=torch.float64))
    start = time.perf_counter()
    ours = synthesize(model, seeds, settings)
    t_ours = time.perf_counter() - start

    flops = step_flops(bank.info(neuron_id).filters) * args.n * args.steps
    port_responses = np.array([response for _, response in port])
    print(f"straightforward port (float32, one image at a time, SciPy): {t_port:7.2f} s")
    print(f"batched synthesis (ours):                                   {t_ours:7.2f} s")
    print(f"speed-up: {t_port / t_ours:.2f}x   ours reaches {flops / t_ours / 1e9:.1f} GFLOP/s = "
          f"{100 * flops / t_ours / 1e9 / args.peak_gflops:.0f}% of the {args.peak_gflops:.0f} GFLOP/s limit "
          f"(the limit alone: {flops / args.peak_gflops / 1e9:.2f} s)")
    print(f"final responses: port median {np.median(port_responses):.3f}, ours median "
          f"{np.median(ours.responses):.3f}, largest difference "
          f"{np.abs(port_responses - ours.responses).max():.3f}")


if __name__ == "__main__":
    main()
