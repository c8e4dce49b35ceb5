"""Benchmark: does the closed loop learn new neurons, and which images teach it fastest?

Virtual units that are *not* bank neurons (the simulated source's ``unknown`` units:
random mixtures of a few published neurons, Poisson noise) are recorded while images are
chosen from a pool of natural images (session 190923) and their gaudy versions, three
ways: random natural, gaudy first, and a committee of bootstrap readouts. After 200, 400
and 800 presentations (25 images x 2 repeats per batch) the readouts (ridge on the
bank's responses) are scored by r with each unit's *true* expected response on natural
test images (session 201025) never shown. Then images are synthesized through each
unit's final committee readout and the unit's true response to them is compared with
its best natural image in the pool. Prints a table and saves a plot.

    python benchmarks/closed_loop.py [--units 4] [--features all|SESSION] [--pool 500] [--test 200]
                                     [--synth-steps 100] [--out docs/closed_loop_benchmark.png]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from compactrig.engine.files.image_files import read_images  # noqa: E402
from compactrig.engine.models.bank import load_bank  # noqa: E402
from compactrig.engine.models.fast_predict import Predictor  # noqa: E402
from compactrig.engine.readout.features import FeatureSpec, compute_features  # noqa: E402
from compactrig.plugins.sources.base import Presentation  # noqa: E402
from compactrig.plugins.sources.simulated import SimulatedSource  # noqa: E402
from compactrig.stimuli.closed_loop import design_for_unit, synthesis_readout  # noqa: E402
from compactrig.stimuli.gaudy import gaudy  # noqa: E402
from compactrig.stimuli.loop_simulation import simulate_selection  # noqa: E402
from compactrig.stimuli.synthesis import SynthesisSettings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "v4_compact_models"
STRATEGIES = ("random", "gaudy-first", "committee")
CHECKPOINTS = [200, 400, 800]
TARGET_SD = 2.0
"""Each virtual unit's response SD over natural images, in counts (a typical V4 unit, Poisson noise on top)."""
MEAN_RATE = 6.0


