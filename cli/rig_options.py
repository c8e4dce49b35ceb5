"""``--rig``, ``--source`` and ``--source-opt``: the rig a session runs with, for the commands that run one.

Apart from ``cli.options`` so that the commands that run no session (``synth``, ``predict``...) do not import
the rig file's reader and the plugins it names (issue 41: what a user waits for)."""

from __future__ import annotations

import argparse
from pathlib import Path

from compactrig.engine.errors import CompactRigError
from compactrig.rig.presenter.rig import RigConfig, load_rig


def add_rig_options(parser: argparse.ArgumentParser) -> None:
    """``--rig``, ``--source`` and ``--source-opt``: the rig a session runs with (``rig_with_source``)."""
    parser.add_argument("--rig", type=Path, default=None, help="rig file (default: the default rig)")
    parser.add_argument("--source", default=None,
                        help="response source (`compactrig sources list`; default: the rig file's [source])")
    parser.add_argument("--source-opt", action="append", default=[], metavar="KEY=VALUE",
                        help="a source option (over the rig file's, when the source is the rig file's)")


def rig_with_source(args: argparse.Namespace) -> RigConfig:
    """The rig file (``--rig``) with the command line's ``--source`` and ``--source-opt``: what the session
    stores as its rig, the one home of its source."""
    options = {}
    for value in args.source_opt:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip():
            raise CompactRigError(f"--source-opt {value!r}: use KEY=VALUE, e.g. --source-opt seed=2")
        options[key.strip()] = rest.strip()
    return load_rig(args.rig).with_source(args.source, options)
