"""The Rig view's "Recent sessions" box: the sessions used lately, one click to open one, and where they are kept.

It draws ``compactrig.rig.session.recent`` (which sessions, newest first) and asks the Rig view to open the
chosen one in Live fits; "Show folder" hands the sessions folder to the system's file manager.
"""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import Qt, QUrl, pyqtSignal
from PyQt6.QtGui import QDesktopServices
from PyQt6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout

from compactrig.rig.session.recent import recent_sessions, remember, sessions_root


class RecentSessionsBox(QGroupBox):
    """The list, an Open button (or a double click), and the sessions folder with a Show folder button."""

    open_requested = pyqtSignal(object)
    """The session folder the user chose to look at."""

    def __init__(self) -> None:
        super().__init__("Recent sessions")
        self.remembered: list[str] = []
        """Sessions the window started, resumed or opened, most recent first (kept in the settings)."""
        self.list = QListWidget()
        self.list.setMinimumHeight(90)
        self.list.itemDoubleClicked.connect(self._open_item)
        self.list.itemSelectionChanged.connect(self._selection_changed)
        self.open_button = QPushButton("Open in Live fits")
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(self._open_selected)
        self.folder_label = QLabel()
        self.folder_label.setWordWrap(True)
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.show_button = QPushButton("Show folder")
        self.show_button.setToolTip("open the sessions folder in the file manager")
        self.show_button.clicked.connect(self._show_folder)
        buttons = QHBoxLayout()
        buttons.addWidget(self.folder_label, 1)
        buttons.addWidget(self.show_button)
        buttons.addWidget(self.open_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        self.refresh()

    def set_remembered(self, folders: list[str]) -> None:
        self.remembered = [f for f in folders if isinstance(f, str)]
        self.refresh()

    def add(self, folder: Path | str) -> None:
        """A session just started, resumed or opened: first in the list."""
        self.remembered = remember(self.remembered, folder)
        self.refresh()

    def refresh(self) -> None:
        root = sessions_root()
        self.folder_label.setText(f"New sessions are kept in {root}")
        self.list.clear()
        for session in recent_sessions(self.remembered, root):
            item = QListWidgetItem(session.describe())
            item.setData(Qt.ItemDataRole.UserRole, str(session.folder))
            item.setToolTip(str(session.folder))
            self.list.addItem(item)
        if not self.list.count():
            self.list.addItem(QListWidgetItem("No sessions yet: start one above."))
            self.list.setEnabled(False)
        else:
            self.list.setEnabled(True)
        self._selection_changed()

    def _selection_changed(self) -> None:
        items = self.list.selectedItems()
        self.open_button.setEnabled(bool(items) and items[0].data(Qt.ItemDataRole.UserRole) is not None)

    def _open_item(self, item: QListWidgetItem) -> None:
        folder = item.data(Qt.ItemDataRole.UserRole)
        if folder is not None:
            self.open_requested.emit(folder)

    def _open_selected(self) -> None:
        items = self.list.selectedItems()
        if items:
            self._open_item(items[0])

    def _show_folder(self) -> None:
        root = sessions_root()
        root.mkdir(parents=True, exist_ok=True)  # its own folder: asked for by the user, made empty if new
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(root)))
