"""``compactrig predict``: every chosen neuron's response to every image of a folder or zip."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from compactrig.engine.errors import CompactRigError
from compactrig.engine.fast_predict import Predictor
from compactrig.rig.cli.options import (add_bank_option, add_device_option, open_bank, parse_neuron_list, progress_bar,
                             read_images_with_progress)


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "predict", help="predict responses to a folder or zip of images",
        description="Writes float32 (n_neurons, n_images): rows in `models list` order or --neurons "
                    "order, columns in image file-name order.")
    add_bank_option(parser)
    add_device_option(parser)
    parser.add_argument("--images", type=Path, required=True, help="folder or .zip of images")
    parser.add_argument("--out", type=Path, required=True, help="output .npy file")
    parser.add_argument("--neurons", default=None, help="comma-separated neuron ids (default: all)")
    parser.add_argument("--csv", type=Path, default=None, help="also write a CSV with neuron and image ids")
    parser.set_defaults(run=run)


def write_csv(path: Path, neuron_ids: list[str], image_ids: list[str], values: np.ndarray) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["neuron", *image_ids])
        for neuron_id, row in zip(neuron_ids, values):
            writer.writerow([neuron_id, *(f"{v:.9g}" for v in row)])


def run(args: argparse.Namespace) -> int:
    if args.out.suffix != ".npy":
        raise CompactRigError(f"--out {args.out}: must end in .npy")
    bank = open_bank(args)
    neuron_ids = bank.resolve(parse_neuron_list(args.neurons))
    images = read_images_with_progress(args.images)
    bar, update = progress_bar("predicting", unit="model")
    try:
        values = Predictor(bank, args.device).predict(images.pixels, neuron_ids, progress=update)
    finally:
        bar.close()
    np.save(args.out, values)
    if args.csv is not None:
        write_csv(args.csv, neuron_ids, images.ids, values)
    print(f"Wrote {values.shape[0]} neurons x {values.shape[1]} images to {args.out}")
    return 0
