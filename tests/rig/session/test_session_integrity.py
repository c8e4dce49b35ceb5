"""Sessions under crashes and careless use: resumed sources carry on, parts are checked by content, bad
counts are missing responses, and a start is all-or-nothing and exclusive (issue 36, item 2)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from compactrig.rig.session.setup import SessionPlan, start_session
from compactrig.stimuli.probes import colour_blob, dot_lattice, grating
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

from support import REPO
from support.commands import compactrig_command, run_cli
from support.sessions import RIG, count_so_far, table

pytestmark = pytest.mark.needs_display

SLOW_RIG = RIG.replace("frames_on = 3", "frames_on = 6")
"""About 0.2 s per presentation: a session of 30 lasts long enough to be killed at chosen points."""


def image_set(folder: Path, ids: list[str]) -> Path:
    pixels = [grating(15 * k) for k in range(len(ids))]
    StimulusSet([StimulusRecord(image_id=i, kind="natural") for i in ids], np.stack(pixels)).save(folder)
    return folder


def folder_digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def stored_responses(out: Path) -> int:
    return count_so_far(out, "SELECT COUNT(DISTINCT ord) FROM responses")


def kill_when(process: subprocess.Popen, out: Path, responses: int, seconds: float = 120.0) -> None:
    """SIGKILL the runner and its presenter once the store holds ``responses`` responses."""
    deadline = time.monotonic() + seconds
    while stored_responses(out) < responses and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert process.poll() is None, f"the session ended before {responses} responses: {process.communicate()}"
    assert stored_responses(out) >= responses
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


@pytest.mark.slow
def test_replay_killed_three_times_exports_exactly_the_recordings_repeats_each_once_in_order(tmp_path):
    """The issue's "done when": run, SIGKILL, resume, three times at different points, then export. Every
    image's exported repeats are its first recorded repeats, each once, in the recording's order."""
    rng = np.random.default_rng(5)
    recorded = rng.poisson(6, (3, 6, 8)).astype(float)
    recorded[0] = 10 * np.arange(8)[None, :] + np.arange(6)[:, None]  # unit n0 names the repeat: no two alike
    recorded[:, 2, 6:] = np.nan  # image0003 has 6 recorded repeats (NaN-padded, as the published files)
    recorded[:, 4, 1] = np.nan  # image0005 lacks its second: its repeats are columns 0, 2, 3, ...
    np.save(tmp_path / "recorded.npy", recorded)
    ids = [f"image{k:04d}" for k in range(1, 7)]
    stimuli = image_set(tmp_path / "set", ids)
    rig = tmp_path / "rig.toml"
    rig.write_text(SLOW_RIG)
    out = tmp_path / "session"
    repeats = 5
    process = start(compactrig_command("session", "run", "--stimuli", str(stimuli), "--rig", str(rig),
                                       "--source", "replay", "--source-opt", f"responses={tmp_path / 'recorded.npy'}",
                                       "--repeats", str(repeats), "--seed", "3", "--out", str(out)))
    kill_when(process, out, 3)
    for more in (7, 7):
        process = start(compactrig_command("session", "resume", str(out)))
        kill_when(process, out, stored_responses(out) + more)
    final = run_cli("session", "resume", str(out), timeout=300)
    assert final.returncode == 0, final.stderr
    exported = run_cli("session", "export", str(out), "--npz", str(tmp_path / "r.npz"))
    assert exported.returncode == 0, exported.stderr
    data = np.load(tmp_path / "r.npz")
    assert list(data["units"]) == ["n0", "n1", "n2"] and list(data["image_ids"]) == ids
    assert data["responses"].shape == (3, 6, repeats)
    source = np.load(tmp_path / "recorded.npy")  # the recording file itself, read again
    for column, image_id in enumerate(ids):
        row = int(image_id[5:]) - 1
        available = [r for r in range(source.shape[2]) if not np.isnan(source[:, row, r]).all()]
        np.testing.assert_array_equal(data["responses"][:, column, :], source[:, row, available[:repeats]],
                                      err_msg=f"{image_id}: its first {repeats} recorded repeats, each once, in order")


@pytest.mark.slow
def test_a_seeded_simulation_carries_on_its_random_stream_after_a_crash(tmp_path):
    """Every unit fires Poisson(5) for every image (gain 0, baseline 5), so the counts are one random stream:
    after SIGKILL and resume they go on, they do not start again from the seed."""
    stimuli = image_set(tmp_path / "set", ["a", "b", "c", "d"])
    rig = tmp_path / "rig.toml"
    rig.write_text(SLOW_RIG)
    out = tmp_path / "session"
    process = start(compactrig_command("session", "run", "--stimuli", str(stimuli), "--rig", str(rig),
                                       "--source", "simulated", "--source-opt", "gain=0", "--source-opt", "baseline=5",
                                       "--source-opt", "seed=4", "--repeats", "5", "--out", str(out)))
    kill_when(process, out, 6)
    last_before = table(out, "SELECT MAX(ord) FROM presentations")[0][0]
    final = run_cli("session", "resume", str(out), timeout=300)
    assert final.returncode == 0, final.stderr
    rows = table(out, "SELECT ord, unit, count FROM responses ORDER BY ord, unit")
    vectors: dict[int, list[float]] = {}
    for order, _, count in rows:
        vectors.setdefault(order, []).append(count)
    before = [v for o, v in sorted(vectors.items()) if o <= last_before]
    after = [v for o, v in sorted(vectors.items()) if o > last_before]
    assert len(before) >= 6 and len(after) >= 4 and len(before[0]) == 3
    assert after[:4] != before[:4], "the resumed run's first counts are not the session's first counts again"
    pooled = np.array(before + after)
    assert abs(pooled.mean() - 5) < 1.0  # still Poisson(5): the stream goes on, it is not broken either


@pytest.mark.slow
def test_nan_negative_infinite_and_absurd_counts_are_missing_responses_told_once(tmp_path, cli):
    """A replayed recording whose first repeats hold NaN, -3, inf and 1e9 counts: each such presentation is a
    missing response with its reason, the image is shown again (its next repeat is stored), the session
    ends normally and each kind of problem is told once."""
    recorded = np.random.default_rng(1).poisson(4, (3, 6, 3)).astype(float)
    recorded[1, 0, 0] = np.nan
    recorded[0, 1, 0] = -3.0
    recorded[2, 2, 0] = np.inf
    recorded[0, 3, 0] = 1e9
    recorded[0, 4, 0] = np.nan  # a second NaN: not told again
    np.save(tmp_path / "recorded.npy", recorded)
    ids = [f"image{k:04d}" for k in range(1, 7)]
    stimuli = image_set(tmp_path / "set", ids)
    rig = tmp_path / "rig.toml"
    rig.write_text(RIG)
    out = tmp_path / "session"
    result = cli("session", "run", "--stimuli", str(stimuli), "--rig", str(rig), "--source", "replay",
                 "--source-opt", f"responses={tmp_path / 'recorded.npy'}", "--out", str(out))
    assert result.returncode == 0, result.stderr
    told = [line for line in result.stdout.splitlines() if "sent unusable counts" in line]
    assert len(told) == 4, result.stdout
    for kind in ("NaN", "negative", "infinite", "above 100000"):
        assert sum(kind in line for line in told) == 1, (kind, told)
    rows = table(out, "SELECT image_id, aborted, abort_kind, abort_reason FROM presentations ORDER BY ord")
    bad = {"image0001": "NaN", "image0002": "negative", "image0003": "infinite", "image0004": "above",
           "image0005": "NaN"}
    for image_id in ids:
        shown = [r for r in rows if r[0] == image_id]
        if image_id in bad:
            assert len(shown) == 2 and shown[0][1:3] == (1, "missing") and bad[image_id] in shown[0][3]
        assert shown[-1][1] == 0, f"{image_id} was answered in the end"
    exported = cli("session", "export", str(out), "--npz", str(tmp_path / "r.npz"))
    assert exported.returncode == 0, exported.stderr
    responses = np.load(tmp_path / "r.npz")["responses"]
    for column, image_id in enumerate(ids):
        used = 1 if image_id in bad else 0
        np.testing.assert_array_equal(responses[:, column, 0], recorded[:, column, used])


@pytest.fixture()
def made(tmp_path):
    """A session started (not run) with the simulated source, and its rig and stimuli."""
    rig = tmp_path / "rig.toml"
    rig.write_text(RIG)
    stimuli = image_set(tmp_path / "set", ["img0", "img1", "img2"])
    out = tmp_path / "session"
    start_session(out, SessionPlan(stimuli=str(stimuli)), rig)
    return out, stimuli, rig


def one_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in result.stderr, result.stderr


def test_a_folder_with_other_stimuli_is_refused_at_start_and_left_as_it_was(tmp_path, made):
    """(Before the fix the old images were kept and, their ids not planned, the session looped for ever.)"""
    _, stimuli, rig = made
    out = tmp_path / "reused"
    StimulusSet([StimulusRecord(image_id="old", kind="natural")], np.stack([dot_lattice()])).save(out / "stimuli")
    before = folder_digest(out / "stimuli")
    result = run_cli("session", "run", "--stimuli", str(stimuli), "--rig", str(rig), "--source", "simulated",
                     "--out", str(out), timeout=120)
    one_error(result, "already holds other images")
    assert folder_digest(out / "stimuli") == before and sorted(p.name for p in out.iterdir() if
                                                              not p.name.startswith("lock")) == ["stimuli"]


def test_resume_and_export_refuse_stimuli_whose_pixels_changed(tmp_path, made, cli):
    out, _, _ = made
    StimulusSet([StimulusRecord(image_id="img1", kind="natural")], np.stack([colour_blob((1, 0, 0))])).save(
        tmp_path / "other")
    (out / "stimuli" / "img1.png").write_bytes((tmp_path / "other" / "img1.png").read_bytes())
    one_error(cli("session", "resume", str(out)), "image 'img1' is not the one session.json recorded")
    one_error(cli("session", "export", str(out), "--npz", str(tmp_path / "r.npz")),
              "image 'img1' is not the one session.json recorded")
    assert not (tmp_path / "r.npz").exists()
    (out / "stimuli" / "img2.png").unlink()
    (out / "stimuli" / "manifest.json").write_text(json.dumps(
        {**json.loads((out / "stimuli" / "manifest.json").read_text()), "images": []}))
    one_error(cli("session", "resume", str(out)), "image 'img0', which session.json records, is missing")


@pytest.mark.parametrize("damage, fragment", [
    ("missing", "trials.sqlite: missing"),
    ("empty", "trials.sqlite: empty (0 bytes)"),
    ("corrupt", "trials.sqlite: not a readable trial store"),
    ("foreign", "trials.sqlite: belongs to another session"),
    ("foreign, its id taken out of session.json", "but session.json names no session id"),
])
def test_a_missing_empty_corrupt_or_foreign_store_is_an_error_never_complete(tmp_path, made, cli, damage, fragment):
    out, stimuli, rig = made
    store = out / "trials.sqlite"
    if damage == "missing":
        store.unlink()
    elif damage == "empty":
        store.write_bytes(b"")
    elif damage == "corrupt":
        store.write_bytes(b"SQLite format 3\0" + os.urandom(8000))
    else:
        start_session(tmp_path / "other", SessionPlan(stimuli=str(stimuli)), rig)
        store.write_bytes((tmp_path / "other" / "trials.sqlite").read_bytes())
        if "taken out" in damage:  # by hand: the one check against a foreign store must not go with it
            snapshot = json.loads((out / "session.json").read_text())
            del snapshot["session_id"]
            (out / "session.json").write_text(json.dumps(snapshot))
    before = store.read_bytes() if store.exists() else None
    resumed = cli("session", "resume", str(out))
    one_error(resumed, fragment)
    assert "already complete" not in resumed.stdout
    one_error(cli("session", "export", str(out), "--npz", str(tmp_path / "r.npz")), fragment)
    assert not (tmp_path / "r.npz").exists()
    assert (store.read_bytes() if store.exists() else None) == before, "the damaged store is left as it was"


CHILD = """
import sys
from pathlib import Path
from compactrig.engine.errors import CompactRigError
from compactrig.rig.session.setup import SessionPlan, start_session
import compactrig.plugins.sources.simulated
print("ready", flush=True)
sys.stdin.readline()
try:
    start_session(Path(sys.argv[1]), SessionPlan(stimuli=sys.argv[2], repeats=3), Path(sys.argv[3]))
    print("started", flush=True)
