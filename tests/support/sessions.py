"""The session tests' small rig file, and what a session folder's trial store holds, read with sqlite3."""

from __future__ import annotations

import sqlite3
from pathlib import Path

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
