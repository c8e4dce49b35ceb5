"""The per-unit readout table, as the window's closed-loop panel and ``compactrig loop report`` show it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from compactrig.engine.readout.ridge import RidgeFit
from compactrig.stimuli.closed_loop import strongest_of

READOUT_COLUMNS = ("unit", "images", "penalty", "held-out r", "r2_ER", "reads most from")
STRONGEST_SHOWN = 3
"""Bank neurons named in the last column."""


def readout_rows(fit: RidgeFit, units: Sequence[str], neuron_ids: Sequence[str],
                 owners: np.ndarray) -> list[tuple[str, ...]]:
    """One row of cells (``READOUT_COLUMNS``) per fitted unit; ``owners[f]`` is feature f's neuron."""
    rows: list[tuple[str, ...]] = []
    for row, unit in enumerate(list(units)[:len(fit.held_out_r)]):
        strongest = ", ".join(f"{neuron} {weight:+.2f}"
                              for neuron, weight in strongest_of(fit, neuron_ids, owners, row, STRONGEST_SHOWN))
        r2 = fit.r2_er[row]
        rows.append((unit, str(fit.images_fitted[row]), f"{fit.alphas[row]:.2g}", f"{fit.held_out_r[row]:.3f}",
                     f"{r2:.3f}" if np.isfinite(r2) else "", strongest))
    return rows
