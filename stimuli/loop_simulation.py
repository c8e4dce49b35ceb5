"""Simulated closed-loop sessions: how fast each way of choosing images teaches the readouts.

One run presents batches chosen by a strategy from a candidate pool, collects responses
through ``respond`` (in the benchmark and tests: the simulated source plugin), refits the
readouts and, at each checkpoint, scores them on held-out test images against the units'
*true* expected responses, so strategies are compared on the same footing whatever
images they chose. The committee strategy starts from random images (``next_batch`` falls back until the
first fit, which here waits for ``WARM_START`` presentations).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from compactrig.engine.readout.ridge import RidgeFit
from compactrig.engine.stats.correlation import pearson_r
from compactrig.engine.stats.response_sums import PerImageSums
from compactrig.stimuli.closed_loop import ResponseLog, next_batch, refit
from compactrig.stimuli.next_images import Strategy

WARM_START = 100
"""Presentations of random natural images before the committee takes over."""


@dataclass(frozen=True)
class Checkpoint:
    """The readouts after ``presentations``: r with the truth on test images, and nested held-out r."""

    presentations: int
    test_r: np.ndarray
    held_out_r: np.ndarray


@dataclass
class SimulatedRun:
    strategy: str
    checkpoints: list[Checkpoint]
    shown: np.ndarray
    """Pool indices in the order they were chosen."""
    fit: RidgeFit | None
    """The last checkpoint's fit (None if the pool ran out before the first)."""
    log: ResponseLog


def simulate_selection(strategy: Strategy, kinds: list[str], pool_features: np.ndarray,
                       respond: Callable[[np.ndarray], np.ndarray], units: list[str],
                       test_features: np.ndarray, test_truth: np.ndarray, checkpoints: list[int],
                       batch_images: int = 25, repeats: int = 2, seed: int = 0, members: int = 8) -> SimulatedRun:
    """Run until the last checkpoint; ``respond(pool indices)`` gives one presentation's counts (n, units)."""
    sums = PerImageSums(units)
    log = ResponseLog(sums)
    ids = [str(i) for i in range(len(kinds))]
    sums.add_images(ids)
    log.add_features(ids, pool_features)
    chosen = np.zeros(len(kinds), dtype=bool)
    order: list[int] = []
    results: list[Checkpoint] = []
    fit: RidgeFit | None = None
    presented, step = 0, 0
    while presented < max(checkpoints):
        data = log.snapshot() if strategy == "committee" and presented >= WARM_START else None
        chooser = refit(data, seed) if data is not None else None  # none yet: the committee chooses at random
        if chooser is not None:
            fit = chooser
        batch = next_batch(strategy, kinds, batch_images, chosen, seed + step, data, chooser, pool_features,
                           members).indices
        if len(batch) == 0:
            break
        chosen[batch] = True
        order += batch.tolist()
        for _ in range(repeats):
            sums.add([ids[i] for i in batch], respond(batch))
        presented += len(batch) * repeats
        step += 1
        due = [c for c in checkpoints if presented >= c and c not in [r.presentations for r in results]]
        if due:
            fit = refit(log.snapshot(), seed)
            test_r = pearson_r(fit.predict(test_features), test_truth)
            results += [Checkpoint(c, test_r, fit.held_out_r) for c in due]
    return SimulatedRun(strategy, results, np.array(order, dtype=np.int64), fit, log)
