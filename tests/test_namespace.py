"""One import namespace: everything installs under ``compactrig``, nothing with a generic name reaches
site-packages, and ``import compactrig`` offers the scripting API."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import numpy as np
import pytest

from support import REPO
from support.independent_model import evaluate
from support.source_imports import offenders, python_files

GENERIC = {"engine", "stimuli", "plugins", "gui", "resources", "rig", "cli"}


def test_every_import_of_our_code_goes_through_the_compactrig_namespace():
    """Run from the repository root, ``import engine`` would still work and hide a missed rename; installed,
    it would fail. So no file may import our folders by their bare names."""
    files = python_files("", *GENERIC, "tests", "benchmarks", "docs")
    assert offenders(files, GENERIC) == []


@pytest.mark.slow
def test_the_wheel_holds_only_the_compactrig_package(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    wheel = next(tmp_path.glob("compactrig-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {t for t in tops if not t.endswith((".dist-info", ".data"))} == {"compactrig"}
    for module in ("compactrig/__init__.py", "compactrig/engine/models/bank.py", "compactrig/cli/commands/session.py",
                   "compactrig/rig/presenter/window.py", "compactrig/gui/main_window.py",
                   "compactrig/plugins/sources/simulated.py", "compactrig/resources/demo_bank.py"):
        assert module in names
    assert not any(n.startswith(("compactrig/tests/", "compactrig/benchmarks/", "compactrig/docs/")) for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "compactrig = compactrig.cli:console" in text
    assert "simulated = compactrig.plugins.sources.simulated:SimulatedSource" in text


def test_import_compactrig_is_light_and_offers_the_scripting_api(tmp_path):
    light = subprocess.run([sys.executable, "-c", "import sys, compactrig; "
                            "print(sorted(m for m in ('torch', 'PyQt6', 'psychopy') if m in sys.modules))"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert light.stdout.strip() == "[]", light.stderr
    import compactrig
    from compactrig.plugins import ResponseSource
    from compactrig.plugins.sources.base import ResponseSource as Base
    assert ResponseSource is Base, "plugin base classes are importable from compactrig.plugins"
    bank = compactrig.load_bank("demo")
    from compactrig.stimuli.probes import probe_family
    pixels = np.stack([p.pixels for p in probe_family()[:5]])
    np.testing.assert_allclose(compactrig.predict(bank, pixels, ["demo:0"])[0],
                               evaluate(bank.state_dict("demo:0"), pixels), rtol=1e-4, atol=1e-4)
    designed = compactrig.synthesize(bank, "demo:2", n_images=2, steps=10)
    assert designed.ids == ["max_demo-2_seed0", "max_demo-2_seed1"]
    np.testing.assert_allclose([r.predicted["demo:2"] for r in designed.records],
                               evaluate(bank.state_dict("demo:2"), designed.pixels), rtol=1e-3, atol=1e-3)
    designed.save(tmp_path / "set")
    assert compactrig.read_stimulus_set(tmp_path / "set").ids == designed.ids
    assert compactrig.__version__


def test_every_package_folder_is_listed_for_the_wheel():
    """pyproject lists the packages explicitly (the root maps to ``compactrig``): a new folder left out of
    the list would be missing from every installation but still work in this checkout."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"compactrig"} | {"compactrig." + ".".join(init.parent.relative_to(REPO).parts)
                              for folder in sorted(GENERIC) for init in (REPO / folder).rglob("__init__.py")}
    assert listed == found
