"""Pressing what a user presses: buttons, tabs, table rows and header sections, through real mouse
events on the real widgets (``qtbot``), so a wiring mistake fails the test as it fails the user."""

from __future__ import annotations

from PyQt6.QtCore import QPoint, Qt
from PyQt6.QtWidgets import QAbstractButton, QComboBox, QListWidget, QTableWidget, QTabWidget, QWidget


def click(qtbot, button: QAbstractButton) -> None:
    assert button.isVisible() and button.isEnabled(), f"{button.text()!r} cannot be pressed now"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def open_tab(qtbot, tabs: QTabWidget, page: QWidget) -> None:
    bar = tabs.tabBar()
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(tabs.indexOf(page)).center())
    assert tabs.currentWidget() is page


def click_row(qtbot, table: QTableWidget, row: int, column: int = 1) -> None:
    table.scrollToItem(table.item(row, column))
    rect = table.visualItemRect(table.item(row, column))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def click_item(qtbot, items: QListWidget, row: int, add: bool = False) -> None:
    """Click a list entry; ``add`` holds Ctrl to add it to the selection."""
    items.scrollToItem(items.item(row))
    rect = items.visualItemRect(items.item(row))
    modifier = Qt.KeyboardModifier.ControlModifier if add else Qt.KeyboardModifier.NoModifier
    qtbot.mouseClick(items.viewport(), Qt.MouseButton.LeftButton, modifier, rect.center())


def hover_item(qtbot, items: QListWidget, row: int) -> str:
    """Rest the mouse on a list entry until its tooltip would show; returns the tooltip shown ("" for none)."""
    from PyQt6.QtCore import QEvent
    from PyQt6.QtGui import QHelpEvent
    from PyQt6.QtWidgets import QApplication, QToolTip
    items.scrollToItem(items.item(row))
    centre = items.visualItemRect(items.item(row)).center()
    viewport = items.viewport()
    qtbot.mouseMove(viewport, centre)
    QApplication.sendEvent(viewport, QHelpEvent(QEvent.Type.ToolTip, centre, viewport.mapToGlobal(centre)))
    shown = QToolTip.text() if QToolTip.isVisible() else ""
    QToolTip.hideText()
    return shown


def toggle_tick(qtbot, items: QListWidget, row: int) -> None:
    """Click an entry, then Space: what flips a ticked entry's box from the keyboard."""
    click_item(qtbot, items, row)
    qtbot.keyClick(items, Qt.Key.Key_Space)


def choose(qtbot, combo: QComboBox, text: str) -> None:
    """Pick a combo box entry by typing its first letters, as a user does with the box focused."""
    from PyQt6.QtWidgets import QApplication
    qtbot.wait(QApplication.keyboardInputInterval() + 50)  # letters typed sooner would extend the last search
    combo.setFocus()
    qtbot.keyClicks(combo, text)
    assert combo.currentText().startswith(text), f"typing {text!r} chose {combo.currentText()!r}"


def click_header(qtbot, table: QTableWidget, column: int) -> None:
    header = table.horizontalHeader()
    x = header.sectionViewportPosition(column) + header.sectionSize(column) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, header.height() // 2))


def type_into(qtbot, field, text: str) -> None:
    """Replace what a line edit or spin box holds by typing, then Enter, as a user does."""
    editor = field.lineEdit() if hasattr(field, "lineEdit") else field
    editor.setFocus()
    editor.selectAll()
    qtbot.keyClicks(editor, text)
    qtbot.keyClick(editor, Qt.Key.Key_Return)


