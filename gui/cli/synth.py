"""``compactrig synth max|min|adversarial``: images designed for one neuron, saved as a stimulus set."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from engine.errors import CompactRigError
from engine.fast_predict import FoldedModel
from gui.cli.options import add_bank_option, add_device_option, open_bank, progress_bar, read_images_with_progress
from gui.cli.stimulus_output import add_to_set
from stimuli.adversarial import adversarial
from stimuli.diversity import diversity_report
from stimuli.stimulus_set import StimulusRecord
from stimuli.synthesis import SynthesisSettings, synthesize
from stimuli.targets import UnitTarget


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("synth", help="synthesize maximizing, minimizing or adversarial images")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND")
    kinds.required = True
    for direction in ("max", "min"):
        sub = kinds.add_parser(direction, help=f"{'maximize' if direction == 'max' else 'minimize'} "
                                               "a neuron's (or unit's) predicted response")
        _common(sub)
        sub.add_argument("--n", type=int, default=1, help="number of images (seeds K, K+1, ...), computed together")
        sub.add_argument("--steps", type=int, default=100, help="gradient steps (default 100)")
        sub.add_argument("--step-size", type=float, default=10.0, help="step in 0..255 units (default 10)")
        sub.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
        sub.add_argument("--grayscale", action="store_true", help="keep the image gray (luma in R, G, B)")
        sub.set_defaults(run=run_synthesis, direction=direction)
    sub = kinds.add_parser("adversarial", help="nudge natural images to raise or lower a neuron's response")
    _common(sub)
    sub.add_argument("--images", type=Path, required=True, help="folder or .zip of natural images")
    sub.add_argument("--eps", type=float, default=8.0, help="largest change per channel value, 0..255 units (default 8)")
    sub.add_argument("--direction", choices=("up", "down"), required=True)
    sub.add_argument("--steps", type=int, default=20, help="projected gradient steps (default 20)")
    sub.set_defaults(run=run_adversarial)


def _common(parser: argparse.ArgumentParser) -> None:
    add_bank_option(parser)
    add_device_option(parser)
    parser.add_argument("--neuron", required=True, help="neuron id, e.g. 201025:2")
    parser.add_argument("--target", default=None,
                        help="internal unit instead of the output: STAGE:CHANNEL or STAGE:CHANNEL:ROW:COL")
    parser.add_argument("--out", type=Path, required=True, help="stimulus-set folder (created or added to)")


def _model(args: argparse.Namespace):
    bank = open_bank(args)
    neuron_id = bank.info(args.neuron).neuron_id
    target = UnitTarget.parse(args.target)
    target.check(bank.info(neuron_id).filters)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise CompactRigError(f"device {args.device!r}: no CUDA GPU is available here; use --device cpu")
    model = FoldedModel(bank.model(neuron_id, dtype=torch.float64)).to(args.device)
    return bank, neuron_id, target, model


def run_synthesis(args: argparse.Namespace) -> int:
    if args.n < 1 or args.steps < 1:
        raise CompactRigError("--n and --steps must be at least 1")
    bank, neuron_id, target, model = _model(args)
    settings = SynthesisSettings(direction=args.direction, steps=args.steps, step_size=args.step_size,
                                 grayscale=args.grayscale)
    seeds = list(range(args.seed, args.seed + args.n))
    bar, update = progress_bar(f"synthesizing {args.direction} for {neuron_id}", unit="step")
    try:
        result = synthesize(model, seeds, settings, target, progress=lambda p: update(p.step, p.steps))
    finally:
        bar.close()
    method = {"method": "gradient", "target": target.describe(), **settings.as_dict()}
    tag = neuron_id.replace(":", "-")
    unit = "" if target.stage is None else "_u" + target.describe().replace(":", "-")
    ids = [f"{args.direction}_{tag}{unit}_seed{seed}" for seed in seeds]
    records = [StimulusRecord(image_id=i, kind=args.direction, target_neuron=neuron_id, method=method, seed=seed)
               for i, seed in zip(ids, seeds)]
    print(diversity_report(ids, result.images, result.responses).format())
    add_to_set(args.out, bank, result.images, records)
    return 0


def run_adversarial(args: argparse.Namespace) -> int:
    if args.eps <= 0 or args.steps < 1:
        raise CompactRigError("--eps must be positive and --steps at least 1")
    bank, neuron_id, target, model = _model(args)
    natural = read_images_with_progress(args.images)
    bar, update = progress_bar(f"adversarial ({args.direction}) for {neuron_id}", unit="step")
    try:
        result = adversarial(model, natural.pixels, args.direction, args.eps, args.steps, target, progress=update)
    finally:
        bar.close()
    method = {"method": "projected-gradient", "direction": args.direction, "eps": args.eps,
              "steps": args.steps, "target": target.describe()}
    tag = neuron_id.replace(":", "-")
    ids = [f"adv{args.direction}_{tag}_{source}" for source in natural.ids]
    records = [StimulusRecord(image_id=i, kind="adversarial", target_neuron=neuron_id, source_image=source,
                              method={**method, "response_before": float(b), "response_after": float(a),
                                      "max_abs_change": float(m), "rms_change": float(r)})
               for i, source, b, a, m, r in zip(ids, natural.ids, result.before, result.after,
                                                 result.max_abs, result.rms)]
    print(f"{'image':<24} {'before':>9} {'after':>9} {'max |d|':>8} {'rms d':>7}")
    for source, b, a, m, r in zip(natural.ids, result.before, result.after, result.max_abs, result.rms):
        print(f"{source:<24} {b:9.3f} {a:9.3f} {m:8.0f} {r:7.2f}")
    print(f"mean change of response: {np.mean(result.after - result.before):+.3f}")
    add_to_set(args.out, bank, result.images, records)
    return 0
