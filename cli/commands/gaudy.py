"""``compactrig gaudy``: high-contrast versions of natural images, saved as a stimulus set."""

from __future__ import annotations

import argparse
from pathlib import Path

from compactrig.cli.options import add_bank_option, number, open_bank, read_images_with_progress
from compactrig.cli.stimulus_output import add_set_output_options, add_to_set, check_set_folder
from compactrig.engine.models.layout import IMAGE_SIZE
from compactrig.stimuli.design import design_gaudy


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("gaudy", help="make gaudy (0/255 per channel) images from natural images")
    add_bank_option(parser)
    parser.add_argument("--images", type=Path, required=True, help="folder, .zip or stimulus set of images")
    parser.add_argument("--mode", choices=("channel", "global"), default="channel",
                        help="threshold per colour channel (default) or one over all channels")
    parser.add_argument("--sigma", type=number(float, 0, IMAGE_SIZE), default=0.0,
                        help="Gaussian pre-blur in pixels (default none)")
    add_set_output_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_set_folder(args.out, args.force)
    bank = open_bank(args)
    natural = read_images_with_progress(args.images)
    design = design_gaudy(natural.ids, natural.pixels, args.mode, args.sigma)
    add_to_set(args.out, bank, design.images, design.records, args.all_neurons)
    return 0