class SourceResponder:
    """Presents pool images to the simulated source plugin and collects its counts."""

    def __init__(self, source: SimulatedSource, ids: list[str]) -> None:
        self.source, self.ids, self.order = source, ids, 0

    def __call__(self, indices: np.ndarray) -> np.ndarray:
        for i in indices:
            self.source.submit(Presentation(self.order, 0, self.ids[i], float(self.order)))
            self.order += 1
        responses = self.source.collect(now=float(self.order) + 10.0)
        return np.array([[r.counts[u] for u in self.source.units] for r in responses])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("COMPACTRIG_SHARED_DATA", DEFAULT_DATA)))
    parser.add_argument("--units", type=int, default=4)
    parser.add_argument("--mixture-size", type=int, default=4)
    parser.add_argument("--features", default="all", help="'all' bank neurons, or one recording session's")
    parser.add_argument("--pool", type=int, default=500, help="natural images in the pool (plus as many gaudy)")
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--synth-steps", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "closed_loop_benchmark.png")
    args = parser.parse_args()
    start = time.perf_counter()

    bank_path = str(args.data / "data_compact_models")
    bank = load_bank(bank_path)
    predictor = Predictor(bank)
    pool_images = read_images(args.data / "data_V4_responses/images/images_190923.zip").pixels[:args.pool]
    test_images = read_images(args.data / "data_V4_responses/images/images_201025.zip").pixels[:args.test]
    pool = np.concatenate([pool_images, gaudy(pool_images)])
    kinds = ["natural"] * len(pool_images) + ["gaudy"] * len(pool_images)
    ids = [f"natural{i:04d}" for i in range(len(pool_images))] + [f"gaudy{i:04d}" for i in range(len(pool_images))]

    neurons = [n for n in bank.neuron_ids if args.features == "all" or n.startswith(args.features + ":")]
    spec = FeatureSpec(tuple(neurons))
    features = compute_features(predictor, np.concatenate([pool, test_images]), spec)
    pool_features, test_features = features[:len(pool)], features[len(pool):]
    print(f"features: {spec.describe()} for {len(pool)} pool + {len(test_images)} test images "
          f"({time.perf_counter() - start:.0f} s)")

    options = dict(bank=bank_path, neurons="none", unknown=args.units, mixture_size=args.mixture_size, seed=args.seed)

    def calibrated() -> SimulatedSource:
        """The same virtual units and noise seed every time, scaled over the natural pool."""
        source = SimulatedSource(**options)
        source.calibrate_mixtures(pool_images, MEAN_RATE, TARGET_SD)
        return source

    runs = {}
    for strategy in STRATEGIES:
        source = calibrated()
        source.prepare(ids, pool)
        truth = source.true_rates(test_images, predictor)
        runs[strategy] = simulate_selection(strategy, kinds, pool_features, SourceResponder(source, ids),
                                            source.units, test_features, truth, CHECKPOINTS, seed=args.seed)
    print(f"selection runs done ({time.perf_counter() - start:.0f} s)\n")
    print(f"r with the true response on {len(test_images)} unseen natural images (mean over {args.units} virtual "
          f"units, min..max in brackets); held-out r is the nested cross-validated r on the images shown")
    print(f"{'presentations':>13}  " + "  ".join(f"{s:>24}" for s in STRATEGIES))
    for k, checkpoint in enumerate(CHECKPOINTS):
        cells = []
        for strategy in STRATEGIES:
            r = runs[strategy].checkpoints[k].test_r
            cells.append(f"{np.nanmean(r):.3f} [{np.nanmin(r):.2f}..{np.nanmax(r):.2f}]")
        print(f"{checkpoint:>13}  " + "  ".join(f"{c:>24}" for c in cells))
    print(f"{'held-out r 800':>13}  " + "  ".join(
        f"{np.nanmean(runs[s].checkpoints[-1].held_out_r):>24.3f}" for s in STRATEGIES))

    source = calibrated()
    natural_truth = source.true_rates(pool_images, predictor)
    committee = runs["committee"]
    data = committee.log.snapshot()
    rows = []
    settings = SynthesisSettings(steps=args.synth_steps)
    for unit in range(args.units):
        readout = synthesis_readout(predictor, spec, data, committee.fit, source.units, unit)
        design = design_for_unit(readout, unit, list(range(args.seeds)), settings)
        true = source.true_rates(design.images, predictor)[unit]
        rows.append((source.units[unit], float(readout.fit.held_out_r[unit]), float(design.responses.mean()),
                     float(true.mean()), float(true.max()), float(natural_truth[unit].max())))
    print(f"\nsynthesized for each virtual unit through its committee readout ({args.seeds} seeds x "
          f"{args.synth_steps} steps, readout over its {readout.spec.neuron_ids.__len__()} strongest bank neurons)")
    print(f"{'unit':>6} {'readout r':>9} {'predicted':>9} {'true mean':>9} {'true max':>9} "
          f"{'best natural':>12} {'ratio':>6}")
    for name, r, predicted, true_mean, true_max, natural_best in rows:
        print(f"{name:>6} {r:9.3f} {predicted:9.2f} {true_mean:9.2f} {true_max:9.2f} {natural_best:12.2f} "
              f"{true_mean / natural_best:6.2f}")
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    plot(runs, rows, args.out)
    print(f"plot: {args.out}")


def plot(runs: dict, rows: list[tuple], out: Path) -> None:
    """Learning curves per strategy (mean and each unit) and synthesized versus best natural responses."""
    figure, (curves, bars) = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = {"random": "tab:blue", "gaudy-first": "tab:orange", "committee": "tab:green"}
    for strategy, run in runs.items():
        x = [c.presentations for c in run.checkpoints]
        r = np.array([c.test_r for c in run.checkpoints])
        curves.plot(x, r, color=colours[strategy], alpha=0.25, linewidth=1)
        curves.plot(x, np.nanmean(r, axis=1), color=colours[strategy], linewidth=2.5, marker="o", label=strategy)
    curves.set_xlabel("presentations")
    curves.set_ylabel("r with true response (unseen natural images)")
    curves.set_title("readouts of virtual units (thin: each unit)")
    curves.legend()
    names = [row[0] for row in rows]
    position = np.arange(len(rows))
    bars.bar(position - 0.2, [row[5] for row in rows], 0.4, label="best natural image in pool", color="tab:gray")
    bars.bar(position + 0.2, [row[3] for row in rows], 0.4, label="synthesized (mean over seeds)", color="tab:red")
    bars.set_xticks(position, names)
    bars.set_ylabel("true expected count")
    bars.set_title("synthesized through the readout vs best natural")
    bars.legend()
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
