"""Options and helpers shared by several sub-commands."""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import overload

from tqdm import tqdm

from compactrig.engine.errors import CompactRigError
from compactrig.engine.files.image_files import ImageCollection, read_images
from compactrig.engine.models.bank import ModelBank, load_bank
from compactrig.engine.progress import Progress


def add_bank_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bank", metavar="DIR", default=None,
                        help="model folder (published layout or upstream repository root), "
                             "'published' for the fetched copy, or 'demo' (default: the embedded demo bank)")


def number(kind: type[int | float], low: float, high: float, above: bool = False) -> Callable[[str], float]:
    """An argparse ``type`` for a command-line number: parsed as ``kind``, finite, and within ``low..high``
    (``low`` itself excluded when ``above``); anything else is argparse's one-line usage error, exit 2.
    Every numeric option of every command uses it, so a bad number never reaches the work."""
    what = "a whole number" if kind is int else "a number"
    span = f"above {low:g} and at most {high:g}" if above else f"from {low:g} to {high:g}"

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}; give {what} {span}") from None
        if not math.isfinite(value) or not ((low < value) if above else (low <= value)) or value > high:
            raise argparse.ArgumentTypeError(f"{text} is out of range; give {what} {span}")
        return value

    return parse


def device(text: str) -> str:
    """An argparse ``type`` for ``--device``: ``cpu``, or ``cuda``/``cuda:N`` when that GPU is here. A name
    that is no device is a usage error; a GPU that is not here is a ``CompactRigError`` (exit 2), raised while
    the command line is parsed, so no work starts on a device that cannot run it."""
    if not re.fullmatch(r"cpu|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; give cpu, cuda or cuda:N")
    if text.startswith("cuda"):
        import torch  # only when a GPU is asked for: listing commands never load PyTorch
        index = int(text.partition(":")[2] or 0)
        if not torch.cuda.is_available():
            raise CompactRigError(f"device {text!r}: no CUDA GPU is available here; use --device cpu")
        if index >= torch.cuda.device_count():
            raise CompactRigError(f"device {text!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                                  f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return text


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", type=device, help="torch device: cpu (default), cuda or cuda:N")


def open_bank(args: argparse.Namespace) -> ModelBank:
    return load_bank(args.bank)


@overload
def parse_neuron_list(text: str, flag: str = ...) -> list[str]: ...
@overload
def parse_neuron_list(text: None, flag: str = ...) -> None: ...
@overload
def parse_neuron_list(text: str | None, flag: str = ...) -> list[str] | None: ...
def parse_neuron_list(text: str | None, flag: str = "--neurons") -> list[str] | None:
    """``'201025:2,201025:5'`` -> ids; None stays None (all neurons). A list naming nothing, or an entry twice,
    is refused: it would give an empty result, or the same rows twice."""
    if text is None:
        return None
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise CompactRigError(f"{flag} {text!r} names nothing; give comma-separated ids, or leave the option out "
                              "for all")
    twice = next((item for k, item in enumerate(items) if item in items[:k]), None)
    if twice is not None:
        raise CompactRigError(f"{flag} {text!r} names {twice} twice; give each once")
    return items


def progress_bar(description: str, unit: str = "it") -> tuple[tqdm, Progress]:
    """A progress bar on stderr and the ``engine.progress.Progress`` callback that drives it (a named phase
    restarts the bar under the phase's name)."""
    bar = tqdm(desc=description, unit=unit, file=sys.stderr, mininterval=0.3, dynamic_ncols=True)
    shown_phase = ""

    def update(done: int, total: int | None, phase: str = "") -> None:
        nonlocal shown_phase
        if phase != shown_phase:
            shown_phase = phase
            bar.set_description(f"{description}: {phase}" if phase else description, refresh=False)
            bar.reset(total)
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
