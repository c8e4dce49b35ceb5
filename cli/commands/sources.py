"""``compactrig sources list``: the installed response sources and their options."""

from __future__ import annotations

import argparse

from compactrig.plugins.registry import RESPONSE_SOURCES, available, load_plugin


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("sources", help="response sources (plugins)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    listing = actions.add_parser("list", help="installed response sources and their options")
    listing.set_defaults(run=run_list)


def run_list(args: argparse.Namespace) -> int:
    for name, point in sorted(available(RESPONSE_SOURCES).items()):
        source = load_plugin(RESPONSE_SOURCES, name)
        print(f"{name}  ({point.value})\n    {source.description}")
        for option in source.options:
            print(f"    {option.name:<20} {option.kind.__name__:<5} default {option.default!r:<10} {option.help}")
    return 0
