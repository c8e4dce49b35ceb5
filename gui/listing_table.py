"""A table whose last column lists entries ("190923:12 +0.85, 190923:3 -0.41"), each kept whole.

The closed loop's readouts name, per unit, the bank neurons its readout reads most from. Squeezed by its
splitter at a small window, Qt's stretched last column shrank to a few pixels and wrapped "190923:12" apart
from its weight, into rows many lines tall. Here every column is as wide as its text, the last one fills
what is left but is never narrower than its widest entry, and a list wraps between entries only; a table
narrower than that scrolls sideways.
"""

from __future__ import annotations

from collections.abc import Sequence

from PyQt6.QtGui import QResizeEvent
from PyQt6.QtWidgets import QHeaderView, QStyle, QTableWidget, QTableWidgetItem, QWidget

from compactrig.gui.qt_parts import horizontal_header, style_of, vertical_header, viewport

ENTRY_SEPARATOR = ", "
"""Between a last cell's entries (where a long list may wrap)."""
NO_BREAK = "\u00a0"
"""Within an entry, in place of its spaces (where it must not)."""


class ListingTable(QTableWidget):
    """Rows of text cells; the last column's cells are lists of entries joined by ``ENTRY_SEPARATOR``."""

    def __init__(self, columns: Sequence[str], parent: QWidget | None = None) -> None:
        super().__init__(0, len(columns), parent)
        self.setHorizontalHeaderLabels(list(columns))
        self.setWordWrap(True)
        horizontal_header(self).setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        horizontal_header(self).setStretchLastSection(False)
        vertical_header(self).setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self._widest_entry = 0

    def show_rows(self, rows: Sequence[Sequence[str]]) -> None:
        """Fills the table with ``rows`` (one text per column) and sizes the columns to them."""
        last = self.columnCount() - 1
        self.setRowCount(len(rows))
        entries: list[str] = []
        for row, cells in enumerate(rows):
            for column, text in enumerate(cells):
                if column == last:
                    parts = [entry.replace(" ", NO_BREAK) for entry in text.split(ENTRY_SEPARATOR)]
                    entries += parts
                    text = ENTRY_SEPARATOR.join(parts)
                self.setItem(row, column, QTableWidgetItem(text))
        for column in range(last):
            self.resizeColumnToContents(column)
        margin = 2 * (style_of(self).pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, self) + 1)
        metrics = self.fontMetrics()
        self._widest_entry = max([horizontal_header(self).sectionSizeHint(last)]
                                 + [metrics.horizontalAdvance(entry + ",") + margin for entry in entries])
        self._fit_last_column()

    def resizeEvent(self, event: QResizeEvent | None) -> None:
        super().resizeEvent(event)
        self._fit_last_column()

    def _fit_last_column(self) -> None:
        """The last column: what the others leave of the view, but at least the widest entry."""
        last = self.columnCount() - 1
        header = horizontal_header(self)
        others = sum(header.sectionSize(column) for column in range(last))
        width = max(self._widest_entry, viewport(self).width() - others)
        if header.sectionSize(last) != width:
            header.resizeSection(last, width)
