"""Windows and macOS: CompactRig's own code imports no module that exists only on POSIX systems.

CI runs on Linux, where those modules exist, so two checks stand in for a Windows machine:
- every source file is read and no import of a POSIX-only standard module is allowed (the list is the
  Python documentation's "Unix Specific Services", https://docs.python.org/3/library/unix.html);
- every module is imported, and a whole simulated session is run through the command line's ``main``
  in the same process (presenter process included), with ``fcntl``, ``termios``, ``resource``, ``pwd``
  and ``grp`` unimportable for CompactRig's own modules. Third-party libraries keep theirs: PsychoPy's
  and pyglet's Linux back ends use them here and take their own branches on Windows.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from compactrig.stimuli.probes import dot_lattice, grating
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

from support import REPO
from support.source_imports import offenders, python_files

OUR_FOLDERS = ("engine", "stimuli", "plugins", "gui", "resources", "rig", "cli")
"""The folders of the ``compactrig`` package (the repository root is the package itself)."""
POSIX_ONLY = {"posix", "pwd", "grp", "termios", "tty", "pty", "fcntl", "resource", "syslog",
              "crypt", "spwd", "nis", "ossaudiodev"}
"""The standard modules of "Unix Specific Services" (and the deprecated Unix-only ones)."""
BLOCKED = ("fcntl", "termios", "resource", "pwd", "grp")

BLOCKER = textwrap.dedent(f"""
    import builtins
    _original = builtins.__import__
    def _guarded(name, globals=None, locals=None, fromlist=(), level=0):
        importer = (globals or {{}}).get("__name__", "")
        if level == 0 and name.split(".")[0] in {BLOCKED!r} and importer.split(".")[0] == "compactrig":
            raise ImportError(f"{{name}} does not exist on Windows (imported by {{importer}})")
        return _original(name, globals, locals, fromlist, level)
    builtins.__import__ = _guarded
""")


def test_no_source_file_imports_a_posix_only_module():
    files = python_files("", *OUR_FOLDERS)
    assert len(files) > 50
    assert offenders(files, POSIX_ONLY) == []


@pytest.mark.needs_display
def test_every_module_imports_and_a_session_runs_without_posix_only_modules(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)  # every Python process of the run, the presenter's too
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    probe = subprocess.run([sys.executable, "-c", "import fcntl; import compactrig.rig.session.folder; print('ok')"],
                           capture_output=True, text=True, env=env, cwd=REPO)
    assert probe.stdout.strip() == "ok", probe.stderr  # the guard spares third-party and test code...
    refused = subprocess.run([sys.executable, "-c", "exec('import fcntl', {'__name__': 'compactrig.engine.x'})"],
                             capture_output=True, text=True, env=env, cwd=REPO)
    assert "fcntl does not exist on Windows (imported by compactrig.engine.x)" in refused.stderr  # ...and stops ours

    stimuli = tmp_path / "set"
    StimulusSet([StimulusRecord(image_id=f"img{i}", kind="natural") for i in range(3)],
                np.stack([grating(0), grating(90), dot_lattice()])).save(stimuli)
    rig = tmp_path / "rig.toml"
    rig.write_text("[screen]\nresolution = [400, 300]\nwidth_cm = 40.0\n[image]\nsize_deg = 3.0\n"
                   "[timing]\nframes_on = 2\nframes_off = 1\nimages_per_trial = 3\ninter_trial_s = 0.0\n"
                   "[source]\nname = \"simulated\"\n[source.options]\nseed = 7\ngain = \"2.0\"\n")
    folder = tmp_path / "session"
    session_args = ["session", "run", "--stimuli", str(stimuli), "--rig", str(rig), "--source-opt", "gain=3.0",
                    "--repeats", "2", "--out", str(folder)]
    # one process imports every module, then runs the session as the console script would (one torch start)
    imported_then_run = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import importlib, pkgutil, sys
        count = 0
        for folder in {OUR_FOLDERS!r}:
            module = importlib.import_module("compactrig." + folder)
            for info in pkgutil.walk_packages(module.__path__, module.__name__ + "."):
                if info.name.endswith(".__main__"):
                    continue  # `python -m compactrig.cli`: importing it runs the command
                importlib.import_module(info.name)
                count += 1
        print("modules", count, flush=True)
        from compactrig.cli import main
        sys.exit(main({session_args!r}))
    """)], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert imported_then_run.returncode == 0, imported_then_run.stderr
    assert int(imported_then_run.stdout.split()[1]) > 50
    with sqlite3.connect(folder / "trials.sqlite") as db:
        answered = db.execute("SELECT COUNT(DISTINCT ord) FROM responses").fetchone()[0]
    assert answered == 6
    snapshot = json.loads((folder / "session.json").read_text())
    assert snapshot["rig"]["source"] == {"name": "simulated", "options": {"seed": 7, "gain": "3.0"}}, \
        "no --source: the rig file's [source] and its options, --source-opt over them, in the session's rig"
    assert "source" not in snapshot["plan"], "the source's one home is the session's rig"


def test_with_no_display_and_no_xvfb_the_run_goes_on_offscreen_and_says_what_it_skipped(tmp_path):
    """A fresh Linux machine with neither an X server nor Xvfb: Qt widgets are tested on the offscreen
    platform, the presenter's tests are skipped with one line each, and under CI=true it is an error."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY",
                                                            "QT_QPA_PLATFORM", "CI")}
    env["PATH"] = os.path.dirname(sys.executable)  # the venv's commands only: no Xvfb to be found
    chosen = ["tests/gui/test_gui_stimulus_set.py::test_edit_and_save_a_stimulus_set",
              "tests/rig/presenter/test_presenter.py::test_a_windowed_presenter_opens_where_the_rig_file_puts_it"]
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", *chosen],
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed, 1 skipped" in run.stdout
    assert "needs a display for the PsychoPy presenter: no X server and no Xvfb here" in run.stdout
    under_ci = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", chosen[0]],
                              capture_output=True, text=True, env={**env, "CI": "true"}, cwd=REPO, timeout=300)
    assert under_ci.returncode != 0 and "no X display and no Xvfb under CI=true" in under_ci.stderr
