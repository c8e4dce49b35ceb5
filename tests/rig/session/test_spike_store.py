"""Spike times kept in the trial store with their counts: read back exactly, stored atomically, and a whole
session run from the command line keeps, for every response, the spikes its counts were counted from."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from compactrig.rig.session.trial_store import StoredPresentation, TrialStore
from compactrig.stimuli.probes import grating
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

from support.commands import run_cli
from support.sessions import RIG, table


def shown(order: int) -> StoredPresentation:
    return StoredPresentation(order, order, 0, "img0", 10.0 + order, 6, 0, True, False, None)


def test_spike_times_read_back_per_unit_and_a_response_is_stored_whole_or_not_at_all(tmp_path):
    store = TrialStore(tmp_path / "trials.sqlite")
    try:
        store.write_plan(["img0"] * 3, [0, 0, 0])
        store.add_units(["a", "b"], declared=True)
        for order in range(3):
            store.record_presentation(shown(order))
        a, b = np.array([-0.05, 0.06, 0.0712345]), np.array([0.3])
        store.record_response(0, {"a": 2.0, "b": 0.0}, (0.05, 0.15), {"a": a, "b": b}, (-0.1, 0.4))
        store.record_response(1, {"a": 1.0, "b": 0.0}, (0.05, 0.15))  # counts only (a replayed recording)
        store.add_units(["c"])  # heard from later: no spikes in presentation 0
        store.record_response(2, {"a": 0.0, "b": 0.0, "c": 1.0}, (0.05, 0.15), {"c": np.array([0.1])}, (-0.1, 0.4))
        trains = store.spike_times(["c", "a", "b", "unknown"])
        assert sorted(trains) == [0, 2], "presentation 1 was counted only"
        span, (c0, a0, b0, u0) = trains[0]
        assert span == (-0.1, 0.4) and len(c0) == 0 and len(u0) == 0
        np.testing.assert_array_equal(a0, a.astype(np.float32))
        np.testing.assert_array_equal(b0, b.astype(np.float32))
        assert [len(t) for t in trains[2][1]] == [1, 0, 0, 0] and trains[2][1][0][0] == np.float32(0.1)
        store.write_plan(["img0"], [1])
        store.record_presentation(shown(3))
        with sqlite3.connect(store.path) as other:  # a spikes row already there: storing 3's spikes fails
            other.execute("INSERT INTO spikes VALUES (3, 0, 1, x'', x'')")
        with pytest.raises(sqlite3.IntegrityError):
            store.record_response(3, {"a": 5.0, "b": 0.0, "c": 0.0}, (0.05, 0.15), {"a": a}, (-0.1, 0.4))
        assert [row for row in store.responses() if row[0] == 3] == [], "its counts were rolled back with it"
    finally:
        store.close()


@pytest.mark.needs_display
def test_a_simulated_session_keeps_every_responses_spikes_and_its_counts_are_the_spikes_in_the_window(tmp_path):
    stimuli, out, rig = tmp_path / "set", tmp_path / "session", tmp_path / "rig.toml"
    StimulusSet([StimulusRecord(image_id=f"img{i}", kind="natural") for i in range(3)],
                np.stack([grating(a) for a in (0, 60, 120)])).save(stimuli)
    rig.write_text(RIG)
    result = run_cli("session", "run", "--stimuli", str(stimuli), "--rig", str(rig), "--source", "simulated",
                     "--source-opt", "neurons=demo:0,demo:1", "--source-opt", "latency_s=0.05,0.09",
                     "--repeats", "2", "--out", str(out), timeout=300)
    assert result.returncode == 0, result.stderr
    counts = table(out, "SELECT ord, unit, count FROM responses ORDER BY ord, unit")
    store = TrialStore(out / "trials.sqlite")
    try:
        trains = store.spike_times(["unit0", "unit1"])
    finally:
        store.close()
    assert sorted(trains) == sorted({order for order, _, _ in counts}), "every response kept its spikes"
    for order, unit, count in counts:
        span, (unit0, unit1) = trains[order]
        times = unit0 if unit == "unit0" else unit1
        assert span == (-0.1, 0.4) and ((times >= -0.1) & (times < 0.4)).all()
        assert count == np.count_nonzero((times >= np.float32(0.05)) & (times < np.float32(0.15)))
