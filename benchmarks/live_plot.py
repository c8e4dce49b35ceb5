"""Live-fit view speed: 100 units, 10,000 presentations so far; add a batch and redraw (goal <= 50 ms).

Builds the real ``LiveFitsTab`` over a ``LiveSession`` (offscreen or under Xvfb), fills it with
10,000 simulated presentations, then times, per batch of ``--batch`` presentations (one tick's
``ResponseStored`` events), adding them to the live session and redrawing the view (table,
focused unit's scatter, line and history, painted with ``repaint``). The straightforward
alternative, per unit a Python list of responses per image updated sample by sample with every
unit's r and r2_ER recomputed from them, is timed in the same run for the ratio.

The raster case: the same 100 units x 10,000 presentations with spike times (``SpikeRasters``, about
10 spikes per unit and presentation) and the Spikes page shown; timed per batch, adding it and
redrawing the focused unit's raster and PSTH and every unit's PSTH image (``setData``), painted.

    QT_QPA_PLATFORM=offscreen python benchmarks/live_plot.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PyQt6.QtWidgets import QApplication  # noqa: E402

from compactrig.engine.stats.r2_er import r2_er  # noqa: E402
from compactrig.gui.live_fits_tab import LiveFitsTab  # noqa: E402
from compactrig.rig.session.events import ResponseStored, SessionStarted  # noqa: E402
from compactrig.rig.session.live import LiveSession  # noqa: E402


class StraightforwardUnit:
    """One unit's responses as lists per image; r and r2_ER recomputed from them on demand."""

    def __init__(self, predictions: dict[str, float]) -> None:
        self.predictions = predictions
        self.responses: dict[str, list[float]] = {}

    def add(self, image_id: str, count: float) -> None:
        self.responses.setdefault(image_id, []).append(count)

    def summary(self) -> tuple[float, float]:
        ids = list(self.responses)
        x = np.array([self.predictions[i] for i in ids])
        trials = [np.array(self.responses[i]) for i in ids]
        y = np.array([t.mean() for t in trials])
        counts = np.array([len(t) for t in trials])
        return (float(np.corrcoef(x, y)[0, 1]),
                r2_er(x, np.array([t.sum() for t in trials]), np.array([(t * t).sum() for t in trials]), counts))


