"""``compactrig predict``: every chosen neuron's response to every image of a folder, zip or tar shards.

Images stream through in chunks (memory does not grow with the collection). ``--out FILE.zarr``
writes each chunk as it is done, and ``--resume`` continues an interrupted run with exactly the
numbers of an uninterrupted one; ``.npy`` (and ``--csv``) suit runs whose result fits in memory.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from compactrig.cli.options import add_bank_option, add_device_option, open_bank, parse_neuron_list
from compactrig.cli.outputs import check_apart, check_file
from compactrig.cli.streamed import add_stream_options, layout_for, stream
from compactrig.engine.compute.streaming import into_array
from compactrig.engine.errors import CompactRigError
from compactrig.engine.files.image_files import list_images
from compactrig.engine.files.prediction_store import PredictionStore
from compactrig.engine.files.safe_output import check_writable_folder, write_atomically

OUTPUT_SUFFIXES = (".npy", ".zarr")


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "predict", help="predict responses to a folder or zip of images",
        description="Writes float32 (n_neurons, n_images): rows in `models list` order or --neurons "
                    "order, columns in image file-name order. FILE.zarr is written as it goes (with the "
                    "image ids, neuron ids and the bank's identity) and can be resumed.")
    add_bank_option(parser)
    add_device_option(parser)
    parser.add_argument("--out", type=Path, required=True, help="output .npy, or .zarr for large or long runs")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted --out FILE.zarr")
    parser.add_argument("--neurons", default=None, help="comma-separated neuron ids (default: all)")
    parser.add_argument("--csv", type=Path, default=None, help="also write a CSV with neuron and image ids")
    parser.add_argument("--force", action="store_true", help="replace an existing --out FILE.npy or --csv file")
    add_stream_options(parser)
    parser.set_defaults(run=run)


def write_csv(path: Path, neuron_ids: list[str], image_ids: list[str], values: np.ndarray) -> None:
    def write(partial: Path) -> None:
        with open(partial, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["neuron", *image_ids])
            for neuron_id, row in zip(neuron_ids, values):
                writer.writerow([neuron_id, *(f"{v:.9g}" for v in row)])
    write_atomically(path, write)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix not in OUTPUT_SUFFIXES:
        raise CompactRigError(f"--out {out}: must end in .npy or .zarr")
    if args.resume and out.suffix != ".zarr":
        raise CompactRigError(f"--resume continues a .zarr output; {out} is not one")
    if out.suffix == ".npy":
        check_file(out, "--out", args.force)
    else:
        check_writable_folder(out.parent, "--out")
    if args.csv is not None:
        check_file(args.csv, "--csv", args.force)
    check_apart([("--out", out if out.suffix == ".npy" else None), ("--csv", args.csv)],
                [("--out", out if out.suffix == ".zarr" else None)])
    bank = open_bank(args)
    neuron_ids = bank.resolve(parse_neuron_list(args.neurons))
    listing = list_images(args.images)
    layout = layout_for(args, len(neuron_ids), len(listing))
    if out.suffix == ".zarr":
        if args.resume:
            store = PredictionStore.resume(out, neuron_ids, listing.ids, bank.identity(), str(listing.path),
                                           listing.fingerprint())
        else:
            store = PredictionStore.create(out, neuron_ids, listing.ids, layout, bank.identity(), str(listing.path),
                                           listing.fingerprint())
        units = store.pending()
        stream(args, bank, neuron_ids, listing, store.layout, units, store.write)
        if args.csv is not None:
            write_csv(args.csv, neuron_ids, listing.ids, np.asarray(store.responses[:]))
        print(f"Wrote {layout.n_neurons} neurons x {layout.n_images} images to {out} "
              f"({len(units)} of {len(store.layout.units())} chunks computed now)")
        return 0
    values = np.full((layout.n_neurons, layout.n_images), np.nan, dtype=np.float32)
    stream(args, bank, neuron_ids, listing, layout, layout.units(), into_array(values, layout))
    write_atomically(out, lambda path: np.save(path, values))
    if args.csv is not None:
        write_csv(args.csv, neuron_ids, listing.ids, values)
    print(f"Wrote {values.shape[0]} neurons x {values.shape[1]} images to {out}")
    return 0
