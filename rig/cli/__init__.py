"""The ``compactrig`` command: one sub-command per job, errors as one line, exit status 2."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from compactrig.engine.errors import CompactRigError
from compactrig.rig.cli import demo, gaudy_cmd, models, predict, present, session_cmd, sources_cmd, stimuli_cmd, synth

COMMANDS = (demo, models, predict, synth, gaudy_cmd, stimuli_cmd, present, sources_cmd, session_cmd)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser; each command module adds its own sub-command."""
    parser = argparse.ArgumentParser(
        prog="compactrig",
        description="Compact V4 models in closed loop: predict, synthesize, present, record.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND",
                                     description="without a command, compactrig opens its window")
    commands.required = True
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status. No sub-command opens the window."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        from compactrig.gui.app import run_app  # Qt only for the window
        return run_app()
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except CompactRigError as error:
        for line in str(error).splitlines():  # a rig file can have several problems, one per line
            print(f"compactrig: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("compactrig: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
