"""``compactrig stimuli import|predict|show``: natural images into a set, predictions added to a set's manifest
later, and what a set holds."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from compactrig.cli.options import add_bank_option, open_bank, progress_bar, read_images_with_progress
from compactrig.cli.stimulus_output import add_set_output_options, add_to_set, check_set_folder
from compactrig.engine.errors import CompactRigError
from compactrig.stimuli.stimulus_set import MANIFEST, StimulusRecord, StimulusSet, annotate, prediction_neurons


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("stimuli", help="import natural images into a stimulus set, or show a set")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    imported = actions.add_parser("import", help="natural images (folder or zip) into a stimulus set")
    imported.add_argument("path", type=Path, help="folder or .zip of images (ids are file stems)")
    add_set_output_options(imported)
    add_bank_option(imported)
    imported.set_defaults(run=run_import)
    predicted = actions.add_parser("predict", help="add or refresh the bank's predicted responses in a set's manifest")
    predicted.add_argument("folder", type=Path, help="stimulus-set folder")
    add_bank_option(predicted)
    which = predicted.add_mutually_exclusive_group()
    which.add_argument("--neurons", default=None, metavar="ID,ID,...",
                       help="these neurons (default: each image's target and the neurons recorded with it)")
    which.add_argument("--all-neurons", action="store_true", help="every neuron of the bank")
    predicted.add_argument("--replace", action="store_true",
                           help="the set's predictions were made by another bank: drop them and predict with this one")
    predicted.set_defaults(run=run_predict)
    show = actions.add_parser("show", help="a summary table of a stimulus set")
    show.add_argument("folder", type=Path)
    show.set_defaults(run=run_show)


def run_import(args: argparse.Namespace) -> int:
    check_set_folder(args.out, args.force)
    bank = open_bank(args)
    natural = read_images_with_progress(args.path)
    records = [StimulusRecord(image_id=i, kind="natural", source_image=str(args.path / i) if args.path.is_dir()
                              else f"{args.path}:{i}", method={"method": "import"}) for i in natural.ids]
    add_to_set(args.out, bank, natural.pixels, records, args.all_neurons)
    return 0


def run_predict(args: argparse.Namespace) -> int:
    check_set_folder(args.folder, force=False)
    if not (args.folder / MANIFEST).is_file():
        raise CompactRigError(f"{args.folder}: is not a stimulus set (no {MANIFEST}); make one with `compactrig "
                              "stimuli import` or `synth`")
    stimulus_set = StimulusSet.load(args.folder)
    bank = open_bank(args)
    neurons = [n.strip() for n in args.neurons.split(",") if n.strip()] if args.neurons is not None else None
    if not args.all_neurons and not neurons and not any(prediction_neurons(bank, r) for r in stimulus_set.records):
        raise CompactRigError(f"{args.folder}: no image's target is a neuron of the bank {bank.name!r}, so there is "
                              "nothing to predict by default; pass the bank it was designed with (--bank), or "
                              "--neurons / --all-neurons")
    bar, update = progress_bar("predicting", unit="neuron")
    try:
        updated = annotate(bank, stimulus_set.pixels, stimulus_set.records, neurons=neurons,
                           all_neurons=args.all_neurons, replace_other_bank=args.replace, progress=update)
    finally:
        bar.close()
    updated.save_records(args.folder)
    counts = Counter(len(r.predicted) for r in updated.records)
    print(f"{args.folder}: predictions of {bank.name} written for {len(updated)} image(s) "
          f"({', '.join(f'{k} with {n} neuron(s)' for n, k in sorted(counts.items()))})")
    return 0


def run_show(args: argparse.Namespace) -> int:
    stimulus_set = StimulusSet.load(args.folder)
    kinds = Counter(r.kind for r in stimulus_set.records)
    banks = sorted({r.bank.get("name", "?") for r in stimulus_set.records})
    print(f"{args.folder}: {len(stimulus_set)} images ({', '.join(f'{n} {k}' for k, n in kinds.items())}); "
          f"banks: {', '.join(banks)}")
    width = max([len(i) for i in stimulus_set.ids] + [2])
    print(f"{'#':>4}  {'id':<{width}}  {'kind':<11}  {'target':<10}  {'seed':>5}  {'target response':>15}  source")
    for index, record in enumerate(stimulus_set.records):
        response = record.predicted.get(record.target_neuron) if record.target_neuron else None
        print(f"{index:>4}  {record.image_id:<{width}}  {record.kind:<11}  {record.target_neuron or '-':<10}  "
              f"{'-' if record.seed is None else record.seed:>5}  "
              f"{'-' if response is None else f'{response:.3f}':>15}  {record.source_image or '-'}")
    return 0
