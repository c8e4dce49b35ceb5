"""``compactrig demo``: the embedded neurons' responses to generated probe images."""

from __future__ import annotations

import argparse

import numpy as np

from compactrig.cli.options import add_bank_option, open_bank
from compactrig.engine.models.fast_predict import Predictor
from compactrig.stimuli.probes import standard_probes


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo", help="show each neuron's responses to gratings, dot lattices and colour blobs",
        description="Predict each neuron's response to generated probe images and print a table; "
                    "* marks each neuron's preferred probe.")
    add_bank_option(parser)
    parser.set_defaults(run=run)


def format_table(probe_rows: list[tuple[str, str]], columns: list[str], values: np.ndarray) -> str:
    """Probes as rows, neurons as columns, the best probe of each neuron starred."""
    best = values.argmax(axis=1)
    name_width = max(len(pid) for pid, _ in probe_rows)
    desc_width = max(len(desc) for _, desc in probe_rows)
    widths = [max(len(c), 9) for c in columns]
    header = f"{'probe':<{name_width}}  {'description':<{desc_width}}  " + "  ".join(
        f"{c:>{w}}" for c, w in zip(columns, widths))
    lines = [header, "-" * len(header)]
    for row, (probe_id, description) in enumerate(probe_rows):
        cells = [f"{values[col, row]:.3f}{'*' if best[col] == row else ' '}" for col in range(len(columns))]
        lines.append(f"{probe_id:<{name_width}}  {description:<{desc_width}}  " + "  ".join(
            f"{cell:>{w + 1}}" for cell, w in zip(cells, widths)))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    bank = open_bank(args)
    probes = standard_probes()
    values = Predictor(bank).predict(np.stack([p.pixels for p in probes]))
    columns = [f"{n.neuron_id} {n.label}".strip() for n in bank.neurons]
    print(f"Bank: {bank.name} ({bank.source}), {len(bank)} neurons. Predicted responses (arbitrary units):")
    print(format_table([(p.probe_id, p.description) for p in probes], columns, values))
    return 0
