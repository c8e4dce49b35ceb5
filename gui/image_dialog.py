"""Asking for a set of images: a .zip file, or (cancel that) a folder; both are what ``read_images`` reads."""

from __future__ import annotations

from PyQt6.QtWidgets import QFileDialog, QWidget


def ask_for_images(parent: QWidget, what: str) -> str:
    """The path the user picked, or "" when both dialogs were cancelled."""
    path, _ = QFileDialog.getOpenFileName(parent, f"{what} (a .zip), or cancel to pick a folder", "", "Zip (*.zip)")
    return path or QFileDialog.getExistingDirectory(parent, f"Folder of {what.lower()}")
