"""Benchmark: does the closed loop learn new neurons, and which images teach it fastest?

It runs what a lab runs: ``compactrig loop run`` (a session with the PsychoPy presenter, the simulated
source, readouts refitted and rounds queued by the loop), once per strategy. The virtual units are *not*
bank neurons (the simulated source's ``unknown`` units: random mixtures of a few published neurons,
scaled to a mean and SD of counts over reference images, Poisson noise). Every session first shows
the same natural images (session 190923, not in the pool), then rounds of images chosen from a pool
of other natural images of that session and their gaudy versions, three ways: random natural, gaudy
first, and a committee of bootstrap readouts. The readout fits the loop stored in each session folder
(``loop/readouts``) at the end of the rounds named by ``--checkpoints`` are scored by r with each unit's
*true* expected response on natural images never shown (session 201025). Then images are synthesized
through each unit's last committee readout (from its stored fit and the session's images) and the
unit's true response to them is compared with its best natural image in the pool. Prints a table and
saves a plot. The presenter needs a display: on a machine without one, run it under ``xvfb-run -a``.

    python benchmarks/closed_loop.py [--units 4] [--mixture-size 4] [--pool 500] [--first 50] [--batch 25]
                                     [--repeats 2] [--checkpoints 200,400,800] [--test 200] [--seeds 4]
                                     [--synth-steps 100] [--work DIR] [--out docs/closed_loop_benchmark.png]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from compactrig.engine.files.image_files import read_images  # noqa: E402
from compactrig.engine.models.bank import load_bank  # noqa: E402
from compactrig.engine.models.fast_predict import Predictor  # noqa: E402
from compactrig.engine.readout.features import FeatureSpec, compute_features  # noqa: E402
from compactrig.engine.stats.correlation import pearson_r  # noqa: E402
from compactrig.plugins.sources.simulated import SimulatedSource  # noqa: E402
from compactrig.rig.loop.fit_files import StoredFit, load_fits  # noqa: E402
from compactrig.stimuli.closed_loop import ReadoutData, design_for_unit, synthesis_readout  # noqa: E402
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet  # noqa: E402
from compactrig.stimuli.synthesis import SynthesisSettings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "v4_compact_models"
STRATEGIES = ("random", "gaudy-first", "committee")
MIXTURE_COUNTS = "6,2"
"""Each virtual unit's mean and SD of expected counts over the source's reference images (a typical V4 unit)."""
RIG = """[screen]
resolution = [400, 300]
width_cm = 40.0
pace_frames = true
[image]
size_deg = 3.0
[timing]
frames_on = 2
frames_off = 1
images_per_trial = {batch}
inter_trial_s = 0.0
"""
"""A fast rig (paced, for displays without vsync such as Xvfb): the benchmark is about what is learnt."""


def loop_command() -> list[str]:
    """The installed console script beside this Python, or the module."""
    script = Path(sys.executable).with_name("compactrig")
    return [str(script)] if script.exists() else [sys.executable, "-m", "compactrig.cli"]


def run_loop(strategy: str, args: argparse.Namespace, work: Path, source_options: dict[str, object],
             rounds: int) -> Path:
    """``compactrig loop run`` for one strategy; its session folder (its output in ``STRATEGY.log``)."""
    out = work / strategy
    command = loop_command() + [
        "loop", "run", "--stimuli", str(work / "first"), "--out", str(out), "--rig", str(work / "rig.toml"),
        "--source", "simulated", *[a for k, v in source_options.items() for a in ("--source-opt", f"{k}={v}")],
        "--bank", str(args.bank), "--repeats", str(args.repeats), "--pool", str(work / "pool"),
        "--strategy", strategy, "--batch", str(args.batch), "--batches", str(rounds),
        "--refit-every", str(args.batch * args.repeats)]
    log = work / f"{strategy}.log"
    with log.open("w") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{strategy}: `compactrig loop run` stopped (exit {done.returncode}); the end of {log}:\n"
                 + "\n".join(log.read_text().splitlines()[-15:]))
    return out


def fit_at(fits: list[StoredFit], presentations: int, strategy: str) -> StoredFit:
    """The last stored fit on exactly this many presentations (the loop fits as each round is answered)."""
    found = [fit for fit in fits if fit.at == presentations]
    if not found:
        sys.exit(f"{strategy}: no readout fit stored at {presentations} presentations "
                 f"(stored: {', '.join(str(f.at) for f in fits)})")
    return found[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("COMPACTRIG_SHARED_DATA", DEFAULT_DATA)))
    parser.add_argument("--bank", type=Path, default=None, help="the bank of the readouts and of the mixtures "
                        "(default: the published models under --data)")
    parser.add_argument("--units", type=int, default=4)
    parser.add_argument("--mixture-size", type=int, default=4)
    parser.add_argument("--pool", type=int, default=500, help="natural images in the pool (plus as many gaudy)")
    parser.add_argument("--first", type=int, default=50, help="natural images every session shows first")
    parser.add_argument("--batch", type=int, default=25, help="images per round")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--checkpoints", default="200,400,800", help="presentations at which the fits are scored; "
                        "each the end of a round, the last the session's end")
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--synth-steps", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None, help="folder for the sessions, kept (default: a "
                        "temporary one, removed)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "closed_loop_benchmark.png")
    args = parser.parse_args()
    args.bank = args.bank or args.data / "data_compact_models"
    checkpoints = [int(c) for c in args.checkpoints.split(",")]
    first, per_round = args.first * args.repeats, args.batch * args.repeats
    off_grid = [c for c in checkpoints if c < first or (c - first) % per_round]
    if off_grid:
        sys.exit(f"--checkpoints {off_grid}: rounds end at {first}, {first + per_round}, {first + 2 * per_round}, ...")
    rounds = (max(checkpoints) - first) // per_round
    start = time.perf_counter()

    work = args.work or Path(tempfile.mkdtemp(prefix="closed_loop_benchmark_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        bank = load_bank(str(args.bank))
        predictor = Predictor(bank)
        recorded = read_images(args.data / "data_V4_responses/images/images_190923.zip")
        if len(recorded.ids) < args.pool + args.first:
            sys.exit(f"--pool {args.pool} and --first {args.first}: session 190923 has {len(recorded.ids)} images")
        pool_images = recorded.pixels[:args.pool]
        test_images = read_images(args.data / "data_V4_responses/images/images_201025.zip").pixels[:args.test]
        (work / "pool").mkdir(exist_ok=True)
        for image_id, pixels in zip(recorded.ids[:args.pool], pool_images):
            Image.fromarray(pixels).save(work / "pool" / f"{image_id}.png")
        shown_first = slice(args.pool, args.pool + args.first)
        StimulusSet([StimulusRecord(image_id=i, kind="natural") for i in recorded.ids[shown_first]],
                    recorded.pixels[shown_first]).save(work / "first")
        (work / "rig.toml").write_text(RIG.format(batch=args.batch))

        source_options: dict[str, object] = dict(bank=str(args.bank), neurons="none", unknown=args.units,
                                                 mixture_size=args.mixture_size, mixture_counts=MIXTURE_COUNTS,
                                                 seed=args.seed)
        source = SimulatedSource(**source_options)  # the very units the sessions record: what they truly do
        truth = source.true_rates(test_images, predictor)
        spec = FeatureSpec(tuple(bank.neuron_ids))
        test_features = compute_features(predictor, test_images, spec)
        print(f"{spec.describe()}; {args.first} natural images first, then {rounds} rounds of {args.batch} from a "
              f"pool of {args.pool} natural + {args.pool} gaudy, x{args.repeats} ({time.perf_counter() - start:.0f} s)")

        sessions, scores = {}, {}
        for strategy in STRATEGIES:
            began = time.perf_counter()
            sessions[strategy] = run_loop(strategy, args, work, source_options, rounds)
            fits = load_fits(sessions[strategy])
            scored = [fit_at(fits, c, strategy) for c in checkpoints]
            if scored[-1].units != source.units or scored[-1].neuron_ids != list(bank.neuron_ids):
                sys.exit(f"{strategy}: the stored fits are of units {scored[-1].units} on {scored[-1].features}")
            scores[strategy] = [(pearson_r(fit.fit.predict(test_features), truth), fit.fit.held_out_r)
                                for fit in scored]
            print(f"{strategy}: {len(fits)} fits stored ({time.perf_counter() - began:.0f} s)")
        print(f"\nr with the true response on {len(test_images)} unseen natural images (mean over {args.units} virtual "
              f"units, min..max in brackets); held-out r is the nested cross-validated r on the images shown")
        print(f"{'presentations':>13}  " + "  ".join(f"{s:>24}" for s in STRATEGIES))
        for k, checkpoint in enumerate(checkpoints):
            cells = []
            for strategy in STRATEGIES:
                r = scores[strategy][k][0]
                cells.append(f"{np.nanmean(r):.3f} [{np.nanmin(r):.2f}..{np.nanmax(r):.2f}]")
            print(f"{checkpoint:>13}  " + "  ".join(f"{c:>24}" for c in cells))
        print(f"{'held-out r':>13}  " + "  ".join(f"{np.nanmean(scores[s][-1][1]):>24.3f}" for s in STRATEGIES))

        last = load_fits(sessions["committee"])[-1]
        shown = StimulusSet.load(sessions["committee"] / "stimuli", only=last.image_ids)
        pixels = shown.pixels[[shown.ids.index(i) for i in last.image_ids]]
        data = ReadoutData(compute_features(predictor, pixels, spec), last.responses)
        natural_truth = source.true_rates(pool_images, predictor)
        rows = []
        settings = SynthesisSettings(steps=args.synth_steps)
        kept = 0
        for unit in range(args.units):
            readout = synthesis_readout(predictor, spec, data, last.fit, last.units, unit)
            kept = len(readout.spec.neuron_ids)
            design = design_for_unit(readout, unit, list(range(args.seeds)), settings)
            true = source.true_rates(design.images, predictor)[unit]
            rows.append((source.units[unit], float(readout.fit.held_out_r[unit]), float(design.responses.mean()),
                         float(true.mean()), float(true.max()), float(natural_truth[unit].max())))
        print(f"\nsynthesized for each virtual unit through its last committee readout ({last.at} presentations; "
              f"{args.seeds} seeds x {args.synth_steps} steps, readout over its {kept} strongest bank neurons)")
        print(f"{'unit':>6} {'readout r':>9} {'predicted':>9} {'true mean':>9} {'true max':>9} "
              f"{'best natural':>12} {'ratio':>6}")
        for name, r, predicted, true_mean, true_max, natural_best in rows:
            print(f"{name:>6} {r:9.3f} {predicted:9.2f} {true_mean:9.2f} {true_max:9.2f} {natural_best:12.2f} "
                  f"{true_mean / natural_best:6.2f}")
        print(f"\ntotal {time.perf_counter() - start:.0f} s")
        plot(checkpoints, scores, rows, args.out)
        print(f"plot: {args.out}")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


def plot(checkpoints: list[int], scores: dict, rows: list[tuple], out: Path) -> None:
    """Learning curves per strategy (mean and each unit) and synthesized versus best natural responses."""
    figure, (curves, bars) = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = {"random": "tab:blue", "gaudy-first": "tab:orange", "committee": "tab:green"}
    for strategy, scored in scores.items():
        r = np.array([test_r for test_r, _ in scored])
        curves.plot(checkpoints, r, color=colours[strategy], alpha=0.25, linewidth=1)
        curves.plot(checkpoints, np.nanmean(r, axis=1), color=colours[strategy], linewidth=2.5, marker="o",
                    label=strategy)
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
