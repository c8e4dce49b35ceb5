"""``compactrig session run`` ends on a closing summary, not on its last trial line (said before the last
responses came): how many planned presentations are complete, how many were aborted, what is stored, where."""

from __future__ import annotations

import numpy as np
import pytest

from compactrig.stimuli.probes import grating
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

from support.commands import run_cli
from support.sessions import RIG, table

pytestmark = pytest.mark.needs_display


def test_the_last_line_sums_up_the_stored_session_and_names_its_folder(tmp_path):
    stimuli, out, rig = tmp_path / "set", tmp_path / "session", tmp_path / "rig.toml"
    StimulusSet([StimulusRecord(image_id=f"img{i}", kind="natural") for i in range(4)],
                np.stack([grating(a) for a in (0, 45, 90, 135)])).save(stimuli)
    rig.write_text(RIG)
    result = run_cli("session", "run", "--stimuli", str(stimuli), "--rig", str(rig), "--source", "simulated",
                     "--repeats", "3", "--out", str(out), timeout=300)
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    presentations = table(out, "SELECT COUNT(*) FROM presentations")[0][0]
    aborted = table(out, "SELECT COUNT(*) FROM presentations WHERE aborted = 1")[0][0]
    complete = table(out, "SELECT COUNT(DISTINCT p.item) FROM presentations p JOIN responses r ON r.ord = p.ord "
                          "WHERE p.aborted = 0")[0][0]
    answered = table(out, "SELECT COUNT(DISTINCT ord) FROM responses")[0][0]
    assert complete == 12
    assert last == (f"session complete: 12/12 planned presentations complete, {aborted} aborted; {presentations} "
                    f"presentations and {answered} responses stored in {out}")
