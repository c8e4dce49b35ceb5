"""``compactrig session run|resume|export|report|windows``: headless recording sessions."""

from __future__ import annotations

import argparse
from pathlib import Path

from compactrig.cli.options import number
from compactrig.cli.outputs import check_apart, check_file
from compactrig.cli.rig_options import add_rig_options, rig_with_source
from compactrig.engine.errors import CompactRigError
from compactrig.engine.files.safe_output import write_atomically
from compactrig.rig.session.controller import SessionController, print_messages
from compactrig.rig.session.folder import read_snapshot, session_files
from compactrig.rig.session.responses import export_npz
from compactrig.rig.session.setup import SessionPlan, start_session
from compactrig.rig.session.stored import check_session
from compactrig.rig.session.unit_map import parse_unit_map
from compactrig.rig.session.windows import SUGGESTED, adopt_in_folder, describe_windows


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("session", help="run, resume and export recording sessions")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    run = actions.add_parser("run", help="start a session: present, collect responses, store everything")
    run.add_argument("--stimuli", type=Path, required=True, help="stimulus-set folder")
    add_rig_options(run)
    run.add_argument("--map", action="append", default=[], metavar="UNIT=NEURON",
                     help="compare recorded UNIT with model NEURON (SESSION:INDEX; live r); repeat it, or give "
                          "several comma-separated")
    run.add_argument("--bank", default=None, help="bank of the mapped neurons (default: demo)")
    run.add_argument("--repeats", type=number(int, 1, 10_000), default=1)
    run.add_argument("--seed", type=number(int, 0, 2**32), default=None, help="seed of the per-block shuffle")
    run.add_argument("--max-dropped-frames", type=number(int, 0, 100_000), default=None,
                     help="presentations with more dropped frames are shown again")
    run.add_argument("--max-missing", type=number(int, 1, 1000), default=3,
                     help="an image whose response goes missing this many times is left out (default 3)")
    run.add_argument("--out", type=Path, required=True, help="new session folder")
    run.set_defaults(run=run_session)
    resume = actions.add_parser("resume", help="continue a stopped or crashed session where it stopped")
    resume.add_argument("folder", type=Path)
    resume.set_defaults(run=resume_session)
    export = actions.add_parser("export", help="write a session's responses in the published layout")
    export.add_argument("folder", type=Path)
    export.add_argument("--npz", type=Path, default=None, help="output .npz (published layout)")
    export.add_argument("--nwb", type=Path, default=None, help="output .nwb (needs the nwb extra: pynwb)")
    export.add_argument("--subject", default="unknown", help="NWB subject id (default: unknown)")
    export.add_argument("--species", default="Macaca mulatta", help="NWB subject species")
    export.add_argument("--sex", default="U", choices=("M", "F", "U", "O"), help="NWB subject sex (default U)")
    export.add_argument("--age", default=None, help="NWB subject age, ISO 8601 duration, e.g. P8Y (DANDI requires one)")
    export.add_argument("--force", action="store_true",
                        help="replace an existing --npz/--nwb file (never one of the session's own files)")
    export.set_defaults(run=run_export)
    report = actions.add_parser("report", help="a PNG summary: fits, dropped frames, timeline")
    report.add_argument("folder", type=Path)
    report.add_argument("--png", type=Path, default=None, help="output (default: FOLDER/report.png)")
    report.add_argument("--force", action="store_true",
                        help="replace an existing --png file (never one of the session's own files)")
    report.set_defaults(run=run_report)
    windows = actions.add_parser("windows", help="each unit's latency and counting window; adopt a window from "
                                                 "the spikes kept (the source's counts are kept too)")
    windows.add_argument("folder", type=Path)
    windows.add_argument("--unit", default=None, help="the unit to change (default: every unit)")
    chosen = windows.add_mutually_exclusive_group()
    chosen.add_argument("--adopt", type=window_ms, default=None, metavar="START,END",
                        help="count in START..END ms after the onset (e.g. 70,170)")
    chosen.add_argument("--adopt-suggested", action="store_true",
                        help="count each unit 100 ms from its own latency (estimated from its PSTH)")
    chosen.add_argument("--source-window", action="store_true", help="back to the source's own counts")
    windows.set_defaults(run=run_windows)