def wheel(widget: QWidget, notches: int) -> None:
    """Turn the mouse wheel over ``widget`` (positive: away from the user)."""
    from PyQt6.QtCore import QPointF
    from PyQt6.QtGui import QWheelEvent
    from PyQt6.QtWidgets import QApplication
    centre = QPointF(widget.rect().center())
    event = QWheelEvent(centre, QPointF(widget.mapToGlobal(widget.rect().center())), QPoint(0, 0),
                        QPoint(0, 120 * notches), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def drag(widget: QWidget, start: QPoint, end: QPoint, steps: int = 12) -> None:
    """Press the left button at ``start``, move to ``end`` in ``steps`` with it held (past the drag distance),
    release: the mouse events a hand's drag sends, 25 ms apart (``QTest.mouseMove`` carries no button held,
    and pyqtgraph drops moves that come faster than a mouse's)."""
    from PyQt6.QtCore import QEvent, QPointF
    from PyQt6.QtGui import QMouseEvent
    from PyQt6.QtTest import QTest
    from PyQt6.QtWidgets import QApplication

    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton

    def send(kind: QEvent.Type, at: QPointF, button: Qt.MouseButton, held: Qt.MouseButton) -> None:
        event = QMouseEvent(kind, at, QPointF(widget.mapToGlobal(at)), button, held, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(widget, event)

    first, last = QPointF(start), QPointF(end)
    send(QEvent.Type.MouseButtonPress, first, left, left)
    for k in range(1, steps + 1):
        QTest.qWait(25)
        send(QEvent.Type.MouseMove, first + (last - first) * (k / steps), none, left)
    send(QEvent.Type.MouseButtonRelease, last, left, none)


def open_file_dialog_answer(monkeypatch, path) -> None:
    """The operating system's open-file dialog, answered with ``path``."""
    from PyQt6.QtWidgets import QFileDialog
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *args, **kwargs: (str(path), "")))


def answer_folder_dialog(monkeypatch, folder, started_in: list[str] | None = None) -> list[str]:
    """The operating system's folder dialogs, answered with ``folder``: the one choosing a folder, and the save
    dialog where a folder to save in is named (typed, so it may be new); returns their titles as asked
    (``started_in`` gets the folder each opened in)."""
    from PyQt6.QtWidgets import QFileDialog
    asked: list[str] = []

    def choose(parent, title, directory="", *args, **kwargs):
        asked.append(title)
        if started_in is not None:
            started_in.append(directory)
        return str(folder)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(choose))
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *args, **kwargs: (choose(*args, **kwargs), "")))
    return asked


def retype(qtbot, editor, old: str, new: str) -> None:
    """Select ``old`` in a text editor (as a user drags over it) and type ``new`` over it."""
    cursor = editor.document().find(old)
    assert not cursor.isNull(), f"{old!r} is not in the editor"
    editor.setFocus()
    editor.setTextCursor(cursor)
    qtbot.keyClicks(editor, new)


def when_message_box_up(act) -> None:
    """Call ``act(box)`` on the next message box once it is up (its own event loop runs while it waits)."""
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication, QMessageBox

    def poll() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            act(box)
        else:
            QTimer.singleShot(50, poll)

    QTimer.singleShot(50, poll)


def answer_message_box(button, expect: str = "", seen: list | None = None) -> None:
    """Press ``button`` (a ``QMessageBox.StandardButton``) of the next message box once it is up; ``expect``: a
    fragment its text must hold; ``seen`` gets its text."""
    def press(box) -> None:
        assert expect in box.text(), box.text()
        if seen is not None:
            seen.append(box.text())
        box.button(button).click()
    when_message_box_up(press)


def press_enter_on_message_box(qtbot, seen: list | None = None) -> None:
    """Press Enter in the next message box once it is up: its default button answers."""
    def press(box) -> None:
        if seen is not None:
            seen.append(box.text())
        qtbot.keyClick(box, Qt.Key.Key_Return)
    when_message_box_up(press)


def press_message_box_button(text: str, expect: str = "") -> None:
    """Press the button labelled ``text`` of the next message box once it is up; ``expect``: a fragment of its
    text."""
    def press(box) -> None:
        assert expect in box.text(), box.text()
        buttons = [b for b in box.buttons() if b.text() == text]
        assert buttons, [b.text() for b in box.buttons()]
        buttons[0].click()
    when_message_box_up(press)