except CompactRigError as error:
    print("refused", str(error).replace(chr(10), " | "), flush=True)
"""


@pytest.mark.parametrize("apart_s", [0.1, 0.4, 0.7])
def test_two_starts_into_one_folder_moments_apart_exactly_one_starts(tmp_path, apart_s):
    """Two processes start the same session ``apart_s`` apart; 300 images make each start's checks take a
    moment, as a lab's sets do."""
    rig = tmp_path / "rig.toml"
    rig.write_text(RIG)
    stimuli = image_set(tmp_path / "set", [f"img{k}" for k in range(300)])
    out = tmp_path / "session"
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(out), str(stimuli), str(rig)], cwd=REPO,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    for child in children:
        assert child.stdout.readline().strip() == "ready"
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
        time.sleep(apart_s)
    answers = sorted(child.communicate(timeout=120)[0].strip() for child in children)
    assert answers[1] == "started" and answers[0].startswith("refused"), answers
    assert "already holds a session" in answers[0] or "session in use by" in answers[0]
    assert table(out, "SELECT COUNT(*) FROM plan")[0][0] == 300 * 3, "one plan, not two"
    session_id = json.loads((out / "session.json").read_text())["session_id"]
    with sqlite3.connect(out / "trials.sqlite") as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'session_id'").fetchone()[0] == session_id


