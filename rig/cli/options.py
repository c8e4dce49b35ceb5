"""Options and helpers shared by several sub-commands."""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from tqdm import tqdm

from pathlib import Path

from compactrig.engine.bank import ModelBank, load_bank
from compactrig.engine.image_files import ImageCollection, read_images


def add_bank_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bank", metavar="DIR", default=None,
                        help="model folder (published layout or upstream repository root), "
                             "'published' for the fetched copy, or 'demo' (default: the embedded demo bank)")


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda")


def open_bank(args: argparse.Namespace) -> ModelBank:
    return load_bank(args.bank)


def parse_neuron_list(text: str | None) -> list[str] | None:
    """``'201025:2,201025:5'`` -> ids; None stays None (all neurons)."""
    if text is None:
        return None
    return [item.strip() for item in text.split(",") if item.strip()]


def progress_bar(description: str, unit: str = "it") -> tuple[tqdm, Callable[[int, int | None], None]]:
    """A progress bar on stderr and a ``(done, total)`` callback that drives it."""
    bar = tqdm(desc=description, unit=unit, file=sys.stderr, mininterval=0.3, dynamic_ncols=True)

    def update(done: int, total: int | None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    return bar, update


def read_images_with_progress(path: Path) -> ImageCollection:
    """``read_images`` with a progress bar on stderr."""
    bar, update = progress_bar("reading images", unit="img")
    try:
        return read_images(path, progress=update)
    finally:
        bar.close()
