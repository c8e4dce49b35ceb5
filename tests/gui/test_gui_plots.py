"""The window's plots as a user reads them (issue 42 item 6): a past session opened in Live fits with a bank of
14 neurons (ids as the published bank's) loaded in Models, its readouts fitted by the closed-loop panel; three of
the session's images were synthesized for unit1 in an earlier loop (their provenance says so, their names do
not). What is checked is what is seen: tick names apart, dark titles, plots that keep their height and scroll
into view at the smallest window, labels whole, the synthesized images marked, one focused unit."""

from __future__ import annotations

import itertools
import sqlite3

import numpy as np
import pyqtgraph as pg
import pytest
from PyQt6.QtCore import QPoint, QRect, QRectF, Qt
from PyQt6.QtGui import QColor, QImage, QPainter
from PyQt6.QtWidgets import QStyle

from compactrig.engine.models.bank import load_bank
from compactrig.engine.models.bank_writer import write_model
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet
from compactrig.stimuli.textures import pink_noise_images

from support.commands import run_cli
from support.sessions import RIG
from support.user_input import answer_folder_dialog, choose, click, click_row, open_tab, wheel

pytestmark = [pytest.mark.slow, pytest.mark.needs_display]

DESIGNED = ("favourite0", "favourite1", "favourite2")
"""Images synthesized for unit1 through its readout, as the closed loop records them; named by the user."""
READABLE_PX = 140
"""A plot shorter than this is a strip: points and tick numbers crowd together."""


@pytest.fixture(scope="module")
def past_loop(tmp_path_factory):
    """(bank folder, session folder): 14 copies of the demo neurons as ``190923:K``; a finished simulated
    session of 19 images x 2 (units 0-2 the demo neurons, units 3-4 mixtures) whose set holds the three
    ``DESIGNED`` images with the loop's synthesis provenance."""
    root = tmp_path_factory.mktemp("plots")
    demo = load_bank("demo")
    for k in range(14):
        write_model(root / "bank", "190923", k, demo.model(f"demo:{k % 3}"), {"copied_from": f"demo:{k % 3}"})
    records = [StimulusRecord(image_id=f"tex{i:02d}", kind="natural") for i in range(16)]
    records += [StimulusRecord(image_id=image_id, kind="max", target_neuron="readout:unit1", seed=seed,
                               method={"method": "gradient through readout", "unit": "unit1"})
                for seed, image_id in enumerate(DESIGNED)]
    StimulusSet(records, pink_noise_images(len(records), seed=9, contrast=60.0)).save(root / "set")
    (root / "rig.toml").write_text(RIG)
    result = run_cli("session", "run", "--stimuli", str(root / "set"), "--rig", str(root / "rig.toml"),
                     "--source", "simulated", "--source-opt", "unknown=2", "--source-opt", "mixture_size=2",
                     "--map", "unit0=demo:0,unit1=demo:1,unit2=demo:2", "--repeats", "2",
                     "--out", str(root / "session"), timeout=300)
    assert result.returncode == 0, result.stderr
    return root / "bank", root / "session"


@pytest.fixture()
def opened(qtbot, window, past_loop, monkeypatch):
    """The window with the bank chosen in Models ("folder…", the dialog answered) and the session opened in
    Live fits ("Open a past session…"), once the closed-loop readouts are fitted."""
    bank, session = past_loop
    open_tab(qtbot, window.tabs, window.models)
    answer_folder_dialog(monkeypatch, bank)
    window.models.bank_choice.setFocus()
    qtbot.keyClicks(window.models.bank_choice, "folder")  # typed into the bank choice: its folder dialog opens
    qtbot.waitUntil(lambda: window.models.table.rowCount() == 14, timeout=10000)
    open_tab(qtbot, window.tabs, window.live)
    answer_folder_dialog(monkeypatch, session)
    click(qtbot, window.live.open_button)
    loop = window.live.loop
    qtbot.waitUntil(lambda: loop.controller.fit is not None and loop.table.rowCount() == 5, timeout=60000)
    return window


