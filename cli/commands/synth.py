"""``compactrig synth max|min|adversarial``: images designed for one neuron, saved as a stimulus set."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from compactrig.cli.options import (
    add_bank_option,
    add_device_option,
    number,
    open_bank,
    progress_bar,
    read_images_with_progress,
)
from compactrig.cli.stimulus_output import add_set_output_options, add_to_set, check_set_folder, folding_predictor
from compactrig.engine.models.fast_predict import FoldedModel
from compactrig.stimuli.design import Design, design_adversarial, design_synthesized
from compactrig.stimuli.diversity import diversity_report
from compactrig.stimuli.synthesis import SynthesisSettings
from compactrig.stimuli.targets import UnitTarget

SYNTH_BATCH = 256
"""Images synthesized together: each holds about 1 MB while it is made, so a batch stays near 256 MB
whatever ``--n`` is (each image depends only on its seed, so batching changes no image)."""
MAX_IMAGES = 10_000
MAX_STEPS = 100_000


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("synth", help="synthesize maximizing, minimizing or adversarial images")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND")
    kinds.required = True
    for direction in ("max", "min"):
        sub = kinds.add_parser(direction, help=f"{'maximize' if direction == 'max' else 'minimize'} "
                                               "a neuron's (or unit's) predicted response")
        _common(sub)
        sub.add_argument("--n", type=number(int, 1, MAX_IMAGES), default=1,
                         help=f"number of images (seeds K, K+1, ...), computed together, {SYNTH_BATCH} at a time "
                              f"(at most {MAX_IMAGES})")
        sub.add_argument("--steps", type=number(int, 1, MAX_STEPS), default=100, help="gradient steps (default 100)")
        sub.add_argument("--step-size", type=number(float, 0, 255, above=True), default=10.0,
                         help="step in 0..255 units (default 10)")
        sub.add_argument("--seed", type=number(int, 0, 2**32), default=0, help="first seed (default 0)")
        sub.add_argument("--grayscale", action="store_true", help="keep the image gray (luma in R, G, B)")
        sub.set_defaults(run=run_synthesis, direction=direction)
    sub = kinds.add_parser("adversarial", help="nudge natural images to raise or lower a neuron's response")
    _common(sub)
    sub.add_argument("--images", type=Path, required=True, help="folder or .zip of natural images")
    sub.add_argument("--eps", type=number(float, 0, 255, above=True), default=8.0,
                     help="largest change per channel value, 0..255 units (default 8)")
    sub.add_argument("--direction", choices=("up", "down"), required=True)
    sub.add_argument("--steps", type=number(int, 1, MAX_STEPS), default=20,
                     help="projected gradient steps (default 20)")
    sub.set_defaults(run=run_adversarial)


def _common(parser: argparse.ArgumentParser) -> None:
    add_bank_option(parser)
    add_device_option(parser)
    parser.add_argument("--neuron", required=True, help="neuron id, e.g. 201025:2")
    parser.add_argument("--target", default=None,
                        help="internal unit instead of the output: STAGE:CHANNEL or STAGE:CHANNEL:ROW:COL")
    add_set_output_options(parser)


def _model(args: argparse.Namespace):
    check_set_folder(args.out, args.force)
    bank = open_bank(args)
    neuron_id = bank.info(args.neuron).neuron_id
    target = UnitTarget.parse(args.target)
    target.check(bank.info(neuron_id).filters)
    model = FoldedModel(bank.model(neuron_id, dtype=torch.float64)).to(args.device)
    return bank, neuron_id, target, model


def run_synthesis(args: argparse.Namespace) -> int:
    bank, neuron_id, target, model = _model(args)
    with folding_predictor(bank, neuron_id, args.all_neurons) as predictor:
        settings = SynthesisSettings(direction=args.direction, steps=args.steps, step_size=args.step_size,
                                     grayscale=args.grayscale)
        seeds = list(range(args.seed, args.seed + args.n))
        batches = [seeds[start:start + SYNTH_BATCH] for start in range(0, len(seeds), SYNTH_BATCH)]
        bar, update = progress_bar(f"synthesizing {args.direction} for {neuron_id}", unit="step")
        parts = []
        try:
            for k, batch in enumerate(batches):
                parts.append(design_synthesized(model, neuron_id, batch, settings, target,
                                                progress=lambda i, n, phase="", k=k: update(k * n + i,
                                                                                            len(batches) * n)))
        finally:
            bar.close()
        design = Design(np.concatenate([d.images for d in parts]), np.concatenate([d.responses for d in parts]),
                        [record for d in parts for record in d.records])
        print(diversity_report([r.image_id for r in design.records], design.images, design.responses).format())
        add_to_set(args.out, bank, design.images, design.records, args.all_neurons, predictor)
    return 0


def run_adversarial(args: argparse.Namespace) -> int:
    bank, neuron_id, target, model = _model(args)
    with folding_predictor(bank, neuron_id, args.all_neurons) as predictor:
        natural = read_images_with_progress(args.images)
        bar, update = progress_bar(f"adversarial ({args.direction}) for {neuron_id}", unit="step")
        try:
            design = design_adversarial(model, neuron_id, natural.ids, natural.pixels, args.direction, args.eps,
                                        args.steps, target, progress=update)
        finally:
            bar.close()
        print(f"{'image':<24} {'before':>9} {'after':>9} {'max |d|':>8} {'rms d':>7}")
        for source, record in zip(natural.ids, design.records):
            m = record.method
            print(f"{source:<24} {m['response_before']:9.3f} {m['response_after']:9.3f} "
                  f"{m['max_abs_change']:8.0f} {m['rms_change']:7.2f}")
        change = [r.method["response_after"] - r.method["response_before"] for r in design.records]
        print(f"mean change of response: {np.mean(change):+.3f}")
        add_to_set(args.out, bank, design.images, design.records, args.all_neurons, predictor)
    return 0
