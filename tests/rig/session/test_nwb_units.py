"""What a session that kept spike times exports: an NWB units table whose trains are the trial store's
spikes on the session's clock, each once, the presentations' counts in the adopted window beside the
source's, a file DANDI's inspector configuration accepts, and a report with one PSTH panel per unit; a
replayed (counts only) session has no units table nor PSTH and says so. Every expected number is worked
out here from the trial store itself (sqlite3, numpy) and session.json, never through the export's own
readers."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime

import numpy as np
import pytest
from PIL import Image

from compactrig.rig.session.unit_trains import unit_trains
from compactrig.rig.session.windows import adopt_in_folder
from compactrig.stimuli.probes import grating
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

from support.commands import run_cli
from support.sessions import RIG

ADOPTED = (0.11, 0.21)
"""unit1's adopted window (it answers at 110 ms; the source counts 50..150 ms)."""
SUBJECT = ("--subject", "M1", "--sex", "M", "--age", "P8Y")  # DANDI requires an age: a user gives it


def image_set(folder, ids):
    StimulusSet([StimulusRecord(image_id=i, kind="natural") for i in ids],
                np.stack([grating(30 * k) for k in range(len(ids))])).save(folder)
    return folder


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """A simulated session of two units (unit0 mapped to demo:0) that kept spikes, unit1 counted in ``ADOPTED``.
    unit0 answers at three times the default gain: at the default, a Monte Carlo of this source timed 24
    presentations more than 12 ms off its latency in about one draw in four (CI's draw at stop 49 gave 36 ms)."""
    tmp_path = tmp_path_factory.mktemp("nwb_units")
    rig, out = tmp_path / "rig.toml", tmp_path / "session"
    rig.write_text(RIG)
    result = run_cli("session", "run", "--stimuli", str(image_set(tmp_path / "set", [f"img{k}" for k in range(4)])),
                     "--rig", str(rig), "--source", "simulated", "--source-opt", "neurons=demo:0,demo:1",
                     "--source-opt", "latency_s=0.05,0.11", "--source-opt", "gain=3,1", "--map", "unit0=demo:0",
                     "--repeats", "6", "--out", str(out))
    assert result.returncode == 0, result.stderr
    adopt_in_folder(out, "unit1", ADOPTED)
    return out


def read_store(folder):
    """Units, presentations (order -> onset on the NWB clock), spikes (order -> span, each unit's times from
    the onset) and source counts, from the sqlite file and session.json."""
    with sqlite3.connect(folder / "trials.sqlite") as db:
        units = [u for (u,) in db.execute("SELECT unit FROM units ORDER BY rowid")]
        shown = db.execute("SELECT ord, onset_time, recorded_at FROM presentations").fetchall()
        rows = db.execute("SELECT ord, span_start, span_end, per_unit, times FROM spikes").fetchall()
        counts = {(o, u): c for o, u, c in db.execute("SELECT ord, unit, count FROM responses")}
    created = datetime.strptime(json.loads((folder / "session.json").read_text())["created"], "%Y-%m-%dT%H:%M:%S%z")
    shift = min(recorded - onset for _, onset, recorded in shown) - created.timestamp()
    onsets = {o: onset + shift for o, onset, _ in shown}
    spikes = {}
    for order, start, end, per_unit, times in rows:
        sizes = np.frombuffer(per_unit, "<u4").astype(np.int64)
        spikes[order] = ((start, end), np.split(np.frombuffer(times, "<f4"), np.cumsum(sizes)[:-1]))
    return units, onsets, spikes, counts


def inspector_problems(path) -> list[str]:
    """What nwbinspector's DANDI configuration rates a best-practice violation or worse."""
    from nwbinspector import Importance, inspect_nwbfile, load_config
    return [f"{m.importance.name} {m.check_function_name}: {m.message}"
            for m in inspect_nwbfile(nwbfile_path=str(path), config=load_config("dandi"))
            if m.importance.value >= Importance.BEST_PRACTICE_VIOLATION.value]