@pytest.mark.parametrize("section, fragment", [
    ('[gate]\nname = "lsl"\n[gate.options]\nstale_after_s = 0\n', "gate 'lsl': stale_after_s must be above 0"),
    ('[markers]\noutputs = ["lsl"]\n[markers.lsl]\nvolume = 3\n', "marker output 'lsl' has no option 'volume'"),
    ('[markers]\noutputs = ["parallel-port"]\n',
     "marker output 'parallel-port': compactrig.marker_outputs plugin 'parallel-port' is not installed"),
])
def test_a_bad_gate_or_marker_output_is_found_before_the_session_folder_is_made(tmp_path, cli, section, fragment):
    rig = tmp_path / "rig.toml"
    rig.write_text(RIG + section)
    stimuli = image_set(tmp_path / "set", ["img0", "img1"])
    out = tmp_path / "new" / "session"
    one_error(cli("session", "run", "--stimuli", str(stimuli), "--rig", str(rig), "--source", "simulated",
                  "--out", str(out)), fragment)
    assert not (tmp_path / "new").exists(), "nothing is left behind"


KILLED_CHILD = """
import os, signal, sys
from pathlib import Path
from compactrig.rig.session.setup import SessionPlan, start_session
renaming = os.replace
def replace(source, target):  # the start is killed as it puts one of its files in place
    if Path(target).name == sys.argv[4]:
        os.kill(os.getpid(), signal.SIGKILL)
    return renaming(source, target)
os.replace = replace
start_session(Path(sys.argv[1]), SessionPlan(stimuli=sys.argv[2], repeats=2), Path(sys.argv[3]),
              extra_files={"loop.json": "{}"})
"""


