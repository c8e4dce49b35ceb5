"""The architecture as a test: pure computation never imports Qt; only presentation imports PsychoPy."""

from __future__ import annotations

from support import REPO
from support.source_imports import offenders, python_files

QT_MODULES = ("PyQt6", "PyQt5", "PySide6", "PySide2", "pyqtgraph", "qtpy")
PURE_PACKAGES = ("engine", "stimuli", "plugins", "resources")
RIG_RUNTIME = ("rig", "cli")
"""The presenter process, sessions, the closed loop and the command line: never Qt."""
PRESENTATION_PACKAGE = "rig/presenter"
"""Where the PsychoPy presenter process lives (issue 4): the only code that imports psychopy,
and it never imports Qt either (it runs in its own process)."""


def test_pure_packages_and_the_rig_runtime_never_import_qt():
    files = python_files(*PURE_PACKAGES, *RIG_RUNTIME)
    assert len(files) > 5
    assert offenders(files, QT_MODULES) == []


def test_only_presentation_code_imports_psychopy():
    files = [p for p in python_files("engine", "stimuli", "plugins", "resources", "rig", "cli", "gui")
             if PRESENTATION_PACKAGE not in p.relative_to(REPO).as_posix()]
    assert offenders(files, ("psychopy",)) == []


def test_checker_sees_real_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom PyQt6.QtWidgets import QWidget\nimport psychopy.visual as v\n")
    assert offenders([sample], QT_MODULES) and offenders([sample], ("psychopy",))
