"""The trial store: every presentation and every response, durable as it happens.

SQLite in WAL mode with ``synchronous=FULL``: each presentation and each response is its
own committed transaction, so a SIGKILL at any moment loses at most the presentation in
flight. The plan (images x repeats, shuffled per block) is stored up front; a plan item
is *complete* when a presentation of it was shown without abort *and* its response was
stored. Everything else is put back into the plan, which is what makes resume exact, except an
item whose response went missing ``max_missing`` times: it is left out and reported.

A presentation's row is written at its onset flip (so a crash mid-image still leaves it, and it
is settled as interrupted) and finished with its frames and offset when the image is gone.
Presentation numbers are reserved durably before the presenter is told them, so a number that
reached the recording system's marker stream is never given to another image, even after a crash.
Every digital word an event-code output sent is kept in ``event_codes`` (output, event, presentation
or trial, word, the time it went out on the LSL clock), in the order sent; stores from before it get
the table, empty, when opened.
A unit first heard from mid-session gets a count of 0 for every response already stored: those
windows were recorded (the source was connected) and the unit did not fire in them.
A response from a source that sees spikes keeps every unit's spike times around the onset in ``spikes``,
in the same transaction as its counts: one row per presentation, its span and two blobs (each unit's
number of spikes, as uint32 in the order the units became known, and all their times, float32 s from the
onset, unit after unit): about 4 bytes a spike, so 100 units x 10,000 presentations at 20 spikes each take
some 80 MB. A presentation without a row was counted only (a replayed recording).
A counting window the experimenter adopted from the spikes is kept in ``count_windows`` (unit, or ``ALL_UNITS``
for every unit without one of its own); the counts as the source delivered them are never changed.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compactrig.engine.errors import CompactRigError

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
CREATE TABLE IF NOT EXISTS trials (
    trial INTEGER PRIMARY KEY, start_time REAL, end_time REAL, images INTEGER NOT NULL,
    aborted INTEGER NOT NULL, abort_reason TEXT);
CREATE TABLE IF NOT EXISTS units (unit TEXT PRIMARY KEY, first_order INTEGER, declared INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS spikes (
    ord INTEGER PRIMARY KEY REFERENCES presentations(ord), span_start REAL NOT NULL, span_end REAL NOT NULL,
    per_unit BLOB NOT NULL, times BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS count_windows (
    unit TEXT PRIMARY KEY, window_start REAL NOT NULL, window_end REAL NOT NULL, adopted_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS event_codes (
    output TEXT NOT NULL, event TEXT NOT NULL, ord INTEGER, trial INTEGER, word INTEGER NOT NULL,
    sent_time REAL NOT NULL);
"""
ADDED_COLUMNS = {"presentations": (("offset_time", "REAL"), ("abort_kind", "TEXT"))}
"""Columns newer than the first store format, added to older stores when they are opened."""
MISSING = "missing"
"""``abort_kind`` of a presentation whose response never came (the source was not connected, or
sent nothing in time); items missing ``max_missing`` times are left out of the plan. The other kinds:
fixation, stopped, dropped_frames, interrupted, markers (a marker output failed)."""
MARKERS_FAILED = "markers"
ALL_UNITS = ""
"""``count_windows`` row of the window adopted for every unit that has none of its own."""


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
    offset_time: float | None = None
    abort_kind: str | None = None


SESSION_ID = "session_id"
"""Meta key of the session's identity, also written in ``session.json``: a store belongs to one session."""


