"""The trial store: every presentation and every response, durable as it happens.

SQLite in WAL mode with ``synchronous=FULL``: each presentation and each response is its
own committed transaction, so a SIGKILL at any moment loses at most the presentation in
flight. The plan (images x repeats, shuffled per block) is stored up front; a plan item
is *complete* when a presentation of it was shown without abort *and* its response was
stored. Everything else is put back into the plan, which is what makes resume exact.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS plan (item INTEGER PRIMARY KEY, image_id TEXT NOT NULL, block INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS presentations (
    ord INTEGER PRIMARY KEY, item INTEGER NOT NULL REFERENCES plan(item), trial INTEGER NOT NULL,
    image_id TEXT NOT NULL, onset_time REAL NOT NULL, frames INTEGER NOT NULL, dropped INTEGER NOT NULL,
    marker_sent INTEGER NOT NULL, aborted INTEGER NOT NULL, abort_reason TEXT, recorded_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS responses (
    ord INTEGER NOT NULL REFERENCES presentations(ord), unit TEXT NOT NULL, count REAL NOT NULL,
    window_start REAL NOT NULL, window_end REAL NOT NULL, PRIMARY KEY (ord, unit));
"""


@dataclass(frozen=True)
class StoredPresentation:
    order: int
    item: int
    trial: int
    image_id: str
    onset_time: float
    frames: int
    dropped: int
    marker_sent: bool
    aborted: bool
    abort_reason: str | None


class TrialStore:
    """One session's ``trials.sqlite``; open it only while holding the session lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _write(self, sql: str, rows: list[tuple]) -> None:
        with self._db:  # one transaction, committed (and synced) on exit
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(sql, rows)

    def set_meta(self, key: str, value: str) -> None:
        self._write("INSERT OR REPLACE INTO meta VALUES (?, ?)", [(key, value)])

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def write_plan(self, image_ids: list[str], blocks: list[int]) -> None:
        """Append plan items (numbered on from the last), all in one transaction."""
        first, first_block = self._db.execute("SELECT COALESCE(MAX(item) + 1, 0), COALESCE(MAX(block) + 1, 0) "
                                              "FROM plan").fetchone()
        self._write("INSERT INTO plan VALUES (?, ?, ?)",
                    [(first + k, image_id, first_block + block) for k, (image_id, block)
                     in enumerate(zip(image_ids, blocks))])

    def plan(self) -> list[tuple[int, str]]:
        return self._db.execute("SELECT item, image_id FROM plan ORDER BY item").fetchall()

    def record_presentation(self, p: StoredPresentation) -> None:
        self._write("INSERT INTO presentations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(p.order, p.item, p.trial, p.image_id, p.onset_time, p.frames, p.dropped, int(p.marker_sent),
                      int(p.aborted), p.abort_reason, time.time())])

    def record_response(self, order: int, counts: dict[str, float], window: tuple[float, float]) -> None:
        self._write("INSERT INTO responses VALUES (?, ?, ?, ?, ?)",
                    [(order, unit, float(count), window[0], window[1]) for unit, count in counts.items()])

    def mark_aborted(self, order: int, reason: str) -> None:
        self._write("UPDATE presentations SET aborted = 1, abort_reason = ? WHERE ord = ?", [(reason, order)])

    def presentations(self) -> list[StoredPresentation]:
        rows = self._db.execute("SELECT ord, item, trial, image_id, onset_time, frames, dropped, marker_sent, "
                                "aborted, abort_reason FROM presentations ORDER BY ord").fetchall()
        return [StoredPresentation(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), bool(r[8]), r[9])
                for r in rows]

    def responses(self) -> list[tuple[int, str, float]]:
        return self._db.execute("SELECT ord, unit, count FROM responses ORDER BY ord, unit").fetchall()

    def next_order(self) -> int:
        row = self._db.execute("SELECT MAX(ord) FROM presentations").fetchone()
        return 0 if row[0] is None else row[0] + 1

    def settle_unanswered(self, reason: str) -> int:
        """Presentations shown but without a response become aborted (their items go back in the plan)."""
        orders = [r[0] for r in self._db.execute(
            "SELECT ord FROM presentations WHERE aborted = 0 AND ord NOT IN (SELECT DISTINCT ord FROM responses)")]
        self._write("UPDATE presentations SET aborted = 1, abort_reason = ? WHERE ord = ?",
                    [(reason, o) for o in orders])
        return len(orders)

    def completed_items(self) -> set[int]:
        rows = self._db.execute("SELECT DISTINCT p.item FROM presentations p JOIN responses r ON r.ord = p.ord "
                                "WHERE p.aborted = 0").fetchall()
        return {r[0] for r in rows}

    def remaining(self) -> list[tuple[int, str]]:
        """Plan items not yet complete, in plan order."""
        done = self.completed_items()
        return [(item, image_id) for item, image_id in self.plan() if item not in done]
