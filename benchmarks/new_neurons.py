"""Benchmark: compact models for a session treated as new, against that session's published models.

For each chosen session (190923 and 201025 by default), the session's own published models are
set aside: the readouts use only the other sessions' models as features (and as donors of early
filters). ``fit_new_neurons`` gets the first 600 images and their responses (it holds a fifth of
them out for its own validation); everything is then judged on images 601-1200, which nothing
was fitted on. Prints per unit the held-out r (on 601-1200) of the readout, of the compact model and
of the published model (and the readout's and compact model's r on the fifth held out of the fit),
the compact model's parameters and the time its student took, then per session the medians, the
median ratios compact / published and readout / published, and the time per neuron.

The units are fitted once per worker count (``--workers``, default 1 and 2) as jobs on a local Dask
cluster of that many single-threaded workers (what ``neurons fit --cluster local:N`` runs); the models
must be identical, and the time per neuron is the units' wall time plus the shared work (readouts, the
bank features of the recorded and distillation images: paid once, then read from the feature cache,
``compactrig.engine.readout.feature_cache``), divided by the number of units. The shared time is that of
the first run and says whether the features came from the cache.

    python benchmarks/new_neurons.py --sessions 190923 --units 0,4 --workers 2   # small: minutes
    python benchmarks/new_neurons.py --sessions 190923 --every 4                 # every 4th unit
    python benchmarks/new_neurons.py                                             # both sessions, every unit (hours)

``--library others`` distils on every image of the other sessions too (``neurons fit --library``; none of them
is one of the judged session's images). ``--train-from-stage 1`` (with ``--whole-epochs``) measures students
trained from stage 1 (``neurons fit``'s option). ``--teacher published`` distils the compact models from the
units' own published models instead of the readout (the readout is still fitted and printed). No lab has that
teacher for a new neuron; it is the best teacher there can be, so the compact models' ratio then is what
distillation and pruning alone reach.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from compactrig.engine.compute.cluster import open_client
from compactrig.engine.files.image_files import read_images
from compactrig.engine.models.bank import load_bank, load_directory
from compactrig.engine.models.fast_predict import Predictor
from compactrig.engine.progress import Progress
from compactrig.engine.stats.correlation import pearson_r
from compactrig.engine.training.unit_jobs import run_on_cluster
from compactrig.stimuli.new_neurons import NewNeuron, NewNeuronSettings, Teacher, fit_new_neurons, response_sums

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "v4_compact_models"
FIT_IMAGES = 600
UNITS_PHASE = "units on the cluster"


def other_sessions_images(data: Path, session: str) -> np.ndarray:
    """Every image of the other sessions' recordings (none of them is one of ``session``'s): a library of
    natural images whose responses the judged session never had."""
    zips = sorted((data / "data_V4_responses" / "images").glob("images_*.zip"))
    return np.concatenate([read_images(path).pixels for path in zips if path.stem != f"images_{session}"])


def run_session(data: Path, session: str, units: list[int] | None, every: int, workers: list[int],
                settings: NewNeuronSettings, teacher: str,
                library: str) -> tuple[list[tuple], dict[int, float], float]:
    """Rows per unit, the units' wall seconds per worker count, and the shared seconds of the first run."""
    folder = data / "data_compact_models"
    published = load_directory(folder)
    images = read_images(data / "data_V4_responses" / "images" / f"images_{session}.zip")
    library_pixels = other_sessions_images(data, session) if library == "others" else None
    responses = np.load(data / "data_V4_responses" / "responses_repeat_averaged" / f"responses_{session}.npy")
    own = [n for n in published.neuron_ids if n.split(":")[0] == session]
    if not own:
        raise SystemExit(f"session {session} has no published models here to judge the compact ones against")
    others = [n for n in published.neuron_ids if n.split(":")[0] != session]
    units = units if units is not None else list(range(0, len(own), every))
    trials = response_sums(images.ids[:FIT_IMAGES], responses, units)
    test = slice(FIT_IMAGES, len(images.ids))
    own_ids = [f"{session}:{unit}" for unit in units]
    own_models = Predictor(published)
    published_teacher = Teacher(f"published models of session {session}",
                                lambda pixels: own_models.predict(pixels, own_ids))
    unit_seconds: dict[int, float] = {}
    shared = float("nan")
    made: list[NewNeuron] = []
    states: list[dict] = []
    for n_workers in workers:
        with tempfile.TemporaryDirectory() as out, open_client(f"local:{n_workers}") as client:
            began = time.monotonic()
            marks: dict[str, float] = {}
            made = fit_new_neurons(published, images.ids[:FIT_IMAGES], images.pixels[:FIT_IMAGES], trials, units,
                                   f"new{session}", Path(out), settings, feature_neurons=others,
                                   progress=_stage_printer(began, marks), judged_pixels=images.pixels[test],
                                   teacher=published_teacher if teacher == "published" else None,
                                   runner=run_on_cluster(client, str(folder.resolve())), library=library_pixels)
            ended = time.monotonic()
            unit_seconds[n_workers] = ended - marks[UNITS_PHASE]
            if np.isnan(shared):
                shared = marks[UNITS_PHASE] - began
            bank = load_bank(out)
            compact = Predictor(bank).predict(images.pixels[test], [n.neuron_id for n in made])
            states.append({n.neuron_id: bank.state_dict(n.neuron_id) for n in made})
        print(f"session {session}: {len(units)} units on {n_workers} local worker(s) in "
              f"{unit_seconds[n_workers]:.0f} s", file=sys.stderr, flush=True)
    same = all(a.keys() == b.keys() and all(torch.equal(a[n][k], b[n][k]) for n in a for k in a[n])
               for a, b in zip(states, states[1:]))
    if not same:
        raise SystemExit("the models differ between worker counts: they must be identical")
    reference = own_models.predict(images.pixels[test], own_ids)  # made is in the order of units
    rows = []
    for neuron, predicted, published_prediction in zip(made, compact, reference):
        truth = responses[neuron.unit, test]
        rows.append((neuron.neuron_id, float(pearson_r(neuron.readout_judged, truth)),
                     float(pearson_r(predicted, truth)), float(pearson_r(published_prediction, truth)),
                     neuron.n_parameters, neuron.seconds))
        print(f"{neuron.neuron_id:>14}  readout r {rows[-1][1]:.3f}  compact r {rows[-1][2]:.3f}  "
              f"published r {rows[-1][3]:.3f}  "
              f"(validation: readout {neuron.readout_r:.3f}, compact {neuron.compact_r:.3f})  "
              f"{neuron.n_parameters} parameters, filters {list(neuron.filters)}, donor {neuron.donor}, "
              f"student {neuron.seconds:.0f} s", flush=True)
    return rows, unit_seconds, shared


