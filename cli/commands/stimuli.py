"""``compactrig stimuli import|show``: natural images into a set, and what a set holds."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from compactrig.cli.options import add_bank_option, open_bank, read_images_with_progress
from compactrig.cli.stimulus_output import add_set_output_options, add_to_set, check_set_folder
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("stimuli", help="import natural images into a stimulus set, or show a set")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    imported = actions.add_parser("import", help="natural images (folder or zip) into a stimulus set")
    imported.add_argument("path", type=Path, help="folder or .zip of images (ids are file stems)")
    add_set_output_options(imported)
    add_bank_option(imported)
    imported.set_defaults(run=run_import)
    show = actions.add_parser("show", help="a summary table of a stimulus set")
    show.add_argument("folder", type=Path)
    show.set_defaults(run=run_show)


def run_import(args: argparse.Namespace) -> int:
    check_set_folder(args.out, args.force)
    bank = open_bank(args)
    natural = read_images_with_progress(args.path)
    records = [StimulusRecord(image_id=i, kind="natural", source_image=str(args.path / i) if args.path.is_dir()
                              else f"{args.path}:{i}", method={"method": "import"}) for i in natural.ids]
    add_to_set(args.out, bank, natural.pixels, records)
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
