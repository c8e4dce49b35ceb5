"""``compactrig models list|fetch``: what a bank holds, and getting the published one."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from compactrig.cli.options import add_bank_option, open_bank, progress_bar
from compactrig.engine.models.fetch import DEFAULT_URL, PUBLISHED_SHA256, fetch_models


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("models", help="list a bank's neurons or fetch the published models")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    listing = actions.add_parser("list", help="one line per neuron: id, parameters, filters per stage")
    add_bank_option(listing)
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(run=run_list)

    fetch = actions.add_parser("fetch", help="download the 219 published compact models")
    fetch.add_argument("--dest", type=Path, default=None,
                       help="where to store them (default: the user data directory)")
    fetch.add_argument("--url", default=None, help=f"archive to download (default: $COMPACTRIG_MODELS_URL, else "
                                                  f"{DEFAULT_URL})")
    fetch.add_argument("--sha256", default=PUBLISHED_SHA256,
                       help="content hash the weights must have (default: the published models'; 'any' accepts any)")
    fetch.add_argument("--force", action="store_true",
                       help="replace --dest even if it holds files and is not a bank fetched before (deletes them)")
    fetch.set_defaults(run=run_fetch)


def run_list(args: argparse.Namespace) -> int:
    bank = open_bank(args)
    rows: list[dict[str, Any]] = [
        {"id": n.neuron_id, "params": n.n_params, "filters": list(n.filters), "label": n.label} for n in bank.neurons]
    if args.json:
        print(json.dumps({"bank": bank.name, "source": bank.source, "neurons": rows}, indent=1))
        return 0
    id_width = max(len(r["id"]) for r in rows)
    print(f"{'id':<{id_width}}  {'params':>7}  filters per stage")
    for row in rows:
        filters = " ".join(f"{n:>3}" for n in row["filters"])
        print(f"{row['id']:<{id_width}}  {row['params']:>7}  {filters}  {row['label']}".rstrip())
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    bar, update = progress_bar("downloading", unit="B")
    bar.unit_scale = True
    try:
        bank = fetch_models(args.dest, args.url, progress=update,
                            sha256=None if args.sha256.lower() == "any" else args.sha256.lower(), force=args.force)
    finally:
        bar.close()
    print(f"Fetched {len(bank)} compact models into {bank.source}; every one loads. "
          f"Use them with --bank {bank.source} (or --bank published).")
    return 0
