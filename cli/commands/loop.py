"""``compactrig loop run|report``: the closed loop from a terminal."""

from __future__ import annotations

import argparse
from pathlib import Path

from compactrig.cli.options import parse_neuron_list
from compactrig.cli.rig_options import add_rig_options, rig_with_source
from compactrig.engine.errors import CompactRigError
from compactrig.engine.files.image_files import list_images
from compactrig.engine.readout.ridge import MIN_IMAGES
from compactrig.rig.loop.fit_files import load_fits
from compactrig.rig.loop.loop_plan import LOOP_FILE, LoopPlan, loop_plan_text
from compactrig.rig.loop.readout_table import READOUT_COLUMNS, readout_rows
from compactrig.rig.loop.session_loop import run_session_loop
from compactrig.rig.session.folder import SESSION_FILE
from compactrig.rig.session.setup import SessionPlan, start_session
from compactrig.stimuli.next_images import STRATEGIES
from compactrig.stimuli.stimulus_set import read_records


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("loop", help="run a closed-loop session from the terminal, report its readouts")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    run = actions.add_parser("run", help="a session whose readouts are refitted and next images queued, K rounds")
    run.add_argument("--stimuli", type=Path, required=True, help="stimulus-set folder (shown first)")
    run.add_argument("--out", type=Path, required=True, help="new session folder")
    add_rig_options(run)
    run.add_argument("--bank", default=None, help="bank the readouts read (default: demo)")
    run.add_argument("--repeats", type=int, default=1, help="repeats of every image, queued ones too (default 1)")
    run.add_argument("--pool", default=None, metavar="PATH",
                     help="natural candidate images, folder or zip (default: 200 generated 1/f textures); "
                          "their gaudy versions join the pool")
    run.add_argument("--strategy", default="committee", choices=STRATEGIES, help="how each batch is chosen")
    run.add_argument("--batch", type=int, default=20, help="pool images per round (default 20)")
    run.add_argument("--batches", type=int, default=1, help="rounds queued after the stimulus set (default 1)")
    run.add_argument("--refit-every", type=int, default=50, metavar="P",
                     help="refit the readouts every P presentations (and whenever the plan is caught up)")
    run.add_argument("--synthesize", default=None, choices=("max", "min"),
                     help="each round, also images that drive each of --for-units up or down")
    run.add_argument("--for-units", default=None, metavar="U,...", help="units to synthesize for")
    run.add_argument("--n", type=int, default=4, help="images synthesized per unit and round (default 4)")
    run.add_argument("--steps", type=int, default=100, help="synthesis steps (default 100)")
    run.set_defaults(run=run_loop)
    report = actions.add_parser("report", help="the readouts' per-unit table of a loop's session (its last fit)")
    report.add_argument("folder", type=Path)
    report.set_defaults(run=run_report)


def run_loop(args: argparse.Namespace) -> int:
    if args.pool is not None:
        if not Path(args.pool).exists():
            raise CompactRigError(f"--pool {args.pool}: no such folder or zip; give natural images to choose from")
        list_images(args.pool)  # a file that holds no images is refused before the session's folder is made
    # kept absolute: the session is resumed from wherever its folder is given
    pool = str(Path(args.pool).absolute()) if args.pool is not None else None
    bank = str(Path(args.bank).absolute()) if args.bank is not None and Path(args.bank).is_dir() else args.bank
    plan = LoopPlan(strategy=args.strategy, batch=args.batch, batches=args.batches, refit_every=args.refit_every,
                    repeats=args.repeats, pool=pool, bank=bank, synthesize=args.synthesize,
                    for_units=parse_neuron_list(args.for_units, "--for-units") or [], n=args.n,
                    steps=args.steps).check()
    out: Path = args.out
    if (out / SESSION_FILE).exists():
        raise CompactRigError(f"{out}: already holds a session; continue it with `compactrig session resume "
                              f"{out}` or choose another --out")
    shown = len(read_records(args.stimuli))  # the manifest alone: start_session decodes the images
    if shown < MIN_IMAGES:  # no readout is fitted, so no round would ever start: the loop would wait forever
        raise CompactRigError(f"--stimuli {args.stimuli}: {shown} image(s); the loop's readouts are fitted on "
                              f"responses to {MIN_IMAGES} images or more, so give a set of at least {MIN_IMAGES}")
    rig = rig_with_source(args)
    session = SessionPlan(stimuli=str(args.stimuli), bank=bank, repeats=args.repeats)
    # loop.json is written with the session's parts, before session.json: a session with a loop never lacks it
    start_session(out, session, args.rig, rig, extra_files={LOOP_FILE: loop_plan_text(plan)})
    return 0 if run_session_loop(out) else 130


def run_report(args: argparse.Namespace) -> int:
    fits = load_fits(args.folder)
    if not fits:
        raise CompactRigError(f"{args.folder}: no readout fits stored (loop/readouts); run `compactrig loop run` "
                              "or resume the session until its readouts are fitted")
    last = fits[-1]
    print(f"{args.folder}: readouts of {len(last.units)} unit(s) on {last.features}, fitted on "
          f"{last.fit.n_images} images at {last.at} presentations ({len(fits)} fit(s) stored)")
    rows = [READOUT_COLUMNS] + readout_rows(last.fit, last.units, last.neuron_ids, last.owners)
    widths = [max(len(row[k]) for row in rows) for k in range(len(READOUT_COLUMNS) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    return 0
