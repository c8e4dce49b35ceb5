"""``compactrig rig init``, ``rig check`` and ``rig calibrate``: write a commented rig file, validate one before a
session, and calibrate its ioHub eye tracker."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compactrig.plugins.registry import check_rig_plugins
from compactrig.rig.presenter.rig import load_rig, write_default_rig


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("rig", help="write and check rig files")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    init = actions.add_parser("init", help="write a commented default rig file")
    init.add_argument("file", type=Path)
    init.set_defaults(run=run_rig_init)
    check = actions.add_parser("check", help="validate a rig file and print what it derives")
    check.add_argument("file", type=Path)
    check.set_defaults(run=run_rig_check)
    calibrate = actions.add_parser("calibrate", help="run the calibration of the rig's ioHub eye tracker (gate iohub)")
    calibrate.add_argument("file", type=Path)
    calibrate.set_defaults(run=run_rig_calibrate)


def run_rig_init(args: argparse.Namespace) -> int:
    print(f"Wrote {write_default_rig(args.file)}; edit it for your monitor, then `compactrig rig check {args.file}`")
    return 0


def run_rig_check(args: argparse.Namespace) -> int:
    rig = load_rig(args.file)
    check_rig_plugins(rig)  # what a session checks before it starts: installed, options valid, nothing connected
    side = rig.drawn_image_px()
    x, y = rig.pixel_aligned_position(side)
    print(f"{args.file}: valid. {rig.pixels_per_degree:.2f} px/deg; {rig.describe_drawn_image()}, centred at "
          f"({x:g}, {y:g}) px; "
          f"{rig.frames_on} frames on ({1000 * rig.frames_on / rig.refresh_hz:.1f} ms), {rig.frames_off} off, "
          f"{rig.images_per_trial} images per trial")
    markers = ", ".join(name for name in rig.marker_outputs if name != "none") or "none"
    print(f"source {rig.source_name!r}, gate {rig.gate_name!r}, marker outputs {markers}: installed, options valid "
          "(not connected)")
    if rig.fixation_overlaps_image():
        print(f"warning: the fixation dot ({rig.fixation_size_deg:g} deg at the screen centre) covers part of the "
              f"image, so the animal does not see the PNG's pixels there; move [image] position_deg",
              file=sys.stderr)
    return 0


def run_rig_calibrate(args: argparse.Namespace) -> int:
    from compactrig.rig.presenter.iohub_gate import calibrate
    rig = load_rig(args.file)
    print("Calibrating on the rig screen: space starts it (and each target when not paced), Escape aborts",
          file=sys.stderr)
    print(calibrate(rig))
    return 0
