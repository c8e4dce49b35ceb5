"""The Live fits view's Spikes page, pressed as a user presses it: a past session opened (two units of one
model neuron, the second answering late, at 110 ms), the late unit focused by clicking its row, a window
typed into the ms boxes, "Adopt for this unit" clicked; the counts the view then fits are the session's
spikes in that window as an independent recount of the trial store (sqlite3, numpy) gets them."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from PyQt6.QtCore import QPointF

from compactrig.stimuli.probes import grating
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

from support.commands import run_cli
from support.sessions import RIG
from support.user_input import answer_folder_dialog, click, click_row, drag, open_tab, type_into

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
                     "--source-opt", "window_start_s=0.04", "--source-opt", "window_end_s=0.14",
                     "--map", "unit0=demo:0,unit1=demo:0", "--repeats", "6", "--out", str(out), timeout=300)
    assert result.returncode == 0, result.stderr
    return out


SOURCE_WINDOW = (0.04, 0.14)
"""The simulated source's counting window in ``late_session`` (s; not the sources' default 50..150 ms)."""


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
    assert spikes.counted.text() == "unit1 counted in the source's window (40..140 ms)"
    assert spikes.region.getRegion() == pytest.approx((40, 140)), "the source's window, not the sources' default"
    window.resize(1280, 800)  # a laptop's screen: the page is shown whole, the closed-loop panel scrolls below
    qtbot.waitUntil(lambda: all(w.visibleRegion().boundingRect() == w.rect() for w in
                                (spikes.raster_plot.viewport(), spikes.psth_plot.viewport(), spikes.adopt_unit_button,
                                 spikes.source_button)),
                    timeout=5000)
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
    source = recount(late_session, 1, SOURCE_WINDOW)
    assert any(sorted(expected[i]) != sorted(source[i]) for i in expected), "the window changed the counts"


def assert_counted(live, folder, unit: str, window: tuple[float, float]) -> None:
    """The view's sums of ``unit`` are its spikes in ``window`` as the independent recount gets them."""
    sums = live.live.sums
    column = sums.units.index(unit)
    for image, counts in recount(folder, sums.units.index(unit), window).items():
        k = sums.index[image]
        assert (sums.counts[k, column], sums.sums[k, column]) == (len(counts), pytest.approx(sum(counts))), image


def focus(qtbot, live, unit: str) -> None:
    click_row(qtbot, live.table, next(r for r in range(live.table.rowCount()) if live.table.item(r, 0).text() == unit))
    assert live.spikes.unit == unit


def test_a_window_dragged_and_adopted_for_all_units_then_undone_from_another_unit(qtbot, window, late_session,
                                                                               monkeypatch):
    """The counting window dragged on the PSTH (the region, by its middle) and adopted for every unit counts
    both units in it; the other unit, focused, says it is counted in every unit's window, and its "Source's
    window for all units" brings every unit back to the source's counts."""
    live = window.live
    open_tab(qtbot, window.tabs, live)
    answer_folder_dialog(monkeypatch, late_session)
    click(qtbot, live.open_button)
    qtbot.waitUntil(lambda: live.table.rowCount() == 2 and live.live.has_spikes, timeout=20000)
    focus(qtbot, live, "unit0")
    open_tab(qtbot, live.pages, live.spikes)
    spikes = live.spikes
    assert spikes.counted.text() == "unit0 counted in the source's window (40..140 ms)"
    assert not spikes.source_button.isEnabled(), "nothing adopted: nothing to go back from"

    view = spikes.psth_plot
    box = view.plotItem.vb
    qtbot.waitUntil(lambda: box.viewRange()[0][1] > 200, timeout=5000)  # drawn: its axes span the spikes

    def on_screen(x_ms: float):
        low, high = box.viewRange()[1]
        return view.mapFromScene(box.mapViewToScene(QPointF(x_ms, (low + high) / 2))).toPointF().toPoint()
    drag(view.viewport(), on_screen(90), on_screen(150))
    start, end = spikes.region.getRegion()
    assert (start, end) == pytest.approx((100, 200), abs=3), "dragged 60 ms later"
    assert (spikes.start_box.value(), spikes.end_box.value()) == (round(start), round(end)), "the boxes follow"
    dragged = (spikes.start_box.value() / 1000, spikes.end_box.value() / 1000)

    click(qtbot, spikes.adopt_all_button)
    shown = f"{dragged[0] * 1000:g}..{dragged[1] * 1000:g} ms"
    assert spikes.result.text() == f"every unit: counted {shown} after the onset, from the spikes kept"
    qtbot.waitUntil(lambda: spikes.counted.text() == f"unit0 counted in {shown} (every unit's window)",
                    timeout=20000)
    assert_counted(live, late_session, "unit0", dragged)
    assert_counted(live, late_session, "unit1", dragged)

    focus(qtbot, live, "unit1")
    assert spikes.counted.text() == f"unit1 counted in {shown} (every unit's window)"
    assert spikes.region.getRegion() == pytest.approx(tuple(v * 1000 for v in dragged))
    assert spikes.source_button.text() == "Source's window for all units"
    click(qtbot, spikes.source_button)
    qtbot.waitUntil(lambda: spikes.counted.text() == "unit1 counted in the source's window (40..140 ms)",
                    timeout=20000)
    assert spikes.result.text() == "every unit: counted in the source's window again"
    assert_counted(live, late_session, "unit0", SOURCE_WINDOW)
    assert_counted(live, late_session, "unit1", SOURCE_WINDOW)


def test_a_replayed_session_says_it_kept_counts_only(qtbot, window, tmp_path, monkeypatch):
    """A replay of a published-layout recording keeps no spike times: the Spikes page says so instead of
    drawing empty plots, and the fits are still there."""
    np.save(tmp_path / "recorded.npy", np.random.default_rng(0).poisson(5, (1, 2, 3)).astype(float))
    stimuli, out, rig = tmp_path / "set", tmp_path / "session", tmp_path / "rig.toml"
    StimulusSet([StimulusRecord(image_id=f"image000{i}", kind="natural") for i in (1, 2)],
                np.stack([grating(0), grating(90)])).save(stimuli)
    rig.write_text(RIG)
    result = run_cli("session", "run", "--stimuli", str(stimuli), "--rig", str(rig), "--source", "replay",
                     "--source-opt", f"responses={tmp_path / 'recorded.npy'}", "--map", "n0=demo:0", "--repeats", "3",
                     "--out", str(out), timeout=300)
    assert result.returncode == 0, result.stderr
    live = window.live
    open_tab(qtbot, window.tabs, live)
    answer_folder_dialog(monkeypatch, out)
    click(qtbot, live.open_button)
    qtbot.waitUntil(lambda: live.table.rowCount() == 1, timeout=20000)
    focus(qtbot, live, "n0")
    open_tab(qtbot, live.pages, live.spikes)
    assert live.spikes.pages.currentWidget() is live.spikes.empty
    assert live.spikes.empty.text() == "counts only: no spike times kept (replay)"
    assert live.live.fit.n_presentations == 6, "the counts are fitted all the same"
    open_tab(qtbot, live.pages, live.pages.widget(0))
    x, r = live.r_curve.getData()
    assert list(x) == [6] and live.r_curve.opts["symbol"] == "o", "the reopened session's r: one point, drawn"
    assert r[0] == pytest.approx(live.live.summary.r[0])
