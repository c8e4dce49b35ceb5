"""The trial store's format across versions: a store written before a table existed opens, and gains it."""

from __future__ import annotations

import sqlite3

from compactrig.rig.session.trial_store import SCHEMA, TrialStore


def test_a_store_from_before_event_codes_opens_keeps_its_rows_and_stores_words(tmp_path):
    path = tmp_path / "trials.sqlite"
    with sqlite3.connect(path) as db:  # the format before event codes: no event_codes table
        db.executescript(SCHEMA.split("CREATE TABLE IF NOT EXISTS event_codes")[0])
        db.execute("INSERT INTO plan VALUES (0, 'img0', 0)")
        db.execute("INSERT INTO presentations (ord, item, trial, image_id, onset_time, frames, dropped, marker_sent, "
                   "aborted, recorded_at) VALUES (0, 0, 0, 'img0', 12.5, 6, 0, 1, 0, 1.0)")
    store = TrialStore(path)
    try:
        assert [(p.order, p.image_id, p.onset_time) for p in store.presentations()] == [(0, "img0", 12.5)]
        assert store.event_codes() == []
        store.record_codes("serial", [("onset", 0, 0, 32768, 12.5003), ("trial_end", None, 0, 2, 12.61)])
        assert store.event_codes() == [("serial", "onset", 0, 0, 32768, 12.5003), ("serial", "trial_end", None, 0, 2,
                                                                                    12.61)]
    finally:
        store.close()
