"""Counting windows chosen from the spikes: a simulated session of two units simulating one model neuron,
the second answering late (110 ms, so the source's 50-150 ms window cuts its response), their latencies
estimated from the PSTHs, a window adopted from the command line, and the counts every export and fit then
uses recounted as an independent computation gets them from the trial store's spikes (sqlite3, numpy)."""

from __future__ import annotations

import re
import sqlite3
import time

import numpy as np
import pytest

from compactrig.engine.models.bank import load_bank
from compactrig.rig.presenter.rig import load_rig
from compactrig.rig.session.controller import SessionController
from compactrig.rig.session.events import ResponseStored, SessionEnded, SessionMessage, SessionStarted
from compactrig.rig.session.live import LiveSession
from compactrig.rig.session.setup import SessionPlan
from compactrig.rig.session.stored import stored_session
from compactrig.stimuli.probes import grating
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

from support.commands import run_cli
from support.independent_model import evaluate
from support.sessions import RIG, stored_spikes

LATENCIES = (0.05, 0.11)


def source_counts(folder) -> dict[tuple[int, str], float]:
    with sqlite3.connect(folder / "trials.sqlite") as db:
        return {(o, u): c for o, u, c in db.execute("SELECT ord, unit, count FROM responses")}


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("windows")
    stimuli, out, rig = tmp_path / "set", tmp_path / "session", tmp_path / "rig.toml"
    angles = (0, 30, 60, 90, 120, 150)
    StimulusSet([StimulusRecord(image_id=f"img{i}", kind="natural") for i in range(len(angles))],
                np.stack([grating(a) for a in angles])).save(stimuli)
    rig.write_text(RIG)
    result = run_cli("session", "run", "--stimuli", str(stimuli), "--rig", str(rig), "--source", "simulated",
                     "--source-opt", "neurons=demo:0,demo:0", "--source-opt",
                     "latency_s=" + ",".join(map(str, LATENCIES)), "--map", "unit0=demo:0,unit1=demo:0",
                     "--repeats", "8", "--out", str(out), timeout=300)
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.needs_display
def test_latencies_from_the_psths_and_an_adopted_window_recounts_what_everything_reads(session, tmp_path):
    listed = run_cli("session", "windows", str(session))
    assert listed.returncode == 0, listed.stderr
    for unit, latency in zip(("unit0", "unit1"), LATENCIES):
        line = next(text for text in listed.stdout.splitlines() if text.startswith(unit + ":"))
        found = float(re.search(r"latency (\d+) ms", line).group(1)) / 1000
        assert abs(found - latency) <= 0.012, line
        assert line.endswith("counted in 50..150 ms (the source's)"), line

    adopted = run_cli("session", "windows", str(session), "--unit", "unit1", "--adopt", "110,210")
    assert adopted.returncode == 0, adopted.stderr
    assert "unit1: counted 110..210 ms after the onset, from the spikes kept" in adopted.stdout
    assert "unit1: latency" in adopted.stdout and "counted in 110..210 ms (adopted)" in adopted.stdout

    # The independent recount: unit1's spikes in [110, 210) ms from the blobs; unit0 keeps the source's counts.
    spikes, original = stored_spikes(session), source_counts(session)
    expected = {(o, "unit0"): original[(o, "unit0")] for o in spikes}
    expected |= {(o, "unit1"): float(np.count_nonzero((t["unit1"] >= np.float32(0.11))
                                                     & (t["unit1"] < np.float32(0.21))))
                 for o, (_, t) in spikes.items()}
    assert any(expected[(o, "unit1")] != original[(o, "unit1")] for o in spikes), "the window changed the counts"
    assert source_counts(session) == original, "the source's counts are kept as they came"

    npz = tmp_path / "r.npz"
    assert run_cli("session", "export", str(session), "--npz", str(npz)).returncode == 0
    read = np.load(npz)
    with sqlite3.connect(session / "trials.sqlite") as db:
        shown = db.execute("SELECT ord, image_id FROM presentations WHERE aborted = 0 ORDER BY ord").fetchall()
    ids = list(read["image_ids"])
    for k, unit in enumerate(read["units"]):
        for i, image in enumerate(ids):
            mine = [expected[(o, unit)] for o, im in shown if im == image]
            np.testing.assert_array_equal(read["responses"][k, i, :len(mine)], mine)
            window = (0.11, 0.21) if unit == "unit1" else (0.05, 0.15)
            np.testing.assert_allclose(read["windows"][k, i, :len(mine)], [window] * len(mine))

    # The fit a watcher (the Live fits view, the report) reads: r of the recounted means against the model.
    live = LiveSession()
    live.take_events([stored_session(session)])
    pixels = StimulusSet.load(session / "stimuli")
    bank = load_bank("demo")
    for row, (unit, neuron) in enumerate((("unit0", "demo:0"), ("unit1", "demo:0"))):
        means = [np.mean([expected[(o, unit)] for o, im in shown if im == image]) for image in pixels.ids]
        r = np.corrcoef(evaluate(bank.state_dict(neuron), pixels.pixels), means)[0, 1]
        assert live.summary.r[row] == pytest.approx(r, abs=1e-6)

    back = run_cli("session", "windows", str(session), "--source-window")
    assert back.returncode == 0 and "every unit: counted in the source's window again" in back.stdout
    np.testing.assert_array_equal(np.load(npz)["responses"], read["responses"])  # the file written is left alone


