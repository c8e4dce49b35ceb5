"""The ``compactrig`` command: one sub-command per job, errors as one line, exit status 2.

What a command did not expect (a defect, not the user's input) is one line too, saying what failed
and where its traceback was logged (``compactrig.engine.crash_log``), with exit status 1.

Only the chosen command's module is imported (``COMMANDS``): ``compactrig --help``, ``rig check`` or
``sources list`` never load PyTorch, and neither does the presenter process, which re-imports the
console script when it is spawned."""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from compactrig.engine.crash_log import report_unexpected
from compactrig.engine.errors import CompactRigError

COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "show each neuron's responses to gratings, dot lattices and colour blobs"),
    "models": ("models", "list a bank's neurons or fetch the published models"),
    "predict": ("predict", "predict responses to a folder or zip of images"),
    "screen": ("screen", "keep the images of a large collection that drive each neuron most and least"),
    "synth": ("synth", "synthesize maximizing, minimizing or adversarial images"),
    "gaudy": ("gaudy", "make gaudy (0/255 per channel) images from natural images"),
    "stimuli": ("stimuli", "import natural images into a stimulus set, or show a set"),
    "present": ("present", "show a stimulus set on the rig monitor (PsychoPy)"),
    "rig": ("rig", "write and check rig files"),
    "sources": ("sources", "response sources (plugins)"),
    "session": ("session", "run, resume and export recording sessions"),
    "loop": ("loop", "run a closed-loop session from the terminal, report its readouts"),
    "neurons": ("neurons", "compact models for new neurons (readout, distillation, pruning)"),
}
"""Command -> (module of ``compactrig.cli.commands`` that registers it, the line ``compactrig --help`` shows)."""


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The argument parser: the command named in ``argv`` in full (its module adds it), the others as names."""
    parser = argparse.ArgumentParser(
        prog="compactrig",
        description="Compact V4 models in closed loop: predict, synthesize, present, record.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND",
                                     description="without a command, compactrig opens its window")
    commands.required = True
    chosen = next((a for a in argv if not a.startswith("-")), None)
    if chosen in COMMANDS:
        importlib.import_module(f"compactrig.cli.commands.{COMMANDS[chosen][0]}").register(commands)
    for name, (_, help_line) in COMMANDS.items():
        if name not in commands.choices:
            commands.add_parser(name, help=help_line)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command line with ``argv`` (``sys.argv`` when None); returns the exit status. No sub-command opens
    the window."""
    return _command(argv, freeze=False)


def console() -> NoReturn:
    """The installed ``compactrig`` command: the command line, then the exit.

    A command's process keeps what it imported (PyTorch: about a million objects) to its end, and every full
    collection of the garbage collector walks all of it: during the run, and again, for about 0.3 s, when the
    interpreter shuts down (issue 41: `synth` waits for it). So the objects alive once the command's modules
    are imported, and again at its end, are moved out of the collector's reach (``gc.freeze``); what the run
    makes and drops is still collected and exit handlers still run. What the freeze gives up: objects left in
    a reference cycle at the exit are not finalized, so nothing may rely on that to flush a file (CompactRig's
    own files are closed by ``with`` blocks and ``finally``). ``main`` does none of this, for scripts and
    tests, whose process goes on."""
    status = _command(None, freeze=True)
    gc.freeze()
    sys.exit(status)


def _command(argv: Sequence[str] | None, freeze: bool) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        from compactrig.gui.app import run_app  # Qt only for the window
        return run_app()
    try:
        args = build_parser(argv).parse_args(argv)
        if freeze:
            gc.freeze()
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
    except Exception as error:  # noqa: BLE001 - a defect: one line for the user, the traceback in the log
        command = " ".join(["compactrig", *(a for a in argv[:2] if not a.startswith("-"))])
        print(f"compactrig: error: {report_unexpected(command, error)}", file=sys.stderr)
        return 1
