"""Shared fixtures: where the published test data are, and cached readings of them.

The published models and recordings are never copied into the repository; tests find
them through ``COMPACTRIG_SHARED_DATA`` (default ``../shared/data/v4_compact_models``).
When ``CI=true`` and they are missing, tests that need them fail instead of skipping.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from support import REPO

NO_DISPLAY_REASON = "needs a display for the PsychoPy presenter: no X server and no Xvfb here (apt-get install xvfb)"


def has_display() -> bool:
    """Windows and macOS always have one; on Linux an X server or Wayland (Xvfb started by pytest-xvfb counts)."""
    return not sys.platform.startswith("linux") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    """Runs after pytest-xvfb has had its chance to start a virtual X server. With no display at all, Qt
    runs on its offscreen platform (instead of aborting the whole run) and the tests that open a real
    window are skipped, each saying why; under CI a missing Xvfb is an error, never a skip."""
    config.addinivalue_line("markers", "needs_display: opens a real window (the PsychoPy presenter)")
    if has_display():
        return
    if os.environ.get("CI", "").lower() == "true":
        raise pytest.UsageError("no X display and no Xvfb under CI=true: install xvfb (.ci/apt-packages.txt)")
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={offscreen_screen(config)}"


def offscreen_screen(config) -> Path:
    """A Qt offscreen-platform configuration whose one screen is the size pytest-xvfb gives its virtual
    screen (``xvfb_width`` x ``xvfb_height`` in pyproject.toml), so the views are laid out on the same
    screen with or without an X server (Qt's own offscreen screen is 800 x 800)."""
    def ini(key: str, default: int) -> int:
        try:
            return int(config.getini(key) or default)
        except ValueError:  # pytest-xvfb not loaded (-p no:xvfb): its keys are unknown
            return default

    width, height = ini("xvfb_width", 1280), ini("xvfb_height", 800)
    path = Path(tempfile.mkdtemp(prefix="compactrig-qt-")) / "offscreen.json"
    path.write_text(json.dumps({"screens": [{"name": "offscreen", "x": 0, "y": 0, "width": width,
                                             "height": height, "logicalDpi": 96, "logicalBaseDpi": 96,
                                             "dpr": 1}]}))
    return path


def pytest_collection_modifyitems(config, items):
    if has_display():
        return
    skip = pytest.mark.skip(reason=NO_DISPLAY_REASON)
    for item in items:
        if item.get_closest_marker("needs_display"):
            item.add_marker(skip)


def shared_data_dir() -> Path:
    configured = os.environ.get("COMPACTRIG_SHARED_DATA")
    return Path(configured) if configured else REPO.parent / "shared" / "data" / "v4_compact_models"


@pytest.fixture(autouse=True)
def private_config(tmp_path_factory, monkeypatch):
    """Every test gets its own settings, crash-log and sessions folders: the window never reads or writes the
    user's; the run shares one cache folder (bank identities), never the user's."""
    monkeypatch.setenv("COMPACTRIG_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
    monkeypatch.setenv("COMPACTRIG_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("COMPACTRIG_LOG_DIR", str(tmp_path_factory.mktemp("logs")))
    monkeypatch.setenv("COMPACTRIG_SESSIONS_DIR", str(tmp_path_factory.mktemp("sessions")))


@pytest.fixture()
def window(qtbot):
    """The CompactRig window, shown; closed at the end, which stops its jobs.

    Not given to ``qtbot.addWidget``: pytest-qt would close it before this fixture's teardown,
    and a test that failed mid-session would then hang on the "A session is running" question.
    """
    from compactrig.gui.main_window import MainWindow
    main = MainWindow()
    main.show()
    qtbot.waitExposed(main)
    yield main
    if main.rig.running():
        main.rig.stop_and_wait()
    if main.isVisible() and main.unsaved_work():  # a test left designed images or set edits: quit without them
        from PyQt6.QtWidgets import QMessageBox

        from support.user_input import answer_message_box
        answer_message_box(QMessageBox.StandardButton.Discard)
    main.close()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The published data folder; fails under CI when absent, skips elsewhere."""
    path = shared_data_dir()
    if not (path / "data_compact_models" / "models_torch").is_dir():
        message = f"published test data not found at {path}; set COMPACTRIG_SHARED_DATA"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def published_bank(shared_data):
    from compactrig.engine.models.bank import load_directory
    return load_directory(shared_data / "data_compact_models")


@pytest.fixture(scope="session")
def images_190923(shared_data):
    from compactrig.engine.files.image_files import read_images
    return read_images(shared_data / "data_V4_responses" / "images" / "images_190923.zip")


@pytest.fixture(scope="session")
def images_201025(shared_data):
    from compactrig.engine.files.image_files import read_images
    return read_images(shared_data / "data_V4_responses" / "images" / "images_201025.zip")


@pytest.fixture()
def cli(capsys, monkeypatch):
    """The command line run in this process, answering like ``support.commands.run_cli``: the same ``main``
    the console script calls, without a new Python and torch start per command (about 3 s each here).
    Commands whose process boundary is the point (signals, crashes, the installed script) keep ``run_cli``."""
    from compactrig.cli import main

    def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        monkeypatch.chdir(cwd or REPO)
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as stop:  # argparse's usage errors
            code = stop.code if isinstance(stop.code, int) else 2
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, captured.out, captured.err)
    return run