class TrialStore:
    """One session's ``trials.sqlite``; open it only while holding the session lock.

    Opening creates the file when it is missing: only ``start_session`` may do that; everything that
    reads an existing session opens it through ``integrity.open_session_store``, which refuses a missing,
    empty, corrupt or foreign store first.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            for table, columns in ADDED_COLUMNS.items():
                present = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
                for name, kind in columns:
                    if name not in present:
                        self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
        except sqlite3.DatabaseError as error:
            self._db.close()
            raise CompactRigError(f"{self.path}: not a readable trial store ({error}); the session's recorded data "
                                  "are damaged: restore trials.sqlite from a backup") from None

    def intact(self) -> str | None:
        """None when SQLite's ``quick_check`` finds the store sound, else what it found (first line)."""
        try:
            found = self._db.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as error:
            return str(error)
        return None if found == "ok" else str(found)

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
        self._write("INSERT INTO presentations (ord, item, trial, image_id, onset_time, frames, dropped, marker_sent, "
                    "aborted, abort_reason, recorded_at, offset_time, abort_kind) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(p.order, p.item, p.trial, p.image_id, p.onset_time, p.frames, p.dropped, int(p.marker_sent),
                      int(p.aborted), p.abort_reason, time.time(), p.offset_time, p.abort_kind)])

    def finish_presentation(self, order: int, frames: int, dropped: int, offset_time: float | None) -> None:
        """The image is gone: how many frames it was up, frames dropped, the flip that removed it."""
        self._write("UPDATE presentations SET frames = ?, dropped = ?, offset_time = ? WHERE ord = ?",
                    [(frames, dropped, offset_time, order)])

    def record_response(self, order: int, counts: dict[str, float], window: tuple[float, float],
                        spikes: dict[str, np.ndarray] | None = None, span: tuple[float, float] | None = None) -> None:
        """A response's counts, and with ``spikes`` and ``span`` its units' spike times, in one transaction; every
        unit of ``spikes`` must be known to the store (``add_units``)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT INTO responses VALUES (?, ?, ?, ?, ?)",
                                 [(order, unit, float(count), window[0], window[1]) for unit, count in counts.items()])
            if spikes is not None and span is not None:
                trains = [np.asarray(spikes.get(unit, ()), dtype=np.float32) for unit in self.units()]
                per_unit = np.array([len(train) for train in trains], dtype="<u4")
                times = np.concatenate(trains).astype("<f4") if trains else np.zeros(0, "<f4")
                self._db.execute("INSERT INTO spikes VALUES (?, ?, ?, ?, ?)",
                                 (order, float(span[0]), float(span[1]), per_unit.tobytes(), times.tobytes()))

    def spike_times(self, units: list[str]) -> dict[int, tuple[tuple[float, float], list[np.ndarray]]]:
        """Presentation -> (its span, each of ``units``' spike times in s from the onset), for every presentation
        whose spikes were kept; a unit that became known after a presentation has no spikes in it."""
        known = {unit: k for k, unit in enumerate(self.units())}
        columns = [known.get(unit, -1) for unit in units]
        trains: dict[int, tuple[tuple[float, float], list[np.ndarray]]] = {}
        empty = np.zeros(0, np.float32)
        for order, start, end, per_unit_blob, times_blob in self._db.execute(
                "SELECT ord, span_start, span_end, per_unit, times FROM spikes ORDER BY ord"):
            per_unit = np.frombuffer(per_unit_blob, "<u4")
            times = np.frombuffer(times_blob, "<f4")
            bounds = np.concatenate([[0], np.cumsum(per_unit, dtype=np.int64)])
            trains[order] = ((start, end), [times[bounds[k]:bounds[k + 1]] if 0 <= k < len(per_unit) else empty
                                            for k in columns])
        return trains

    def adopt_window(self, unit: str, window: tuple[float, float] | None) -> None:
        """``window`` (s from the onset) counts ``unit`` (``ALL_UNITS``: every unit, replacing their own) from
        now on; None: back to the source's counts (for ``ALL_UNITS``: every adopted window dropped)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            if unit == ALL_UNITS:
                self._db.execute("DELETE FROM count_windows")
            else:
                self._db.execute("DELETE FROM count_windows WHERE unit = ?", (unit,))
            if window is not None:
                self._db.execute("INSERT INTO count_windows VALUES (?, ?, ?, ?)",
                                 (unit, float(window[0]), float(window[1]), time.time()))

    def count_windows(self) -> dict[str, tuple[float, float]]:
        """Unit (or ``ALL_UNITS``) -> the counting window adopted for it."""
        rows = self._db.execute("SELECT unit, window_start, window_end FROM count_windows ORDER BY unit")
        return {r[0]: (r[1], r[2]) for r in rows}

    def spans(self) -> dict[int, tuple[float, float]]:
        """Presentation -> the span its spike times were kept over, for every presentation with spikes."""
        rows = self._db.execute("SELECT ord, span_start, span_end FROM spikes")
        return {r[0]: (r[1], r[2]) for r in rows}

    def record_codes(self, output: str, words: list[tuple[str, int | None, int | None, int, float]]) -> None:
        """Words marker output ``output`` sent: (event, presentation order, trial, word, time sent) each."""
        self._write("INSERT INTO event_codes VALUES (?, ?, ?, ?, ?, ?)", [(output, *word) for word in words])

    def event_codes(self) -> list[tuple[str, str, int | None, int | None, int, float]]:
        """Every word sent, in the order sent: (output, event, presentation order, trial, word, time sent)."""
        return self._db.execute("SELECT output, event, ord, trial, word, sent_time FROM event_codes "
                                "ORDER BY rowid").fetchall()

    def mark_aborted(self, order: int, reason: str, kind: str = MISSING) -> None:
        self._write("UPDATE presentations SET aborted = 1, abort_reason = ?, abort_kind = ? WHERE ord = ?",
                    [(reason, kind, order)])

    def presentations(self) -> list[StoredPresentation]:
        rows = self._db.execute("SELECT ord, item, trial, image_id, onset_time, frames, dropped, marker_sent, "
                                "aborted, abort_reason, offset_time, abort_kind FROM presentations "
                                "ORDER BY ord").fetchall()
        return [StoredPresentation(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), bool(r[8]), r[9], r[10],
                                   r[11]) for r in rows]

    def responses(self) -> list[tuple[int, str, float]]:
        return self._db.execute("SELECT ord, unit, count FROM responses ORDER BY ord, unit").fetchall()

    def responses_per_image(self) -> dict[str, int]:
        """Image id -> how many of its presentations have a stored response (aborted later or not): the
        responses a source has already delivered for it, which a resumed source carries on from."""
        rows = self._db.execute("SELECT p.image_id, COUNT(DISTINCT r.ord) FROM presentations p "
                                "JOIN responses r ON r.ord = p.ord GROUP BY p.image_id")
        return dict(rows.fetchall())

    def response_windows(self) -> dict[int, tuple[float, float]]:
        """Presentation -> the counting window its response was counted in (seconds after onset)."""
        rows = self._db.execute("SELECT ord, MIN(window_start), MIN(window_end) FROM responses GROUP BY ord")
        return {r[0]: (r[1], r[2]) for r in rows}

    def next_order(self) -> int:
        """The first presentation number never used nor reserved (see ``reserve_orders``)."""
        row = self._db.execute("SELECT MAX(ord) FROM presentations").fetchone()
        used = 0 if row[0] is None else row[0] + 1
        return max(used, int(self.meta("next_order") or 0))

    def reserve_orders(self, count: int) -> int:
        """Durably reserve ``count`` presentation numbers before the presenter may send them as markers."""
        first = self.next_order()
        self.set_meta("next_order", str(first + count))
        return first

    def record_trial(self, trial: int, start_time: float | None, end_time: float | None, images: int,
                     aborted: bool, reason: str | None) -> None:
        self._write("INSERT OR REPLACE INTO trials VALUES (?, ?, ?, ?, ?, ?)",
                    [(trial, start_time, end_time, images, int(aborted), reason)])

    def trials(self) -> list[tuple[int, float | None, float | None, int, bool, str | None]]:
        rows = self._db.execute("SELECT trial, start_time, end_time, images, aborted, abort_reason FROM trials "
                                "ORDER BY trial").fetchall()
        return [(r[0], r[1], r[2], r[3], bool(r[4]), r[5]) for r in rows]

    def units(self) -> list[str]:
        """Every unit known to the session, declared or discovered, in the order they became known."""
        return [r[0] for r in self._db.execute("SELECT unit FROM units ORDER BY rowid")]

    def declared_units(self) -> set[str]:
        """The units named before the session (the others were discovered during it)."""
        return {r[0] for r in self._db.execute("SELECT unit FROM units WHERE declared = 1")}

    def recorded_at(self) -> dict[int, float]:
        """Presentation -> wall-clock time (``time.time``) its row was written, just after its onset flip."""
        return dict(self._db.execute("SELECT ord, recorded_at FROM presentations").fetchall())

    def add_units(self, units: list[str], declared: bool = False) -> list[str]:
        """Units new to the session (returned); each gets 0 for every response already stored."""
        known = set(self.units())
        new = [u for u in dict.fromkeys(units) if u not in known]
        if not new:
            return []
        first = self.next_order()
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for unit in new:
                self._db.execute("INSERT INTO units VALUES (?, ?, ?)", (unit, first, int(declared)))
                self._db.execute("INSERT OR IGNORE INTO responses SELECT ord, ?, 0.0, MIN(window_start), "
                                 "MIN(window_end) FROM responses GROUP BY ord", (unit,))
        return new

    def settle_unanswered(self, reason: str) -> int:
        """Presentations shown but without a response become aborted (their items go back in the plan)."""
        orders = [r[0] for r in self._db.execute(
            "SELECT ord FROM presentations WHERE aborted = 0 AND ord NOT IN (SELECT DISTINCT ord FROM responses)")]
        self._write("UPDATE presentations SET aborted = 1, abort_reason = ?, abort_kind = 'interrupted' "
                    "WHERE ord = ?", [(reason, o) for o in orders])
        return len(orders)

    def completed_items(self) -> set[int]:
        rows = self._db.execute("SELECT DISTINCT p.item FROM presentations p JOIN responses r ON r.ord = p.ord "
                                "WHERE p.aborted = 0").fetchall()
        return {r[0] for r in rows}

    def missing_counts(self) -> dict[int, int]:
        """Plan item -> how many of its presentations got no response."""
        rows = self._db.execute("SELECT item, COUNT(*) FROM presentations WHERE aborted = 1 AND abort_kind = ? "
                                "GROUP BY item", (MISSING,)).fetchall()
        return {r[0]: r[1] for r in rows}

    def left_out(self, max_missing: int) -> list[tuple[int, str]]:
        """Incomplete plan items whose response went missing ``max_missing`` times: not shown again."""
        done, missing = self.completed_items(), self.missing_counts()
        return [(item, image_id) for item, image_id in self.plan()
                if item not in done and missing.get(item, 0) >= max_missing]

    def remaining(self, max_missing: int | None = None) -> list[tuple[int, str]]:
        """Plan items not yet complete (nor left out, given ``max_missing``), in plan order."""
        done = self.completed_items()
        missing = self.missing_counts() if max_missing is not None else {}
        return [(item, image_id) for item, image_id in self.plan()
                if item not in done and (max_missing is None or missing.get(item, 0) < max_missing)]