def row_of(table, unit: str) -> int:
    return next(r for r in range(table.rowCount()) if table.item(r, 0).text() == unit)


def selected_unit(table) -> str | None:
    rows = table.selectionModel().selectedRows()
    return table.item(rows[0].row(), 0).text() if rows else None


def tick_texts(axis: pg.AxisItem) -> list[tuple[QRectF, str]]:
    """The tick labels the axis draws, each with its rectangle (as its paint() lays them out)."""
    image = QImage(8, 8, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        _, _, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [(rect, text) for rect, _, text in texts]


def luminance(colour: QColor) -> float:
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    return 0.2126 * linear(colour.redF()) + 0.7152 * linear(colour.greenF()) + 0.0722 * linear(colour.blueF())


def darkest_contrast(plot: pg.PlotWidget, item) -> float:
    """The contrast ratio (WCAG) of the darkest pixel drawn where ``item`` (a title or axis label) is, against
    the plot's white background, on a grab of the widget as the screen shows it."""
    rect = plot.mapFromScene(item.sceneBoundingRect()).boundingRect() & plot.rect()
    assert rect.width() > 4 and rect.height() > 4, f"{item} is not on screen"
    image = plot.grab().toImage()
    darkest = min(luminance(image.pixelColor(x, y)) for x in range(rect.left(), rect.right())
                  for y in range(rect.top(), rect.bottom()))
    return 1.05 / (darkest + 0.05)


def in_view(scroll_area, widget) -> bool:
    """``widget`` lies wholly inside what the scroll area shows."""
    viewport = scroll_area.viewport()
    shown = QRect(widget.mapTo(viewport, QPoint(0, 0)), widget.size())
    return viewport.rect().contains(shown)


def test_the_bank_neurons_a_readout_reads_are_named_apart(qtbot, opened):
    loop = opened.live.loop
    click_row(qtbot, loop.table, row_of(loop.table, "unit1"))
    names = set(opened.models.bank.neuron_ids)
    drawn = [(rect, text) for side in ("left", "bottom") for rect, text in tick_texts(loop.weight_plot.getAxis(side))
             if text in names]
    assert len(drawn) >= 10, "the readout's strongest neurons are named"
    for (a, name_a), (b, name_b) in itertools.combinations(drawn, 2):
        assert not a.intersects(b), f"{name_a} and {name_b} are drawn over each other"


def test_titles_and_axis_labels_are_dark_on_the_white_plots(qtbot, opened):
    live, loop = opened.live, opened.live.loop
    click_row(qtbot, loop.table, row_of(loop.table, "unit1"))
    for plot in (live.scatter_plot, loop.fit_plot, loop.weight_plot):
        item = plot.getPlotItem()
        assert darkest_contrast(plot, item.titleLabel) >= 7, f"{item.titleLabel.text!r} is pale"
        assert darkest_contrast(plot, item.getAxis("bottom").label) >= 7, item.getAxis("bottom").labelText
    for plot in (live.scatter_plot, loop.fit_plot):
        assert darkest_contrast(plot, plot.getPlotItem().getAxis("left").label) >= 7


def test_at_the_smallest_window_the_closed_loop_plots_keep_their_height_and_scroll_into_view(qtbot, opened):
    live, loop = opened.live, opened.live.loop
    opened.resize(opened.minimumSizeHint())
    qtbot.waitUntil(lambda: opened.size() == opened.minimumSizeHint().expandedTo(opened.minimumSize()))
    qtbot.wait(200)
    for plot in (live.scatter_plot, live.history_plot, loop.fit_plot, loop.weight_plot):
        assert plot.height() >= READABLE_PX, plot.getPlotItem().titleLabel.text
    bar = live.scroll_area.verticalScrollBar()
    assert bar.maximum() > 0, "the view scrolls"
    assert not in_view(live.scroll_area, loop.weight_plot), "below the fold at first"
    for _ in range(20):
        if in_view(live.scroll_area, loop.weight_plot):
            break
        wheel(live.scroll_area.viewport(), -1)
    assert in_view(live.scroll_area, loop.weight_plot) and in_view(live.scroll_area, loop.fit_plot), \
        "the wheel brings the closed-loop plots whole into view"


def test_axis_labels_are_whole_in_every_plot_at_the_smallest_window(qtbot, opened):
    opened.resize(opened.minimumSizeHint())
    live = opened.live
    views = [(opened.models, None), (opened.live, live.pages.widget(0)), (opened.live, live.spikes),
             (opened.inspect, None)]
    for tab, page in views:
        open_tab(qtbot, opened.tabs, tab)
        if page is not None:
            open_tab(qtbot, live.pages, page)
        qtbot.wait(200)
        for plot in tab.findChildren(pg.PlotWidget):
            if not plot.isVisible():
                continue
            for side in ("left", "bottom"):
                axis = plot.getPlotItem().getAxis(side)
                if not axis.labelText:
                    continue
                room = axis.mapRectToScene(QRectF(0, 0, axis.width(), axis.height())).adjusted(-1, -1, 1, 1)
                label = axis.label.sceneBoundingRect()
                along = (label.top() >= room.top() and label.bottom() <= room.bottom()) if side == "left" else \
                    (label.left() >= room.left() and label.right() <= room.right())
                assert along, f"{axis.labelText!r} is cut off ({label} beyond {room})"


def test_inspect_at_the_smallest_window_scrolls_to_stage_4(qtbot, window):
    inspect = window.inspect
    open_tab(qtbot, window.tabs, inspect)
    qtbot.waitUntil(lambda: inspect.inspection is not None, timeout=30000)
    window.resize(window.minimumSizeHint())
    qtbot.wait(200)
    stage4 = inspect.stage_views[4]
    assert not in_view(inspect.scroll_area, stage4), "cut off at first"
    across = inspect.scroll_area.horizontalScrollBar()
    assert across.maximum() > 0 or inspect.scroll_area.verticalScrollBar().maximum() > 0, "a scroll bar offers it"
    qtbot.keyClick(across, Qt.Key.Key_End)  # the scroll bar taken to its end, as a drag does
    for _ in range(10):
        if in_view(inspect.scroll_area, stage4):
            break
        wheel(inspect.scroll_area.viewport(), -1)
    assert in_view(inspect.scroll_area, stage4), "stage 4's activations can be brought into view"


def test_the_closed_loop_scatter_marks_the_images_synthesized_for_the_focused_unit(qtbot, opened, past_loop):
    loop = opened.live.loop
    click_row(qtbot, loop.table, row_of(loop.table, "unit1"))
    with sqlite3.connect(past_loop[1] / "trials.sqlite") as db:
        counts = db.execute("SELECT p.image_id, r.count FROM responses r JOIN presentations p ON p.ord = r.ord "
                            "WHERE r.unit = 'unit1' AND p.aborted = 0").fetchall()
    means = {image: np.mean([c for i, c in counts if i == image]) for image in DESIGNED}
    fit, ids = loop.controller.fit, loop.controller.fit_data.image_ids
    expected = sorted((fit.held_out[1][ids.index(image)], means[image]) for image in DESIGNED)
    x, y = loop.designed_points.getData()
    np.testing.assert_allclose(sorted(zip(x, y)), expected, err_msg="one mark per synthesized image, at its point")
    all_x, all_y = loop.fit_points.getData()
    assert len(all_x) == 19, "the marks are drawn over the unit's points, which stay"
    assert [label.text for _, label in loop.legend.items] == ["synthesized for unit1"]

    click_row(qtbot, loop.table, row_of(loop.table, "unit0"))
    assert len(loop.designed_points.getData()[0]) == 0 and not loop.legend.items, "none were made for unit0"


def test_a_unit_chosen_in_either_table_is_the_one_focused_unit(qtbot, opened):
    live, loop = opened.live, opened.live.loop
    click_row(qtbot, live.table, row_of(live.table, "unit2"))
    assert selected_unit(loop.table) == "unit2"
    assert loop.fit_plot.getPlotItem().titleLabel.text.startswith("unit2")
    assert live.scatter_plot.getPlotItem().titleLabel.text.startswith("unit2")

    click_row(qtbot, loop.table, row_of(loop.table, "unit1"))
    assert selected_unit(live.table) == "unit1"
    assert live.scatter_plot.getPlotItem().titleLabel.text.startswith("unit1")
    assert live.spikes.unit == "unit1"

    click_row(qtbot, loop.table, row_of(loop.table, "unit3"))  # recorded, with no model: no row in the first table
    assert selected_unit(live.table) is None and selected_unit(loop.table) == "unit3"
    assert live.spikes.unit == "unit3"


def test_at_the_smallest_window_the_units_tables_show_every_cell_whole(qtbot, opened):
    """Numbers cut to "-0.0…" and models to "de…" cannot be read: each column is as wide as its widest cell
    (a table narrower than its columns scrolls sideways). The readouts' neuron lists wrap between neurons, never
    inside "190923:12 +0.85", into rows tall enough to hold them."""
    opened.resize(opened.minimumSizeHint())
    qtbot.waitUntil(lambda: opened.size() == opened.minimumSizeHint().expandedTo(opened.minimumSize()))
    qtbot.wait(200)
    live, loop = opened.live.table, opened.live.loop.table
    for table in (live, loop):
        metrics = table.fontMetrics()
        listed = table.columnCount() - 1 if table is loop else None
        margin = table.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, table) + 1  # Qt's cell text
        for column in range(table.columnCount()):
            width = table.columnWidth(column)
            texts = [table.horizontalHeaderItem(column).text()] + [
                table.item(row, column).text() for row in range(table.rowCount()) if table.item(row, column)]
            for row, text in enumerate(texts[1:]):
                if column == listed:
                    entries = text.split(", ")
                    assert len(entries) == 3 and all(len(entry.split()) == 2 for entry in entries), text
                    for entry in entries:  # a neuron and its weight, on one line
                        assert width - 2 * margin >= metrics.horizontalAdvance(entry + ","), (entry, width)
                    needs = metrics.boundingRect(QRect(0, 0, width - 2 * margin, 100000), Qt.TextFlag.TextWordWrap,
                                                 text)
                    assert needs.height() <= table.rowHeight(row), (text, needs.height(), table.rowHeight(row))
                else:
                    assert width >= metrics.horizontalAdvance(text), (text, width)
            assert width >= metrics.horizontalAdvance(texts[0]), (texts[0], width)
    columns = sum(loop.columnWidth(column) for column in range(loop.columnCount()))
    if columns > loop.viewport().width():
        assert loop.horizontalScrollBar().maximum() > 0, "what does not fit is scrolled to"


def test_another_bank_chosen_leaves_nothing_of_the_last_banks_readout_drawn(qtbot, opened):
    """Choosing the demo bank in Models drops the readouts fitted on the 14-neuron bank: until they are
    fitted again, the plots name no unit and no neuron of the bank left."""
    loop, models = opened.live.loop, opened.models
    assert loop.weight_plot.getAxis("left")._tickLevels, "the 14-neuron bank's readout is drawn"
    old_neurons = set(load_bank(opened.models.bank_spec).neuron_ids)
    open_tab(qtbot, opened.tabs, models)
    choose(qtbot, models.bank_choice, "demo")
    qtbot.waitUntil(lambda: models.table.rowCount() == 3, timeout=10000)
    qtbot.waitUntil(lambda: loop.table.rowCount() == 0 or loop.controller.fit is not None, timeout=10000)
    shown = {label for level in (loop.weight_plot.getAxis("left")._tickLevels or []) for _, label in level}
    assert not shown & old_neurons, shown
    if loop.table.rowCount() == 0:
        assert loop.fit_plot.getPlotItem().titleLabel.text == "" == loop.weight_plot.getPlotItem().titleLabel.text
