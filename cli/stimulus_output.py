"""Writing new images into the ``--out`` stimulus set (created, or added to) for every command."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from compactrig.cli.outputs import check_folder
from compactrig.engine.models.bank import ModelBank
from compactrig.stimuli.stimulus_set import (
    MANIFEST,
    StimulusRecord,
    annotate,
    load_or_empty,
    read_records,
    recorded_with,
)

if TYPE_CHECKING:
    from compactrig.engine.models.fast_predict import Predictor


def add_set_output_options(parser: argparse.ArgumentParser) -> None:
    """``--out DIR`` (a stimulus set, created or added to) and ``--force``."""
    parser.add_argument("--out", type=Path, required=True, help="stimulus-set folder (created or added to)")
    parser.add_argument("--force", action="store_true",
                        help="write the set into --out even if it holds other files (none of them is replaced)")
    parser.add_argument("--all-neurons", action="store_true",
                        help="record every bank neuron's predicted response (default: the target's and those "
                             "recorded in its session; `compactrig stimuli predict` adds others later)")


def check_set_folder(folder: Path, force: bool) -> Path:
    """Refuse, before any work, an ``--out`` that cannot take a stimulus set: not writable, a file, a non-empty
    folder that is not a set (unless ``force``), or a set whose manifest is unusable (it names files outside it)."""
    check_folder(folder, "--out", force, lambda f: (f / MANIFEST).is_file(), "a stimulus set")
    if (folder / MANIFEST).is_file():
        read_records(folder)
    return folder


@contextmanager
def folding_predictor(bank: ModelBank, target_neuron: str, all_neurons: bool = False) -> Iterator[Predictor]:
    """A predictor that folds, on a thread of its own, the models of the neurons whose predictions images made
    for ``target_neuron`` will carry (``stimulus_set.prediction_neurons``): done while the images are made
    rather than after them (issue 41). ``Predictor.fold`` is locked, so predicting waits for what is under way;
    leaving the block waits for the fold too, so a command ended early (Ctrl-C, an error) never ends in the
    middle of it (it may be writing the folded-model cache)."""
    from compactrig.engine.models.fast_predict import Predictor  # PyTorch: only for the commands that predict

    predictor = Predictor(bank)
    neurons = list(bank.neuron_ids) if all_neurons else recorded_with(bank, target_neuron)

    def fold() -> None:
        try:
            predictor.fold(neurons)
        except Exception:  # noqa: BLE001 - predicting folds them again on the command's thread, and says what failed
            return

    folding = threading.Thread(target=fold, name="fold models")
    folding.start()
    try:
        yield predictor
    finally:
        folding.join()


def add_to_set(folder: Path, bank: ModelBank, pixels: np.ndarray, records: list[StimulusRecord],
               all_neurons: bool = False, predictor: Predictor | None = None) -> int:
    """Annotate the new images with the bank's predictions (``annotate``, through ``predictor`` when given), add
    them to ``folder``'s set, save."""
    existing = load_or_empty(folder)
    combined = existing.merged(annotate(bank, pixels, records, predictor=predictor, all_neurons=all_neurons))
    combined.save(folder)
    print(f"{folder}: {len(records)} image(s) added, {len(combined)} in the set")
    return len(combined)
