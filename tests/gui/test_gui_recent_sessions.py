"""Finding past sessions and banks again: the Rig view's Recent sessions list (sessions in the sessions folder
and those the window used anywhere, newest first), its Show folder button, the past-session dialog opening
in the sessions folder, and a bank folder staying in the bank choice after a restart."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PyQt6.QtCore import QObject, QUrl, pyqtSlot
from PyQt6.QtGui import QDesktopServices

from compactrig.stimuli.probes import grating
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

from support.banks import two_session_bank
from support.commands import run_cli
from support.sessions import RIG
from support.user_input import answer_folder_dialog, choose, click, click_item, open_tab

pytestmark = pytest.mark.needs_display


class FileManager(QObject):
    """Stands in for the system's file manager: where ``file:`` addresses handed to it go."""

    def __init__(self) -> None:
        super().__init__()
        self.shown: list[str] = []

    @pyqtSlot(QUrl)
    def show(self, url: QUrl) -> None:
        self.shown.append(url.toLocalFile())


@pytest.fixture(scope="module")
def two_sessions(tmp_path_factory):
    """A session in the (test's) sessions folder and an older one elsewhere, written by the command line."""
    tmp = tmp_path_factory.mktemp("recent")
    StimulusSet([StimulusRecord(image_id=f"img{i}", kind="natural") for i in range(2)],
                np.stack([grating(0), grating(90)])).save(tmp / "set")
    (tmp / "rig.toml").write_text(RIG)
    root = tmp / "sessions"
    folders = [tmp / "elsewhere" / "older", root / "newer"]
    for folder in folders:
        result = run_cli("session", "run", "--stimuli", str(tmp / "set"), "--rig", str(tmp / "rig.toml"),
                         "--source", "simulated", "--repeats", "1", "--out", str(folder), timeout=120)
        assert result.returncode == 0, result.stderr
    return root, folders


def listed(window) -> list[str]:
    items = window.rig.recent.list
    return [items.item(k).toolTip() for k in range(items.count())]


def test_recent_sessions_open_in_one_click_and_are_remembered_across_a_restart(qtbot, two_sessions, monkeypatch,
                                                                                tmp_path):
    from compactrig.gui.main_window import MainWindow
    root, (older, newer) = two_sessions
    monkeypatch.setenv("COMPACTRIG_SESSIONS_DIR", str(root))
    window = MainWindow()
    window.show()
    qtbot.waitExposed(window)
    try:
        recent = window.rig.recent
        assert str(root) in recent.folder_label.text()
        assert listed(window) == [str(newer)], "the sessions folder's; the other was never used here"
        assert "simulated, 2 images  (newer)" in recent.list.item(0).text()

        started_in: list[str] = []
        answer_folder_dialog(monkeypatch, older, started_in)
        open_tab(qtbot, window.tabs, window.live)
        click(qtbot, window.live.open_button)
        assert started_in == [str(root)], "the dialog opens where the sessions are, not the working folder"
        qtbot.waitUntil(lambda: window.live.live.folder == older, timeout=20000)
        assert listed(window) == [str(newer), str(older)], "newest first, the one opened elsewhere now listed"

        open_tab(qtbot, window.tabs, window.rig)
        assert not recent.open_button.isEnabled(), "nothing chosen yet"
        click_item(qtbot, recent.list, 0)
        click(qtbot, recent.open_button)
        qtbot.waitUntil(lambda: window.live.live.folder == newer, timeout=20000)
        assert window.live.live.sums is not None and window.live.live.sums.n_presentations == 2

        manager = FileManager()
        QDesktopServices.setUrlHandler("file", manager, "show")
        try:
            click(qtbot, recent.show_button)
        finally:
            QDesktopServices.unsetUrlHandler("file")
        assert [os.path.normpath(p) for p in manager.shown] == [str(root)]

        bank = two_session_bank(tmp_path / "my bank")
        answer_folder_dialog(monkeypatch, bank)
        open_tab(qtbot, window.tabs, window.models)
        window.models.bank_choice.setFocus()
        qtbot.keyClicks(window.models.bank_choice, "folder")  # "folder…": the dialog, then the bank it names
        assert window.models.bank_spec == str(bank) and window.models.bank_choice.currentText() == "my bank"
        choose(qtbot, window.models.bank_choice, "demo")
        assert window.models.bank_spec == "demo" or window.models.bank_spec is None
    finally:
        window.close()

    restarted = MainWindow()  # the settings the first one saved on close
    restarted.show()
    qtbot.waitExposed(restarted)
    try:
        assert listed(restarted) == [str(newer), str(older)], "the session opened from elsewhere is remembered"
        choices = [restarted.models.bank_choice.itemData(k) for k in range(restarted.models.bank_choice.count())]
        assert str(bank) in choices, "the bank folder is still offered after the restart"
        choose(qtbot, restarted.models.bank_choice, "my bank")
        assert restarted.models.bank_spec == str(bank) and len(restarted.models.bank) == 3
    finally:
        restarted.close()
    assert Path(older).is_dir() and Path(newer).is_dir()
