"""Benchmark: compact models for a session treated as new, against that session's published models.

For each chosen session (190923 and 201025 by default), the session's own published models are
set aside: the readouts use only the other sessions' models as features (and as donors of early
filters). ``fit_new_neurons`` gets the first 600 images and their responses (it holds a fifth of
them out for its own validation); everything is then judged on images 601-1200, which nothing
was fitted on. Prints per unit the held-out r (on 601-1200) of the readout, of the compact model and
of the published model (and the readout's and compact model's r on the fifth held out of the fit),
the compact model's parameters and the time per neuron (the shared bank features divided among
the units), then the medians and the median ratios compact / published and readout / published.

    python benchmarks/new_neurons.py                          # both sessions, every unit (hours here)
    python benchmarks/new_neurons.py --sessions 190923        # one session, every unit (~1 h here)
    python benchmarks/new_neurons.py --sessions 190923 --every 4   # every 4th unit (~25 min here)

``--teacher published`` distils the compact models from the units' own published models instead of the
readout (the readout is still fitted and printed). No lab has that teacher for a new neuron; it is the best
teacher there can be, so the compact models' ratio then is what distillation and pruning alone reach: the
ceiling of the method, whatever readout is put in front of it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from compactrig.engine.files.image_files import read_images
from compactrig.engine.models.bank import load_bank, load_directory
from compactrig.engine.models.fast_predict import Predictor
from compactrig.engine.progress import Progress
from compactrig.engine.stats.correlation import pearson_r
from compactrig.stimuli.new_neurons import Teacher, fit_new_neurons, response_sums

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "v4_compact_models"
FIT_IMAGES = 600


def run_session(data: Path, session: str, every: int, out: Path, teacher: str) -> list[tuple]:
    published = load_directory(data / "data_compact_models")
    images = read_images(data / "data_V4_responses" / "images" / f"images_{session}.zip")
    responses = np.load(data / "data_V4_responses" / "responses_repeat_averaged" / f"responses_{session}.npy")
    own = [n for n in published.neuron_ids if n.split(":")[0] == session]
    others = [n for n in published.neuron_ids if n.split(":")[0] != session]
    units = list(range(0, len(own), every))
    began = time.monotonic()
    trials = response_sums(images.ids[:FIT_IMAGES], responses, units)
    test = slice(FIT_IMAGES, len(images.ids))
    own_ids = [f"{session}:{unit}" for unit in units]
    own_models = Predictor(published)
    published_teacher = Teacher(f"published models of session {session}",
                                lambda pixels: own_models.predict(pixels, own_ids))
    made = fit_new_neurons(published, images.ids[:FIT_IMAGES], images.pixels[:FIT_IMAGES], trials, units,
                           f"new{session}", out, feature_neurons=others, progress=_stage_printer(began),
                           judged_pixels=images.pixels[test],
                           teacher=published_teacher if teacher == "published" else None)
    seconds = float(np.mean([neuron.seconds for neuron in made]))
    compact = Predictor(load_bank(out)).predict(images.pixels[test], [n.neuron_id for n in made])
    reference = own_models.predict(images.pixels[test], own_ids)  # made is in the order of units
    rows = []
    for neuron, predicted, published_prediction in zip(made, compact, reference):
        truth = responses[neuron.unit, test]
        rows.append((neuron.neuron_id, float(pearson_r(neuron.readout_judged, truth)),
                     float(pearson_r(predicted, truth)), float(pearson_r(published_prediction, truth)),
                     neuron.n_parameters, seconds))
        print(f"{neuron.neuron_id:>14}  readout r {rows[-1][1]:.3f}  compact r {rows[-1][2]:.3f}  "
              f"published r {rows[-1][3]:.3f}  "
              f"(validation: readout {neuron.readout_r:.3f}, compact {neuron.compact_r:.3f})  "
              f"{neuron.n_parameters} parameters, filters {list(neuron.filters)}, donor {neuron.donor}", flush=True)
    return rows


def _stage_printer(began: float) -> Progress:
    """Progress for a run that takes an hour: one line to stderr whenever the work moves to a new step."""
    last = ""

    def progress(done: int, total: int | None, phase: str = "") -> None:
        nonlocal last
        step = phase.split(":")[0]
        if step != last:
            last = step
            print(f"[{time.monotonic() - began:6.0f} s] {step}", file=sys.stderr, flush=True)
    return progress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("COMPACTRIG_SHARED_DATA", DEFAULT_DATA)))
    parser.add_argument("--sessions", default="190923,201025")
    parser.add_argument("--every", type=int, default=1, help="every Nth unit of the session")
    parser.add_argument("--teacher", choices=("readout", "published"), default="readout",
                        help="what labels the distillation images (published: the ceiling of distillation alone)")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    for session in args.sessions.split(","):
        with tempfile.TemporaryDirectory() as out:
            rows = run_session(args.data, session, args.every, Path(out), args.teacher)
        readout, compact, reference = (np.array([r[k] for r in rows]) for k in (1, 2, 3))
        print(f"session {session}, teacher {args.teacher}: {len(rows)} units; median held-out r readout "
              f"{np.median(readout):.3f}, compact {np.median(compact):.3f}, published {np.median(reference):.3f}; "
              "median ratio "
              f"compact {np.median(compact / reference):.3f} (readout {np.median(readout / reference):.3f}); "
              f"parameters max {max(r[4] for r in rows)}; {rows[0][5]:.0f} s per neuron")


if __name__ == "__main__":
    main()