def _stage_printer(began: float, marks: dict[str, float]) -> Progress:
    """Progress for a run that takes an hour: one line to stderr whenever the work moves to a new step, and
    when each step began (``marks``)."""
    last = ""

    def progress(done: int, total: int | None, phase: str = "") -> None:
        nonlocal last
        step = phase.split(":")[0]
        if step != last:
            last = step
            marks.setdefault(step, time.monotonic())
            print(f"[{time.monotonic() - began:6.0f} s] {step}", file=sys.stderr, flush=True)
    return progress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("COMPACTRIG_SHARED_DATA", DEFAULT_DATA)))
    parser.add_argument("--sessions", default="190923,201025")
    parser.add_argument("--every", type=int, default=1, help="every Nth unit of the session")
    parser.add_argument("--units", default=None, help="comma-separated units of each session (instead of --every)")
    parser.add_argument("--workers", default="1,2", help="local Dask worker counts to time, e.g. 1,2 or 2")
    parser.add_argument("--train-from-stage", type=int, default=None, help="as neurons fit's option")
    parser.add_argument("--whole-epochs", type=int, default=None, help="as neurons fit's option")
    parser.add_argument("--epochs", type=int, default=None, help="the students' epochs (default: the product's)")
    parser.add_argument("--side-by-side", choices=("yes", "no"), default=None,
                        help="a unit's two donors in one student (default: the product's)")
    parser.add_argument("--library", choices=("none", "others"), default="none",
                        help="more natural images to distil on (others: every image of the other sessions)")
    parser.add_argument("--teacher", choices=("readout", "published"), default="readout",
                        help="what labels the distillation images (published: the ceiling of distillation alone)")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    distill = NewNeuronSettings().distill
    chosen = {"train_from_stage": args.train_from_stage, "whole_epochs": args.whole_epochs, "epochs": args.epochs,
              "side_by_side": None if args.side_by_side is None else args.side_by_side == "yes"}
    settings = NewNeuronSettings(distill=replace(distill, **{k: v for k, v in chosen.items() if v is not None}))
    units = [int(u) for u in args.units.split(",")] if args.units else None
    workers = [int(w) for w in args.workers.split(",")]
    for session in args.sessions.split(","):
        rows, unit_seconds, shared = run_session(args.data, session, units, args.every, workers, settings,
                                                 args.teacher, args.library)
        readout, compact, reference = (np.array([r[k] for r in rows]) for k in (1, 2, 3))
        n = len(rows)
        per_neuron = ", ".join(f"{w} worker(s) {(unit_seconds[w] + shared) / n:.0f} s" for w in workers)
        speedup = (f"; {max(workers)} workers take {unit_seconds[max(workers)] / unit_seconds[min(workers)]:.2f}x "
                   f"the units' time of {min(workers)}" if len(workers) > 1 else "")
        print(f"session {session}, teacher {args.teacher}, library {args.library}, epochs {settings.distill.epochs}, "
              f"train from stage {settings.distill.train_from_stage}, side by side {settings.distill.side_by_side}: "
              f"{n} units; median held-out r readout {np.median(readout):.3f}, compact {np.median(compact):.3f}, "
              f"published {np.median(reference):.3f}; median ratio compact {np.median(compact / reference):.3f} "
              f"(readout {np.median(readout / reference):.3f}); parameters max {max(r[4] for r in rows)}; "
              f"per neuron: {per_neuron} (shared {shared:.0f} s of it, readouts and bank features, "
              f"paid once){speedup}", flush=True)


if __name__ == "__main__":
    main()