def timed_batches(app: QApplication, args: argparse.Namespace, tab: LiveFitsTab, feed: Callable[[list], None],
                  responses: Callable[[int, int], list]) -> list[float]:
    """Seconds to add each of ``args.repeats`` batches after the presentations so far and paint the view."""
    times = []
    for k in range(args.repeats):
        start = args.presentations + k * args.batch
        batch = responses(start, start + args.batch)
        began = time.perf_counter()
        feed(batch)
        tab.repaint()
        app.processEvents()
        times.append(time.perf_counter() - began)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--presentations", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=25, help="presentations per redraw (one 40 ms tick's worth)")
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()

    app = QApplication.instance() or QApplication([])
    rng = np.random.default_rng(0)
    units = [f"unit{k}" for k in range(args.units)]
    image_ids = [f"image{i:04d}" for i in range(args.images)]
    predictions = rng.normal(size=(args.units, args.images))
    total = args.presentations + args.batch * args.repeats
    shown = rng.integers(0, args.images, total)
    counts = rng.poisson(np.maximum(0.0, 3 + 2 * predictions[:, shown].T)).astype(float)

    live = LiveSession()
    tab = LiveFitsTab(live, lambda unit, window: "")
    tab.resize(1200, 760)
    tab.show()

    def feed(events: list) -> None:
        live.take_events(events)
        tab.take_events(events)

    def responses(start: int, stop: int) -> list:
        return [ResponseStored(image_ids[i], dict(zip(units, row))) for i, row in zip(shown[start:stop],
                                                                                     counts[start:stop])]

    feed([SessionStarted(units, image_ids, dict(zip(units, predictions)), {}, [], total)])
    for start in range(0, args.presentations, 500):
        feed(responses(start, min(start + 500, args.presentations)))
    app.processEvents()

    ours = timed_batches(app, args, tab, feed, responses)

    fits = [StraightforwardUnit(dict(zip(image_ids, row))) for row in predictions]
    for p in range(args.presentations):
        for unit, fit in enumerate(fits):
            fit.add(image_ids[shown[p]], counts[p, unit])
    straightforward = []
    for k in range(min(args.repeats, 10)):
        start = args.presentations + k * args.batch
        began = time.perf_counter()
        for p in range(start, start + args.batch):
            for unit, fit in enumerate(fits):
                fit.add(image_ids[shown[p]], counts[p, unit])
        for fit in fits:
            fit.summary()
        straightforward.append(time.perf_counter() - began)

    median, worst = statistics.median(ours) * 1e3, max(ours) * 1e3
    reference = statistics.median(straightforward) * 1e3
    print(f"{args.units} units, {args.images} images, {args.presentations} presentations, batches of {args.batch}")
    print(f"add batch + redraw (LiveFitsTab):          median {median:6.1f} ms, worst {worst:6.1f} ms")
    print(f"add batch + summaries, per-unit lists:    median {reference:6.1f} ms (no drawing)")
    print(f"ratio (straightforward / ours): {reference / median:.1f}x; goal <= 50 ms: "
          f"{'met' if median <= 50 else 'NOT met'}")
    rasters_case(app, args, units, image_ids, predictions, shown, counts)
    tab.close()


SPAN = (-0.1, 0.4)


def rasters_case(app: QApplication, args: argparse.Namespace, units: list[str], image_ids: list[str],
                 predictions: np.ndarray, shown: np.ndarray, counts: np.ndarray) -> None:
    """Add a batch with spike times and redraw the Spikes page (raster, PSTH, population image)."""
    rng = np.random.default_rng(1)
    baseline = rng.poisson(4, counts.shape)  # over the whole span, then the counted ones in 60..160 ms
    n_spikes = (baseline + counts).astype(np.int64).ravel()
    bounds = np.concatenate([[0], np.cumsum(n_spikes)])
    within = np.arange(bounds[-1]) - np.repeat(bounds[:-1], n_spikes)
    flat = np.where(within >= np.repeat(baseline.ravel(), n_spikes), rng.uniform(0.06, 0.16, bounds[-1]),
                    rng.uniform(*SPAN, bounds[-1])).astype(np.float32)

    def spikes(p: int) -> dict[str, np.ndarray]:
        cells = p * len(units) + np.arange(len(units))
        return {unit: flat[bounds[c]:bounds[c + 1]] for unit, c in zip(units, cells)}

    live = LiveSession()
    tab = LiveFitsTab(live, lambda unit, window: "")
    tab.resize(1200, 760)
    tab.show()
    tab.pages.setCurrentWidget(tab.spikes)

    def feed(events: list) -> None:
        live.take_events(events)
        tab.take_events(events)

    def responses(start: int, stop: int) -> list:
        return [ResponseStored(image_ids[shown[p]], dict(zip(units, counts[p])), p, spikes(p), SPAN)
                for p in range(start, stop)]

    began = time.perf_counter()
    feed([SessionStarted(units, image_ids, dict(zip(units, predictions)), {}, [], len(shown))])
    for start in range(0, args.presentations, 500):
        feed(responses(start, min(start + 500, args.presentations)))
    filled = time.perf_counter() - began
    stored = int(n_spikes[:args.presentations * len(units)].sum())
    while tab.spikes.estimating:  # the focused unit's latency, estimated once in its job
        app.processEvents()
        time.sleep(0.01)

    drawn = timed_batches(app, args, tab, feed, responses)
    tab.spikes.stop_jobs()
    median, worst = statistics.median(drawn) * 1e3, max(drawn) * 1e3
    print(f"rasters: {len(units)} units, {args.presentations} presentations so far, about {stored:,} spikes "
          f"(filled in {filled:.1f} s)")
    print(f"add batch + redraw (fits, raster, PSTH, population): median {median:6.1f} ms, worst {worst:6.1f} ms; "
          f"goal <= 50 ms: {'met' if median <= 50 else 'NOT met'}")
    tab.close()


if __name__ == "__main__":
    main()