@pytest.mark.parametrize("killed_at, left", [
    ("starting.json", {".starting.json.PID.partial.json"}),
    ("manifest.json", {"starting.json", "stimuli"}),
    ("session.json", {"starting.json", "stimuli", "trials.sqlite", "loop.json", ".session.json.PID.partial.json"}),
])
def test_a_start_killed_half_way_is_cleared_by_the_next_start_which_touches_nothing_else(tmp_path, killed_at, left):
    """SIGKILL (no ``except`` runs) as the start renames one of its files into place; the next start into the
    folder, with another stimulus set, removes exactly what the killed one wrote and starts."""
    rig = tmp_path / "rig.toml"
    rig.write_text(RIG)
    out = tmp_path / "session"
    child = subprocess.run([sys.executable, "-c", KILLED_CHILD, str(out), str(image_set(tmp_path / "set", ["a", "b"])),
                            str(rig), killed_at], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr
    found = {p.name.replace(str(child_pid(out)), "PID") for p in out.iterdir()} - {"lock", "lock.holder"}
    assert found == left
    if "stimuli" in left and killed_at == "manifest.json":
        assert not (out / "stimuli" / "manifest.json").exists() and (out / "stimuli" / "b.png").exists()
    other = image_set(tmp_path / "other", ["c", "d", "e"])
    start_session(out, SessionPlan(stimuli=str(other)), rig, extra_files={"loop.json": '{"batches": 1}'})
    assert sorted(p.name for p in out.iterdir()) == ["lock", "lock.holder", "loop.json", "session.json", "stimuli",
                                                     "trials.sqlite"]
    assert StimulusSet.load(out / "stimuli").ids == ["c", "d", "e"]
    assert sorted(image for (image,) in table(out, "SELECT image_id FROM plan")) == ["c", "d", "e"]
    assert json.loads((out / "loop.json").read_text()) == {"batches": 1}
    session_id = json.loads((out / "session.json").read_text())["session_id"]
    assert table(out, "SELECT value FROM meta WHERE key = 'session_id'") == [(session_id,)]


def child_pid(folder: Path) -> int:
    """The killed start's process id, as its lock.holder names it (its partial files carry it)."""
    return int((folder / "lock.holder").read_text().split()[-1])
