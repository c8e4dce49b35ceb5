"""The Live fits view's Spikes page, pressed as a user presses it: a past session opened (two units of one
model neuron, the second answering late, at 110 ms), the late unit focused by clicking its row, a window
typed into the ms boxes, "Adopt for this unit" clicked; the counts the view then fits are the session's
spikes in that window as an independent recount of the trial store (sqlite3, numpy) gets them."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from compactrig.stimuli.probes import grating
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

from support.commands import run_cli
from support.sessions import RIG
from support.user_input import answer_folder_dialog, click, click_row, open_tab, type_into

pytestmark = [pytest.mark.slow, pytest.mark.needs_display]


@pytest.fixture()
def late_session(tmp_path):
    stimuli, out, rig = tmp_path / "set", tmp_path / "session", tmp_path / "rig.toml"
    angles = (0, 45, 90, 135)
    StimulusSet([StimulusRecord(image_id=f"img{i}", kind="natural") for i in range(len(angles))],
                np.stack([grating(a) for a in angles])).save(stimuli)
    rig.write_text(RIG)
    result = run_cli("session", "run", "--stimuli", str(stimuli), "--rig", str(rig), "--source", "simulated",
                     "--source-opt", "neurons=demo:0,demo:0", "--source-opt", "latency_s=0.05,0.11",
                     "--map", "unit0=demo:0,unit1=demo:0", "--repeats", "6", "--out", str(out), timeout=300)
    assert result.returncode == 0, result.stderr
    return out


def recount(folder, unit_index: int, window: tuple[float, float]) -> dict[str, list[float]]:
    """Image -> the unit's spikes in [start, end) of each presentation shown, from the store's blobs."""
    with sqlite3.connect(folder / "trials.sqlite") as db:
        shown = dict(db.execute("SELECT ord, image_id FROM presentations WHERE aborted = 0").fetchall())
        rows = db.execute("SELECT ord, per_unit, times FROM spikes").fetchall()
    out: dict[str, list[float]] = {}
    start, end = np.float32(window[0]), np.float32(window[1])
    for order, per_unit, times in rows:
        counts = np.frombuffer(per_unit, "<u4").astype(int)
        train = np.split(np.frombuffer(times, "<f4"), np.cumsum(counts)[:-1])[unit_index]
        if order in shown:
            out.setdefault(shown[order], []).append(float(np.count_nonzero((train >= start) & (train < end))))
    return out


def test_a_window_typed_for_the_focused_unit_recounts_it_from_its_spikes(qtbot, window, late_session,
                                                                        monkeypatch):
    live = window.live
    open_tab(qtbot, window.tabs, live)
    answer_folder_dialog(monkeypatch, late_session)
    click(qtbot, live.open_button)
    qtbot.waitUntil(lambda: live.table.rowCount() == 2 and live.live.has_spikes, timeout=20000)
    row = next(r for r in range(2) if live.table.item(r, 0).text() == "unit1")
    click_row(qtbot, live.table, row)
    open_tab(qtbot, live.pages, live.spikes)
    spikes = live.spikes
    assert spikes.unit == "unit1" and spikes.pages.currentIndex() == 1, spikes.empty.text()
    assert spikes.counted.text() == "unit1 counted in the source's window"
    x, _ = spikes.raster.getData()
    assert len(x) == 2 * sum(sum(v) for v in recount(late_session, 1, (-1.0, 1.0)).values()), "a tick per spike"
    qtbot.waitUntil(lambda: spikes.latency.text().startswith("latency "), timeout=20000)

    type_into(qtbot, spikes.start_box, "110")
    type_into(qtbot, spikes.end_box, "210")
    assert spikes.region.getRegion() == pytest.approx((110, 210)), "the region (ms) follows the boxes"
    click(qtbot, spikes.adopt_unit_button)
    assert spikes.result.text() == "unit1: counted 110..210 ms after the onset, from the spikes kept"
    qtbot.waitUntil(lambda: spikes.counted.text() == "unit1 counted in 110..210 ms (adopted)", timeout=20000)
    assert spikes.unit == "unit1", "the focused unit stays focused"

    expected = recount(late_session, 1, (0.11, 0.21))
    sums = live.live.sums
    column = sums.units.index("unit1")
    for image, counts in expected.items():
        k = sums.index[image]
        assert sums.counts[k, column] == len(counts)
        assert sums.sums[k, column] == pytest.approx(sum(counts))
    source = recount(late_session, 1, (0.05, 0.15))
    assert any(sorted(expected[i]) != sorted(source[i]) for i in expected), "the window changed the counts"