@pytest.mark.needs_display
def test_the_units_table_holds_the_stores_spikes_once_each_and_the_counts_use_the_adopted_window(session, tmp_path):
    from pynwb import NWBHDF5IO
    path = tmp_path / "s.nwb"
    exported = run_cli("session", "export", str(session), "--nwb", str(path), *SUBJECT)
    assert exported.returncode == 0, exported.stderr
    units, onsets, spikes, source = read_store(session)
    assert units == ["unit0", "unit1"] and len(spikes) == len(onsets) > 0

    # On the NWB clock, a presentation's spike is kept unless an earlier presentation's span already covered it.
    order = sorted(spikes, key=lambda o: onsets[o] + spikes[o][0][0])
    starts = np.array([onsets[o] + spikes[o][0][0] for o in order])
    ends = np.array([onsets[o] + spikes[o][0][1] for o in order])
    covered_before = np.concatenate([[-np.inf], np.maximum.accumulate(ends)[:-1]])
    expected = []
    for k in range(len(units)):
        absolute = [onsets[o] + spikes[o][1][k].astype(np.float64) for o in order]
        expected.append(np.sort(np.concatenate([t[t >= c] for t, c in zip(absolute, covered_before)])))
    assert any(s < c for s, c in zip(starts, covered_before)), "consecutive spans overlap in this session"
    new_interval = starts > covered_before
    merged = list(zip(starts[new_interval], np.append(covered_before[new_interval][1:], ends.max())))

    with NWBHDF5IO(str(path), "r") as io:
        written = io.read()
        table = written.units
        assert list(table["unit"][:]) == units and list(table["neuron"][:]) == ["demo:0", ""]
        assert np.isnan(table["window_start"][0]) and np.isnan(table["window_end"][0])
        assert (table["window_start"][1], table["window_end"][1]) == ADOPTED
        for k in range(len(units)):
            times = np.asarray(table["spike_times"][k])
            assert len(times) == len(expected[k]) > 0 and (np.diff(times) >= 0).all()
            np.testing.assert_allclose(times, expected[k], rtol=0, atol=1e-9)
            np.testing.assert_allclose(np.asarray(table["obs_intervals"][k]), merged, rtol=0, atol=1e-9)
        intervals = written.intervals["presentations"]
        frame = intervals.to_dataframe().set_index("order")
        described = {c.name: c.description for c in intervals.columns}
        assert "110..210 ms after onset, recounted from spike_times" in described["count_unit1"]
        assert "the source's counting window" in described["count_unit0"] and "source_count_unit0" not in frame
        assert "source's counting window" in described["window_start"]
        notes = written.notes
    with_spikes = sorted(spikes)
    np.testing.assert_array_equal(frame.loc[with_spikes, "window_start"], 0.05)  # the source's, as it counted
    np.testing.assert_array_equal(frame.loc[with_spikes, "count_unit0"], [source[(o, "unit0")] for o in with_spikes])
    np.testing.assert_array_equal(frame.loc[with_spikes, "source_count_unit1"],
                                  [source[(o, "unit1")] for o in with_spikes])
    low, high = np.float32(ADOPTED[0]), np.float32(ADOPTED[1])
    recount = [np.count_nonzero((spikes[o][1][1] >= low) & (spikes[o][1][1] < high)) for o in with_spikes]
    np.testing.assert_array_equal(frame.loc[with_spikes, "count_unit1"], recount)
    assert recount != [source[(o, "unit1")] for o in with_spikes], "the adopted window changed the counts"
    assert "counts only" not in notes
    assert inspector_problems(path) == []


def test_session_trains_keep_a_spike_seen_by_two_overlapping_presentations_once():
    """One continuous train seen through three presentations whose spans overlap (the second's starts before
    the first's ends): the session's train is the original, each spike once, observed over the union."""
    train = np.sort(np.random.default_rng(1).uniform(0.0, 3.0, 200))
    onsets = {0: 0.5, 1: 0.8, 2: 2.2}
    span = (-0.1, 0.4)
    kept = {o: (span, [(train[(train >= t + span[0]) & (train < t + span[1])] - t).astype(np.float32)])
            for o, t in onsets.items()}
    trains = unit_trains(kept, onsets, 1)
    inside = ((train >= 0.4) & (train < 1.2)) | ((train >= 2.1) & (train < 2.6))
    np.testing.assert_allclose(trains.times[0], train[inside], rtol=0, atol=1e-7)
    assert trains.observed == [pytest.approx((0.4, 1.2)), pytest.approx((2.1, 2.6))]


