"""What ``predict`` and ``screen`` share: streaming a collection through the bank, here or on a cluster."""

from __future__ import annotations

import argparse
from pathlib import Path

from compactrig.cli.options import number, progress_bar
from compactrig.engine.compute.streaming import Sink, Unit, stream_here
from compactrig.engine.files.image_files import ImageListing
from compactrig.engine.files.prediction_store import Layout
from compactrig.engine.models.bank import ModelBank
from compactrig.engine.models.fast_predict import Predictor, image_chunk_for

NEURON_BLOCK = 64
"""Neurons per work unit: a cluster shards the bank too when it has more."""
MAX_CHUNK = 65536
"""The most images a chunk may hold (the most a GPU pass takes): 2.5 GB of pixels, 10 GB as floats."""


def add_stream_options(parser: argparse.ArgumentParser) -> None:
    """The collection, and how it streams: what every streaming command takes."""
    parser.add_argument("--images", type=Path, required=True, help="folder, .zip, .tar or folder of .tar shards")
    parser.add_argument("--chunk", type=number(int, 1, MAX_CHUNK), default=None, metavar="N",
                        help="images decoded and predicted at a time (default: 1024 on a CPU, 256 per task on "
                             "a cluster, sized to the GPU's free memory on cuda; at most 65536); memory does not grow "
                             "with the collection")
    parser.add_argument("--cluster", default=None, metavar="SPEC",
                        help="run on Dask: local:N for N worker processes here, a scheduler ADDRESS "
                             "(tcp://host:8786) or its scheduler FILE.json (see docs/cluster.md for SLURM)")


CLUSTER_CPU_CHUNK = 256
"""Images per task on a cluster of CPUs: small enough that every worker gets several (the numbers do not
depend on the chunk)."""


def layout_for(args: argparse.Namespace, n_neurons: int, n_images: int) -> Layout:
    default = CLUSTER_CPU_CHUNK if args.cluster and not args.device.startswith("cuda") else image_chunk_for(args.device)
    return Layout(n_neurons, n_images, args.chunk or default, NEURON_BLOCK)


def bank_spec(args: argparse.Namespace) -> str:
    """How workers open the same bank: demo, published, or the folder as an absolute path."""
    if args.bank in (None, "demo", "published"):
        return args.bank or "demo"
    return str(Path(args.bank).expanduser().resolve())


def stream(args: argparse.Namespace, bank: ModelBank, neuron_ids: list[str], listing: ImageListing,
           layout: Layout, units: list[Unit], sink: Sink) -> None:
    """Compute ``units`` here or on ``--cluster``, with a progress bar of images done."""
    bar, update = progress_bar("predicting", unit="img")

    def images_in(unit: Unit) -> float:
        """A unit's share of the images (a chunk's images are done once all its neuron blocks are)."""
        rows = layout.images(unit[0])
        return (rows.stop - rows.start) / layout.n_blocks

    total, done = round(sum(images_in(unit) for unit in units)), 0.0

    def counted(unit: Unit, values) -> None:
        nonlocal done
        sink(unit, values)
        done += images_in(unit)
        update(round(done), total)

    try:
        if args.cluster:
            from compactrig.engine.compute.cluster import open_client, stream_on_cluster
            with open_client(args.cluster) as client:
                stream_on_cluster(client, bank_spec(args), listing.path, args.device, str(bank.identity()["sha256"]),
                                  neuron_ids, layout, units, counted)
        else:
            stream_here(Predictor(bank, args.device), listing, neuron_ids, layout, units, counted)
    finally:
        bar.close()