def test_a_window_outside_the_spikes_kept_is_refused_in_one_line(session):
    for bad, said in (("300,600", "within the spike times kept (-100..400 ms"),
                      ("150,100", "the start must come before the end"), ("a,b", "is not a number")):
        result = run_cli("session", "windows", str(session), "--adopt", bad)
        assert result.returncode == 2 and said in result.stderr and "Traceback" not in result.stderr, result.stderr
    result = run_cli("session", "windows", str(session), "--unit", "unit9", "--adopt-suggested")
    assert result.returncode == 2 and "unit 'unit9' is not in this session" in result.stderr


@pytest.mark.needs_display
def test_a_window_adopted_while_the_session_runs_recounts_what_came_and_counts_what_comes_in_it(tmp_path):
    """Adopted through the session controller mid-run (as the Live fits view does): the watchers start again
    from the recounts, every response after it is counted in the new window from its own spikes, and the
    live fit is the fit of those counts; the source's own window (40..140 ms here) stays known."""
    stimuli = tmp_path / "set"
    angles = (0, 45, 90, 135)
    StimulusSet([StimulusRecord(image_id=f"img{i}", kind="natural") for i in range(len(angles))],
                np.stack([grating(a) for a in angles])).save(stimuli)
    rig_file = tmp_path / "rig.toml"
    rig_file.write_text(RIG)
    rig = load_rig(rig_file).with_source("simulated", {"neurons": "demo:0,demo:0", "latency_s": "0.05,0.11",
                                                       "window_start_s": "0.04", "window_end_s": "0.14"})
    folder = tmp_path / "session"
    controller = SessionController()
    try:
        controller.start(folder, SessionPlan(stimuli=str(stimuli), repeats=5), rig, rig_file)
        seen: list = []
        deadline = time.monotonic() + 120
        while sum(isinstance(e, ResponseStored) for e in seen) < 4:
            assert time.monotonic() < deadline, seen
            time.sleep(0.02)
            seen += controller.take_events()
        assert controller.adopt_window("unit1", (0.11, 0.21)) == "counting window asked for: adopted between trials"
        while not (seen and isinstance(seen[-1], SessionEnded)):
            assert time.monotonic() < deadline, seen
            time.sleep(0.02)
            seen += controller.take_events()
    finally:
        controller.close()
    assert seen[-1].complete, seen[-1]
    assert "unit1: counted 110..210 ms after the onset, from the spikes kept" in [
        e.text for e in seen if isinstance(e, SessionMessage)]
    restart = next(k for k, e in enumerate(seen) if isinstance(e, SessionStarted) and e.recount)
    assert seen[restart].windows == {"unit1": (0.11, 0.21)}
    spikes, original = stored_spikes(folder), source_counts(folder)

    def recount(order: int) -> float:
        times = spikes[order][1]["unit1"]
        return float(np.count_nonzero((times >= np.float32(0.11)) & (times < np.float32(0.21))))

    before = [e for e in seen[:restart] if isinstance(e, ResponseStored)]
    assert before and all(e.counts["unit1"] == original[(e.order, "unit1")] for e in before), "the source's, then"
    after = [e for e in seen[restart:] if isinstance(e, ResponseStored)]
    assert after and all(e.counts["unit1"] == recount(e.order) for e in after)
    assert {e.window for e in before + after} == {(0.04, 0.14)}, "each response says the source's window"
    assert controller.live.source_window == (0.04, 0.14), "the watchers know it (the raster view draws it)"
    assert all(e.counts["unit0"] == original[(e.order, "unit0")] for e in after), "unit0 keeps the source's"
    assert sorted((i, c["unit0"], c["unit1"]) for i, c in seen[restart].stored) == sorted(
        (e.image_id, original[(e.order, "unit0")], recount(e.order)) for e in before), "recounted what came"
    assert any(recount(o) != original[(o, "unit1")] for o, _ in original), "the window changed counts"

    with sqlite3.connect(folder / "trials.sqlite") as db:
        shown = db.execute("SELECT ord, image_id FROM presentations WHERE aborted = 0").fetchall()
    pixels = StimulusSet.load(folder / "stimuli")
    means = [np.mean([recount(o) for o, im in shown if im == image]) for image in pixels.ids]
    r = np.corrcoef(evaluate(load_bank("demo").state_dict("demo:0"), pixels.pixels), means)[0, 1]
    assert controller.live.summary.r[1] == pytest.approx(r, abs=1e-6)


def test_a_stored_session_opened_holds_its_kept_spikes_as_rasters(session):
    """What the Live fits view's rasters read for a session opened from its folder: every presentation's
    spikes, as the blobs hold them."""
    live = LiveSession()
    live.take_events([stored_session(session)])
    spikes = stored_spikes(session)
    rasters = live.rasters
    assert live.has_spikes and sorted(rasters.orders.tolist()) == sorted(spikes)
    for unit in ("unit0", "unit1"):
        window = (np.float32(0.11), np.float32(0.21))
        expected = [np.count_nonzero((spikes[o][1][unit] >= window[0]) & (spikes[o][1][unit] < window[1]))
                    for o in rasters.orders]
        np.testing.assert_array_equal(rasters.counts(unit, (0.11, 0.21)), expected)
        x, _ = rasters.raster(unit, live.raster_order(unit))
        np.testing.assert_array_equal(np.sort(x), np.sort(np.concatenate([t[unit] for _, t in spikes.values()])))
