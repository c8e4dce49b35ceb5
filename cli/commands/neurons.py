"""``compactrig neurons fit``: compact models for recorded units that no bank model describes."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from compactrig.cli.options import (
    add_bank_option,
    add_device_option,
    number,
    open_bank,
    parse_neuron_list,
    progress_bar,
    read_images_with_progress,
)
from compactrig.cli.outputs import check_folder
from compactrig.cli.streamed import bank_spec
from compactrig.engine.errors import CompactRigError
from compactrig.engine.models.bank import PROVENANCE_FILE, read_provenance
from compactrig.engine.models.bank_writer import check_session_name, model_file_stem
from compactrig.engine.training.distill import TRUNK_STAGES
from compactrig.engine.training.unit_jobs import Runner, run_on_cluster
from compactrig.stimuli.new_neurons import NewNeuron, NewNeuronSettings, fit_new_neurons, response_sums


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "neurons", help="compact models for new neurons (readout, distillation, pruning)",
        description="Fits a readout over the bank for each unit, distills it into a compact model of the "
                    "published architecture, prunes it, and writes the models as a bank (published layout, "
                    "ids SESSION:UNIT, provenance.json beside them).")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    fit = actions.add_parser("fit", help="fit, distill, prune and write compact models")
    add_bank_option(fit)
    fit.add_argument("--images", type=Path, required=True,
                     help="folder or .zip of the images the responses were recorded to (imageNNNN = column NNNN-1)")
    fit.add_argument("--responses", type=Path, required=True,
                     help=".npy: (neurons, images) repeat-averaged or (neurons, images, repeats) NaN-padded")
    fit.add_argument("--library", type=Path, default=None, metavar="IMAGES",
                     help="folder or .zip of more natural images (no responses needed) whose readout answers the "
                          "students learn too: the more distinct images, the closer each compact model follows its "
                          "readout on new ones; the recorded images among them are left out")
    fit.add_argument("--units", default=None, help="comma-separated rows of the responses (default: all)")
    fit.add_argument("--session", required=True, help="name for the new neurons' session (letters and digits)")
    fit.add_argument("--out", type=Path, required=True,
                     help="bank folder to write: new, empty or one written by `neurons fit` (its ids are replaced)")
    fit.add_argument("--force", action="store_true",
                     help="write into --out even if it holds other files (none of them is replaced)")
    fit.add_argument("--features", default=None,
                     help="comma-separated bank neuron ids whose outputs the readouts use (default: all)")
    fit.add_argument("--epochs", type=number(int, 1, 10_000), default=None, help="distillation epochs (default 40)")
    fit.add_argument("--prune-epochs", type=number(int, 0, 10_000), default=None,
                     help="fine-tuning epochs after each pruning step (default 6)")
    fit.add_argument("--train-from-stage", type=number(int, 0, TRUNK_STAGES), default=None, metavar="STAGE",
                     help=f"train the student from this stage on ({TRUNK_STAGES}, the default: the head on its donor's "
                          "frozen stages 0-1; 1: stage 1's channel mixing too; 0: every stage), the earlier stages "
                          "for --whole-epochs after the head's epochs")
    fit.add_argument("--whole-epochs", type=number(int, 0, 10_000), default=None,
                     help="epochs with the earlier stages trained too, when --train-from-stage is below "
                          f"{TRUNK_STAGES} (default 8)")
    add_device_option(fit)
    fit.add_argument("--cluster", default=None, metavar="SPEC",
                     help="fit the units as tasks on Dask: local:N for N worker processes here, a scheduler ADDRESS "
                          "(tcp://host:8786) or its scheduler FILE.json (see docs/cluster.md); the models are those "
                          "of a run without it")
    fit.set_defaults(run=run_fit)


def is_fitted_bank(folder: Path) -> bool:
    """True for a bank ``neurons fit`` wrote (it holds their ``provenance.json``)."""
    return (folder / PROVENANCE_FILE).is_file()


def check_out_folder(out: Path, session: str, units: list[int], force: bool) -> None:
    """Refuse, before any work, an ``--out`` that cannot be written, that holds files without being a bank ``neurons
    fit`` wrote (unless ``force``), or where a model file of these units exists that ``neurons fit`` did not
    write (its id is not in the bank's provenance): that file is someone else's, and is never replaced."""
    check_folder(out, "--out", force, is_fitted_bank, "a bank written by `compactrig neurons fit`")
    check_session_name(session)
    made = read_provenance(out) if out.is_dir() else {}
    for unit in units:
        for folder, suffix in (("models_torch", ".pt"), ("nums_filters", ".npy")):
            path = out / folder / f"{model_file_stem(session, unit)}{suffix}"
            if path.exists() and f"{session}:{unit}" not in made:
                raise CompactRigError(f"--out {out}: {path} exists and was not written by `compactrig neurons fit`; "
                                      "choose another --out or --session (CompactRig replaces only its own files)")


def run_fit(args: argparse.Namespace) -> int:
    if not args.responses.is_file():
        raise CompactRigError(f"--responses {args.responses}: no such file")
    try:
        responses = np.load(args.responses, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise CompactRigError(f"--responses {args.responses}: not a readable .npy file ({error})") from None
    try:
        listed = parse_neuron_list(args.units, "--units") if args.units else None
        units = [int(u) for u in listed] if listed is not None else list(range(len(responses)))
    except (ValueError, TypeError):
        raise CompactRigError(f"--units {args.units}: give row numbers of the responses, e.g. 0,3,7") from None
    check_session_name(args.session)
    check_out_folder(args.out, args.session, units, args.force)
    bank = open_bank(args)
    images = read_images_with_progress(args.images)
    library = read_images_with_progress(args.library).pixels if args.library is not None else None
    distill = NewNeuronSettings().distill
    chosen = {"epochs": args.epochs, "prune_epochs": args.prune_epochs, "train_from_stage": args.train_from_stage,
              "whole_epochs": args.whole_epochs}
    distill = replace(distill, **{name: value for name, value in chosen.items() if value is not None})
    settings = NewNeuronSettings(distill=distill)
    bars: dict[str, tuple[Any, Callable[[int, int | None], None]]] = {}  # what -> (tqdm bar, its update)

    def progress(done: int, total: int | None, phase: str = "") -> None:
        if phase not in bars:
            for bar, _ in bars.values():
                bar.close()
            bars.clear()
            bars[phase] = progress_bar(phase)
        bars[phase][1](done, total)

    try:
        trials = response_sums(images.ids, responses, units)

        def fit(runner: Runner | None = None) -> list[NewNeuron]:
            return fit_new_neurons(bank, images.ids, images.pixels, trials, units, args.session, args.out,
                                   settings, progress, feature_neurons=parse_neuron_list(args.features, "--features"),
                                   device=args.device, runner=runner, library=library)

        if args.cluster:
            from compactrig.engine.compute.cluster import open_client
            with open_client(args.cluster) as client:
                made = fit(run_on_cluster(client, bank_spec(args), args.device))
        else:
            made = fit()
    finally:
        for bar, _ in bars.values():
            bar.close()
    for neuron in made:
        noise_corrected = (f", r2_ER readout {neuron.readout_r2_er:.3f}, compact {neuron.compact_r2_er:.3f}"
                           if np.isfinite(neuron.compact_r2_er) else "")
        print(f"{neuron.neuron_id}: held-out r readout {neuron.readout_r:.3f}, compact {neuron.compact_r:.3f}"
              f"{noise_corrected}; "
              f"{neuron.n_parameters} parameters, filters {list(neuron.filters)}; {neuron.seconds:.0f} s")
    print(f"Wrote {len(made)} compact model(s) to {args.out}")
    return 0