def run_session(args: argparse.Namespace) -> int:
    if args.repeats < 1:
        raise CompactRigError("--repeats must be at least 1")
    rig = rig_with_source(args)
    plan = SessionPlan(stimuli=str(args.stimuli), unit_map=parse_unit_map(args.map, "--map"), bank=args.bank,
                       repeats=args.repeats, seed=args.seed,
                       max_dropped_frames=args.max_dropped_frames, max_missing=args.max_missing)
    start_session(args.out, plan, args.rig, rig)
    return _follow(args.out)


def resume_session(args: argparse.Namespace) -> int:
    from compactrig.rig.loop.session_loop import is_loop_session, run_session_loop  # a closed loop resumes too
    if is_loop_session(args.folder):
        return 0 if run_session_loop(args.folder) else 130
    return _follow(args.folder)


def _follow(folder: Path) -> int:
    """Run the session in ``folder`` to its end (Ctrl-C stops it after the image on screen), printing its lines."""
    session = SessionController()
    session.resume(folder)
    return 0 if session.follow(print_messages) else 130


def run_export(args: argparse.Namespace) -> int:
    if args.npz is None and args.nwb is None:
        raise CompactRigError("session export: give --npz FILE and/or --nwb FILE")
    read_snapshot(args.folder)
    outputs = [(flag, path) for flag, path in (("--npz", args.npz), ("--nwb", args.nwb)) if path is not None]
    for flag, path in outputs:
        check_file(path, flag, args.force, session_files(args.folder))
    check_apart(outputs)
    if args.npz is not None:
        def write_npz(path: Path) -> tuple[int, int, int]:
            with open(path, "wb") as handle:  # a handle: the file gets exactly the name given
                return export_npz(args.folder, handle)
        shape = write_atomically(args.npz, write_npz)
        print(f"Wrote responses {shape} (units, images, repeats) to {args.npz}")
    if args.nwb is not None:
        from compactrig.rig.session.nwb_export import export_nwb  # pynwb only when asked for
        check_session(args.folder)  # its stimuli and store are the ones session.json recorded
        written = export_nwb(args.folder, args.nwb, args.subject, args.species, args.sex, args.age)
        print(f"Wrote {written} presentations to {args.nwb}")
    return 0


def window_ms(text: str) -> tuple[float, float]:
    """An argparse ``type``: ``START,END`` in ms after the onset, two finite numbers, start before end."""
    parse = number(float, -5000, 5000)
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"{text!r} is not START,END in ms; give e.g. 70,170")
    start, end = parse(parts[0]), parse(parts[1])
    if start >= end:
        raise argparse.ArgumentTypeError(f"{text}: the start must come before the end")
    return start / 1000, end / 1000


def run_windows(args: argparse.Namespace) -> int:
    read_snapshot(args.folder)
    if args.adopt is not None or args.adopt_suggested or args.source_window:
        window = args.adopt if args.adopt is not None else SUGGESTED if args.adopt_suggested else None
        print(adopt_in_folder(args.folder, args.unit, window))
    elif args.unit is not None:
        raise CompactRigError("session windows: --unit chooses whose window --adopt, --adopt-suggested or "
                              "--source-window changes; give one of them")
    for line in describe_windows(args.folder):
        print(line)
    return 0


def run_report(args: argparse.Namespace) -> int:
    read_snapshot(args.folder)
    default = args.folder / "report.png"
    png = args.png or default
    # the default report.png is the report's own file in the session folder: written again without --force
    check_file(png, "--png", args.force or png.absolute() == default.absolute(), session_files(args.folder))
    from compactrig.rig.session.report import write_report  # Matplotlib only when a report is asked for
    out = write_report(args.folder, png)
    print(f"Wrote {out}")
    return 0
