"""Plots that read on a white page, made in one place for every view: titles, axis labels and tick numbers in a
dark foreground colour at a set size (pyqtgraph's default grey is pale on white), and a plot never laid out so
small that its axis labels are cut off (its minimum size follows the labels' lengths)."""

from __future__ import annotations

import pyqtgraph as pg

FOREGROUND = "#202020"
"""Titles, axis labels, tick numbers and axis lines: near black, readable on the white background."""
TITLE_SIZE = "10pt"
LABEL_SIZE = "10pt"
READABLE_HEIGHT = 140
"""No plot is laid out shorter than this (px): below it points and tick numbers crowd into a strip."""
READABLE_WIDTH = 220
TITLE_MARGIN = 20
"""Room (px) beside a title's length."""
AXIS_ROOM = 85
"""Room (px) around a plot's data area beside an axis label's length: the other axis (tick numbers and its label)
and the title row, so that a label as long as the data area still fits whole."""


def plot_widget(bottom: str = "", left: str = "") -> pg.PlotWidget:
    """A white plot with dark titles and axes, labelled ``bottom`` and ``left`` (see ``label_axes``)."""
    plot = pg.PlotWidget(background="w")
    item = plot.getPlotItem()
    item.titleLabel.setAttr("color", FOREGROUND)  # kept for every later setTitle
    item.titleLabel.setAttr("size", TITLE_SIZE)
    for side in ("left", "bottom"):
        axis = item.getAxis(side)
        axis.setPen(FOREGROUND)
        axis.setTextPen(FOREGROUND)
        axis.labelStyle["font-size"] = LABEL_SIZE  # kept by every later setLabel without a style
        axis.enableAutoSIPrefix(False)  # "(x0.001)" beside a label reads as part of its unit: plain numbers
    label_axes(plot, bottom, left)
    return plot


def label_axes(plot: pg.PlotWidget, bottom: str = "", left: str = "") -> None:
    """Label the axes (an empty text: none) and keep the plot at least tall enough for the left label and wide
    enough for the bottom one, so the layout never cuts them off."""
    item = plot.getPlotItem()
    lengths = {}
    for side, text in (("bottom", bottom), ("left", left)):
        item.setLabel(side, text or None)
        label = item.getAxis(side).label
        lengths[side] = label.boundingRect().width() if text else 0.0  # unrotated: the text's length
    plot.setMinimumHeight(max(READABLE_HEIGHT, int(lengths["left"]) + AXIS_ROOM))
    plot.setMinimumWidth(max(READABLE_WIDTH, int(lengths["bottom"]) + AXIS_ROOM))


def set_title(plot: pg.PlotWidget, title: str) -> None:
    """Title the plot and keep it at least as wide as the title, so the layout never cuts it off (a small window
    scrolls instead)."""
    item = plot.getPlotItem()
    item.setTitle(title)
    # the title row spans the data area only, not the left axis beside it
    width = int(item.titleLabel.item.boundingRect().width() + item.getAxis("left").width()) + TITLE_MARGIN
    plot.setMinimumWidth(max(plot.minimumWidth(), width))
