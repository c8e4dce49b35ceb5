"""``compactrig screen``: stream a large collection and keep, per neuron, the images that drive it most and least.

The result is one stimulus set per neuron (``OUT/<neuron>/``: its K most driving images, rank 1
first, then its K least), each image with its source file, rank and predicted response, ready to
be the stimulus set of tomorrow's session; ``OUT/screen.json`` says what was screened.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from compactrig.cli.options import add_bank_option, add_device_option, number, open_bank, parse_neuron_list
from compactrig.cli.outputs import check_folder
from compactrig.cli.stimulus_output import check_set_folder
from compactrig.cli.streamed import add_stream_options, layout_for, stream
from compactrig.engine.errors import CompactRigError
from compactrig.engine.files.image_files import list_images
from compactrig.engine.files.safe_output import write_atomically
from compactrig.engine.models.fast_predict import Predictor
from compactrig.stimuli.screening import DIRECTIONS, TopImages, screened_set
from compactrig.stimuli.stimulus_set import now

SUMMARY = "screen.json"


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "screen", help="keep the images of a large collection that drive each neuron most and least",
        description="Streams the collection through the bank (in chunks, here or on --cluster) and writes, per "
                    "neuron, a stimulus set of its K most and K least driving images with their provenance.")
    add_bank_option(parser)
    add_device_option(parser)
    parser.add_argument("--neurons", default=None, help="comma-separated neuron ids (default: all)")
    parser.add_argument("--top", type=number(int, 1, 1_000_000), required=True, metavar="K",
                        help="images kept per neuron and direction")
    parser.add_argument("--out", type=Path, required=True, help="folder for one stimulus set per neuron")
    parser.add_argument("--force", action="store_true",
                        help="write into --out even if it holds files and is not an earlier screen's output")
    add_stream_options(parser)
    parser.set_defaults(run=run)


def set_folder_name(neuron_id: str) -> str:
    """``201025:5`` -> ``201025_5`` (a colon is not allowed in Windows file names)."""
    return neuron_id.replace(":", "_")


def run(args: argparse.Namespace) -> int:
    check_folder(args.out, "--out", args.force, lambda folder: (folder / SUMMARY).is_file(),
                        "an earlier screen's output")
    bank = open_bank(args)
    neuron_ids = bank.resolve(parse_neuron_list(args.neurons))
    for neuron_id in neuron_ids:
        check_set_folder(args.out / set_folder_name(neuron_id), args.force)
    listing = list_images(args.images)
    if not 1 <= args.top <= len(listing) // 2:
        raise CompactRigError(f"--top {args.top}: the collection has {len(listing)} images; keep between 1 and "
                              f"{len(listing) // 2} per direction (the most and least driving must not overlap)")
    layout = layout_for(args, len(neuron_ids), len(listing))
    top = TopImages(len(neuron_ids), args.top)

    def keep(unit, values) -> None:
        rows = layout.images(unit[0])
        top.add(layout.neurons(unit[1]).start, np.arange(rows.start, rows.stop), values)

    stream(args, bank, neuron_ids, listing, layout, layout.units(), keep)
    identity = bank.identity()
    screen = {"screened_images": len(listing), "collection": str(listing.path.resolve()), "top": args.top}
    predictor = Predictor(bank, args.device)
    for neuron, neuron_id in enumerate(neuron_ids):
        chosen = {d: top.ranked(neuron, d) for d in DIRECTIONS}
        pixels = {d: listing.read_at(chosen[d].indices.tolist()) for d in DIRECTIONS}
        predicted = predictor.predict(np.concatenate([pixels[d] for d in DIRECTIONS]), neuron_ids)
        screened_set(neuron_id, chosen, pixels, listing.ids, listing.where, identity, predicted, neuron_ids,
                     screen).save(args.out / set_folder_name(neuron_id))
    summary = {**screen, "neurons": {n: set_folder_name(n) for n in neuron_ids}, "bank": identity, "created": now()}
    write_atomically(args.out / SUMMARY, lambda path: path.write_text(json.dumps(summary, indent=1)))
    print(f"Screened {len(listing)} images for {len(neuron_ids)} neurons: {2 * args.top} images each in "
          f"{args.out}/<neuron>/")
    return 0