@pytest.mark.needs_display
def test_a_counts_only_session_has_no_units_table_nor_psth_and_says_so(tmp_path):
    from pynwb import NWBHDF5IO
    np.save(tmp_path / "recorded.npy", np.random.default_rng(0).poisson(5, (2, 2, 3)).astype(float))
    rig, out, path = tmp_path / "rig.toml", tmp_path / "session", tmp_path / "replay.nwb"
    rig.write_text(RIG)
    result = run_cli("session", "run", "--stimuli", str(image_set(tmp_path / "set", ["image0001", "image0002"])),
                     "--rig", str(rig), "--source", "replay", "--source-opt", f"responses={tmp_path / 'recorded.npy'}",
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert read_store(out)[2] == {}, "a replay keeps no spike times"
    exported = run_cli("session", "export", str(out), "--nwb", str(path), *SUBJECT)
    assert exported.returncode == 0, exported.stderr
    with NWBHDF5IO(str(path), "r") as io:
        written = io.read()
        assert written.units is None
        assert "counts only: no spike times were kept" in written.notes
        assert len(written.intervals["presentations"]) == len(read_store(out)[1])
    assert inspector_problems(path) == []
    assert run_cli("session", "report", str(out)).returncode == 0
    with Image.open(out / "report.png") as picture:
        assert picture.text["Description"] == "counts only: no spike times kept, no PSTH"
        assert picture.size[1] == 380, "the one row of panels: no PSTH row"


@pytest.mark.needs_display
def test_the_report_draws_one_psth_per_unit_with_its_counting_window_and_latency(session):
    assert run_cli("session", "report", str(session)).returncode == 0
    units, _, spikes, _ = read_store(session)
    with sqlite3.connect(session / "trials.sqlite") as db:
        adopted = {u: (a, b) for u, a, b in db.execute("SELECT unit, window_start, window_end FROM count_windows")}
        (source,) = db.execute("SELECT DISTINCT window_start, window_end FROM responses").fetchall()
        shown = {o for (o,) in db.execute("SELECT ord FROM presentations WHERE aborted = 0")} & set(spikes)
    with Image.open(session / "report.png") as picture:
        panels = picture.text["Description"].splitlines()
        size = picture.size
    assert size[1] == 380 + 190, "one row of PSTHs under the top panels"
    assert [line.split(":")[0] for line in panels] == [f"PSTH {unit}" for unit in units]
    for unit, line, simulated in zip(units, panels, (0.05, 0.11)):
        window, whose = (adopted[unit], "adopted") if unit in adopted else (source, "the source's")
        assert f"counted {window[0] * 1000:g}..{window[1] * 1000:g} ms ({whose})" in line, line
        assert line.endswith(f", {len(shown)} presentations"), line
        found = re.search(r"latency (\d+) ms", line)
        assert found or unit == "unit1", line  # unit0's response (gain 3) is timed in 24 presentations
        if found:
            assert abs(int(found.group(1)) / 1000 - simulated) <= 0.012, line


@pytest.mark.parametrize("age", ["8 years", "8Y", "P", "P8Y/"])
def test_an_age_that_is_not_an_iso_8601_duration_is_refused_before_anything_is_written(session, tmp_path, age):
    """DANDI reads the subject's age as an ISO 8601 duration: "8 years" would be written and then fail the
    archive's check, so the export refuses it in one line naming the form, and writes nothing."""
    path = tmp_path / "refused.nwb"
    result = run_cli("session", "export", str(session), "--nwb", str(path), "--subject", "M1", "--age", age)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"compactrig: error: --age {age!r} is not an ISO 8601 duration; give the subject's age as e.g. P8Y "
        "(8 years), P3Y6M or P120D"]
    assert not path.exists() and list(tmp_path.iterdir()) == []
