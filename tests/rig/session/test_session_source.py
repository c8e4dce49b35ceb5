"""The session's source has one home, the rig ``session.json`` stores: the rig file's ``[source]`` with the
command line's ``--source-opt`` over it, which is what the session runs; a folder written when the plan
recorded the source too resumes and exports with the plan's, the source that session used."""

from __future__ import annotations

import json

import numpy as np
import pytest

from compactrig.engine.errors import CompactRigError
from compactrig.rig.presenter.rig import RigConfig
from compactrig.rig.session.folder import read_snapshot
from compactrig.rig.session.setup import SessionPlan, rig_table, session_rig, start_session
from compactrig.stimuli.probes import dot_lattice, grating
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

from support.sessions import RIG, check_exactly_once, table


@pytest.fixture()
def stimuli(tmp_path):
    StimulusSet([StimulusRecord(image_id=f"img{i}", kind="natural") for i in range(3)],
                np.stack([grating(0), grating(90), dot_lattice()])).save(tmp_path / "set")
    return tmp_path / "set"


def recorded_units(folder) -> list[str]:
    return sorted(unit for (unit,) in table(folder, "SELECT DISTINCT unit FROM responses"))


@pytest.mark.needs_display
def test_source_options_from_the_command_line_over_the_rig_files_land_in_the_stored_rig_and_drive_it(
        tmp_path, stimuli, cli):
    rig = tmp_path / "rig.toml"
    rig.write_text(RIG + '[source]\nname = "simulated"\n[source.options]\nneurons = "demo:0,demo:1"\nunknown = 1\n')
    out = tmp_path / "session"
    ran = cli("session", "run", "--stimuli", str(stimuli), "--rig", str(rig), "--source-opt", "unknown=2",
              "--out", str(out))
    assert ran.returncode == 0, ran.stderr
    snapshot = read_snapshot(out)
    assert snapshot["rig"]["source"] == {"name": "simulated", "options": {"neurons": "demo:0,demo:1", "unknown": "2"}}
    assert not {"source", "source_options"} & set(snapshot["plan"]), "the plan does not record the source again"
    # the rig file's two neurons and the command line's two mixtures: 4 units (the rig file alone: 3; the
    # command line's options alone: the demo bank's 3 neurons and 2 mixtures, 5)
    assert recorded_units(out) == ["unit0", "unit1", "unit2", "unit3"]
    check_exactly_once(out, 3, n_units=4)


def old_layout(folder, rig_source: dict, plan_source: str, plan_options: dict) -> None:
    """``session.json`` as CompactRig wrote it when the plan recorded the source too: the rig file's
    ``[source]`` in the rig, the one the session used (the command line's) in the plan."""
    snapshot = read_snapshot(folder)
    snapshot["rig"]["source"] = rig_source
    snapshot["plan"] = {**snapshot["plan"], "source": plan_source, "source_options": plan_options}
    (folder / "session.json").write_text(json.dumps(snapshot, indent=1))


@pytest.mark.needs_display
def test_a_folder_of_the_old_layout_resumes_and_exports_with_the_source_its_plan_recorded(tmp_path, stimuli, cli):
    out = tmp_path / "session"
    start_session(out, SessionPlan(stimuli=str(stimuli), unit_map={"unit1": "demo:1"}), None)
    old_layout(out, {"name": "simulated", "options": {"neurons": "demo:2"}}, "simulated",
               {"neurons": "demo:0,demo:1", "seed": 3})
    resumed = cli("session", "resume", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert recorded_units(out) == ["unit0", "unit1"], "the plan's two neurons, not the rig's one"
    check_exactly_once(out, 3, n_units=2)
    exported = cli("session", "export", str(out), "--npz", str(tmp_path / "r.npz"), "--nwb", str(tmp_path / "r.nwb"))
    assert exported.returncode == 0, exported.stderr
    data = np.load(tmp_path / "r.npz")
    assert list(data["units"]) == ["unit0", "unit1"] and data["responses"].shape == (2, 3, 1)
    assert list(data["mapped_neurons"]) == ["", "demo:1"]
    from pynwb import NWBHDF5IO
    with NWBHDF5IO(str(tmp_path / "r.nwb"), "r") as io:
        assert io.read().session_description.endswith("3 images, source simulated")


def test_the_stored_rig_is_the_source_and_an_old_plans_source_is_read_or_refused_in_one_line():
    rig = RigConfig(source_name="lsl", source_options={"stream_name": "Spikes"})
    snapshot = {"rig": rig_table(rig), "plan": {"stimuli": "set", "unit_map": {}}}
    assert session_rig(snapshot, "session.json") == rig
    old = {**snapshot, "plan": {**snapshot["plan"], "source": "simulated", "source_options": {"unknown": "2"}}}
    assert session_rig(old, "session.json") == RigConfig(source_name="simulated", source_options={"unknown": "2"})
    assert SessionPlan.from_snapshot(old, "session.json") == SessionPlan(stimuli="set")
    edited = {**snapshot, "plan": {**snapshot["plan"], "source": "simulated", "source_options": "unknown=2"}}
    with pytest.raises(CompactRigError, match=r"^session.json: the plan's 'source_options' is 'unknown=2'; restore "):
        session_rig(edited, "session.json")


@pytest.mark.parametrize("name, value", [("repeats", -3), ("repeats", 0), ("max_missing", 0),
                                         ("max_dropped_frames", -1), ("seed", -2)])
def test_a_plan_number_edited_below_what_a_session_can_run_is_refused_in_one_line(name, value):
    """A hand-edited ``session.json`` with ``repeats = -3`` was resumed and exported as if nothing were wrong."""
    snapshot = {"plan": {"stimuli": "set", "unit_map": {}, name: value}}
    with pytest.raises(CompactRigError, match=rf"^session.json: the plan's '{name}' is {value}, below "):
        SessionPlan.from_snapshot(snapshot, "session.json")
