"""The session tests' small rig file, and what a session folder's trial store holds, read with sqlite3."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

RIG = """[screen]
resolution = [400, 300]
width_cm = 40.0
[image]
size_deg = 3.0
[timing]
frames_on = 3
frames_off = 2
images_per_trial = 2
inter_trial_s = 0.0
"""


def table(folder: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(folder / "trials.sqlite") as db:
        return db.execute(sql).fetchall()


def stored_spikes(folder: Path) -> dict[int, tuple[tuple[float, float], dict[str, np.ndarray]]]:
    """Presentation -> (span, unit -> spike times s from the onset), decoded from the store's raw ``spikes``
    rows here (uint32 spikes per unit in the ``units`` table's order, then float32 times unit after unit),
    not through the product's reader."""
    units = [u for (u,) in table(folder, "SELECT unit FROM units ORDER BY rowid")]
    decoded = {}
    for order, start, end, per_unit, times in table(folder, "SELECT ord, span_start, span_end, per_unit, times "
                                                            "FROM spikes"):
        sizes, values = np.frombuffer(per_unit, "<u4"), np.frombuffer(times, "<f4").astype(np.float64)
        bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        decoded[order] = ((start, end), {units[k]: values[bounds[k]:bounds[k + 1]] for k in range(len(sizes))})
    return decoded


def counted_in(folder: Path) -> list:
    """The session's counts as everything that reads them does (fits, report, exports)."""
    from compactrig.rig.session.folder import read_snapshot
    from compactrig.rig.session.integrity import open_session_store
    from compactrig.rig.session.windows import counted_responses

    store = open_session_store(folder, read_snapshot(folder))
    try:
        return counted_responses(store)
    finally:
        store.close()


def count_so_far(folder: Path, sql: str) -> int:
    """A COUNT while a session is being created or run: 0 until its store and tables exist."""
    if not (folder / "trials.sqlite").exists():
        return 0
    try:
        return table(folder, sql)[0][0]
    except sqlite3.OperationalError:  # the file is there, its tables not yet
        return 0


def check_exactly_once(folder: Path, n_planned: int, n_units: int = 3) -> None:
    """Every planned presentation is present exactly once, complete with its response."""
    complete = table(folder, "SELECT p.item, p.image_id FROM presentations p WHERE p.aborted = 0 "
                             "AND p.ord IN (SELECT ord FROM responses)")
    assert sorted(item for item, _ in complete) == list(range(n_planned))
    plan = dict(table(folder, "SELECT item, image_id FROM plan"))
    assert all(plan[item] == image for item, image in complete)
    units = table(folder, "SELECT ord, COUNT(*) FROM responses GROUP BY ord")
    assert {count for _, count in units} == {n_units}, "every stored response has every unit"
