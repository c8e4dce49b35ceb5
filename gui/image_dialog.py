"""Asking for a set of images: from a .zip file or from a folder (both are what ``read_images`` reads).

The user says which first, then the system's dialog for that opens: a file dialog cannot pick both, and
Cancel should mean cancel, not "the other kind".
"""

from __future__ import annotations

from PyQt6.QtWidgets import QFileDialog, QMessageBox, QWidget

ZIP, FOLDER = "A .zip file…", "A folder…"


def ask_for_images(parent: QWidget, what: str) -> str:
    """The path the user picked, or "" when cancelled."""
    box = QMessageBox(QMessageBox.Icon.Question, what, f"{what}: from a .zip file or from a folder of images?",
                      QMessageBox.StandardButton.Cancel, parent)
    zip_button = box.addButton(ZIP, QMessageBox.ButtonRole.AcceptRole)
    folder_button = box.addButton(FOLDER, QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(zip_button)
    box.exec()
    if box.clickedButton() is zip_button:
        return QFileDialog.getOpenFileName(parent, f"{what} (a .zip file)", "", "Zip (*.zip)")[0]
    if box.clickedButton() is folder_button:
        return QFileDialog.getExistingDirectory(parent, f"{what} (a folder of images)")
    return ""
