"""A measured refresh off the rig file's, at the terminal: warned in the run's lines, the run goes on (as
``present``), recorded in ``session.json`` and drawn in red in the report; a paced rig is not warned."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from compactrig.rig.session.folder import read_snapshot
from compactrig.stimuli.probes import grating
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

from support.commands import run_cli
from support.sessions import RIG, check_exactly_once

pytestmark = pytest.mark.needs_display

REPORT_RED = np.array([0xB0, 0x00, 0x20])


def red_pixels_under_the_panels(png) -> int:
    """Pixels of the report's trouble colour in its bottom eighth (under the panels' axis labels)."""
    with Image.open(png) as picture:
        pixels = np.asarray(picture.convert("RGB")).astype(int)
    bottom = pixels[-pixels.shape[0] // 8:]
    return int((np.abs(bottom - REPORT_RED).max(axis=2) < 20).sum())


def run(tmp_path, name, rig_text, stimuli):
    rig = tmp_path / f"{name}.toml"
    rig.write_text(rig_text)
    out = tmp_path / name
    result = run_cli("session", "run", "--stimuli", str(stimuli), "--rig", str(rig), "--source", "simulated",
                     "--out", str(out), timeout=300)
    assert result.returncode == 0, result.stderr
    return out, result.stdout


def test_a_wrong_refresh_is_warned_recorded_and_red_in_the_report_and_the_run_goes_on(tmp_path):
    stimuli = tmp_path / "set"
    StimulusSet([StimulusRecord(image_id=f"img{i}", kind="natural") for i in range(4)],
                np.stack([grating(a) for a in (0, 45, 90, 135)])).save(stimuli)
    # Xvfb has no vsync: unpaced, its frames come at hundreds of Hz, not the rig file's 60
    out, said = run(tmp_path, "unpaced", RIG, stimuli)
    check_exactly_once(out, 4)
    recorded = read_snapshot(out)["refresh_measured"]
    assert len(recorded) == 1 and recorded[0]["rig_hz"] == 60.0 and recorded[0]["differs"] is True
    measured = recorded[0]["measured_hz"]
    assert abs(measured - 60.0) > 0.02 * 60.0
    warning = next(line for line in said.splitlines() if line.startswith("warning: measured refresh"))
    assert f"{measured:.1f} Hz differs from the rig file's 60 Hz" in warning
    assert f"{100 * 60.0 / measured:.0f} % of the time" in warning
    assert run_cli("session", "report", str(out)).returncode == 0
    assert red_pixels_under_the_panels(out / "report.png") > 50, "the wrong refresh is drawn in red"

    paced, said = run(tmp_path, "paced", RIG.replace("[screen]", "[screen]\npace_frames = true"), stimuli)
    recorded = read_snapshot(paced)["refresh_measured"]
    assert len(recorded) == 1 and recorded[0]["paced"] is True and recorded[0]["differs"] is False
    assert "warning" not in said and re.search(r"measured refresh [0-9.]+ Hz; frames paced", said)
    assert run_cli("session", "report", str(paced)).returncode == 0
    assert red_pixels_under_the_panels(paced / "report.png") == 0
