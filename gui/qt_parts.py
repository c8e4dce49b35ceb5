"""The parts of a built widget that Qt's type stubs declare optional but the widget always has here: a
table's headers and selection model, the items the view filled in. One home for that promise, so the views
use them without a check at every call (a missing one is a defect: it fails here, by name)."""

from __future__ import annotations

from PyQt6.QtCore import QModelIndex
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QAbstractScrollArea,
    QHeaderView,
    QListWidget,
    QListWidgetItem,
    QStyle,
    QTableView,
    QTableWidget,
    QWidget,
)


def horizontal_header(table: QTableView) -> QHeaderView:
    header = table.horizontalHeader()
    assert header is not None, "a table view has its horizontal header"
    return header


def vertical_header(table: QTableView) -> QHeaderView:
    header = table.verticalHeader()
    assert header is not None, "a table view has its vertical header"
    return header


def selected_rows(view: QAbstractItemView) -> list[QModelIndex]:
    """The selected rows' first-column indexes."""
    selection = view.selectionModel()
    assert selection is not None, "a view with a model has a selection model"
    return selection.selectedRows()


def cell_text(table: QTableWidget, row: int, column: int) -> str:
    """The text of a cell the view filled in."""
    item = table.item(row, column)
    assert item is not None, f"cell ({row}, {column}) was filled in"
    return item.text()


def list_item(widget: QListWidget, row: int) -> QListWidgetItem:
    """A row the view filled in."""
    item = widget.item(row)
    assert item is not None, f"row {row} was filled in"
    return item


def top_window(widget: QWidget) -> QWidget:
    """The window ``widget`` is in (itself, if it is one)."""
    window = widget.window()
    assert window is not None, "a widget is always in a window"
    return window


def viewport(area: QAbstractScrollArea) -> QWidget:
    """The scrolled part of a scroll area (a table's cells)."""
    shown = area.viewport()
    assert shown is not None, "a scroll area has its viewport"
    return shown


def style_of(widget: QWidget) -> QStyle:
    """The style ``widget`` is drawn in."""
    style = widget.style()
    assert style is not None, "a widget is always drawn in a style"
    return style
