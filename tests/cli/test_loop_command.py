"""``compactrig loop run`` and ``loop report`` through the real command line: a simulated session (presenter
under Xvfb) whose readouts are refitted and two rounds queued, stopped with Ctrl-C and continued by
``session resume``; the report's numbers recomputed here from the trial store and the stored fits."""

from __future__ import annotations

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

from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet
from compactrig.stimuli.textures import pink_noise_images

from support.commands import run_cli

RIG = """[screen]
resolution = [400, 300]
width_cm = 40.0
pace_frames = true
[image]
size_deg = 3.0
[timing]
frames_on = 20
frames_off = 2
images_per_trial = 2
inter_trial_s = 0.0
"""


def query(folder: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(folder / "trials.sqlite") as db:
        return db.execute(sql).fetchall()


def planned(folder: Path) -> int:
    if not (folder / "trials.sqlite").exists():
        return 0
    try:
        return query(folder, "SELECT COUNT(*) FROM plan")[0][0]
    except sqlite3.OperationalError:  # the store is being created
        return 0


def command() -> list[str]:
    """The installed console script, as ``run_cli`` runs it."""
    script = Path(sys.executable).with_name("compactrig")
    return [str(script)] if script.exists() else [sys.executable, "-m", "compactrig.cli"]


@pytest.mark.slow
@pytest.mark.needs_display
def test_loop_run_stopped_by_ctrl_c_is_continued_by_session_resume_and_reported(tmp_path):
    StimulusSet([StimulusRecord(image_id=f"tex{i:02d}", kind="natural") for i in range(12)],
                pink_noise_images(12, seed=9)).save(tmp_path / "set")
    (tmp_path / "rig.toml").write_text(RIG)
    out = tmp_path / "session"
    process = subprocess.Popen(command() + ["loop", "run", "--stimuli", str(tmp_path / "set"), "--out", str(out),
                                            "--rig", str(tmp_path / "rig.toml"), "--source", "simulated",
                                            "--source-opt", "unknown=1", "--source-opt", "seed=2", "--batch", "4",
                                            "--batches", "2", "--refit-every", "5", "--synthesize", "max",
                                            "--for-units", "unit3", "--n", "1", "--steps", "5"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and planned(out) <= 12 and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, process.communicate()  # still running, or what it said
    os.killpg(process.pid, signal.SIGINT)  # the first round is in the plan: Ctrl-C
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr
    assert f"continue it with `compactrig session resume {out}`" in stdout
    assert "readouts fitted on" in stdout and "round 1/2: 5 image(s) x 1 queued" in stdout
    assert json.loads((out / "loop.json").read_text())["batches"] == 2, "the loop's settings stay with the session"
    assert planned(out) == 17 and sorted(p.name for p in (out / "loop" / "rounds").iterdir()) == ["round-01"]

    resumed = run_cli("session", "resume", str(out), timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "round 2/2: 5 image(s) x 1 queued" in resumed.stdout
    assert "all 2 round(s) answered and fitted; the loop is done" in resumed.stdout
    plan = query(out, "SELECT item, image_id FROM plan ORDER BY item")
    assert len(plan) == 22
    rounds = [StimulusSet.load(out / "loop" / "rounds" / f"round-0{k}") for k in (1, 2)]
    for number, images in enumerate(rounds):
        assert sorted(image for _, image in plan[12 + 5 * number:17 + 5 * number]) == sorted(images.ids)
        designed = [r.image_id for r in images.records if r.kind == "max"]
        assert len(designed) == 1 and designed[0].startswith("max_readout-unit3_seed"), "4 from the pool, 1 designed"
    assert not set(rounds[0].ids) & set(rounds[1].ids), "no image is chosen or designed twice"
    complete = query(out, "SELECT p.item FROM presentations p WHERE p.aborted = 0 AND p.ord IN "
                          "(SELECT ord FROM responses)")
    assert sorted(item for (item,) in complete) == list(range(22)), "every plan item answered exactly once"

    # The report: the last stored fit's table, its numbers recomputed from the store and the fit's predictions.
    report = run_cli("loop", "report", str(out))
    assert report.returncode == 0, report.stderr
    stored = sorted((out / "loop" / "readouts").glob("fit-*.npz"))
    assert len(stored) >= 3 and stored[-1].name == "fit-000022.npz", "every fit is kept; the last on everything"
    fit = np.load(stored[-1])
    meta = json.loads(str(fit["meta"]))
    assert meta["units"] == ["unit0", "unit1", "unit2", "unit3"] and meta["at"] == 22
    rows = query(out, "SELECT p.image_id, r.unit, r.count FROM responses r JOIN presentations p ON p.ord = r.ord "
                      "WHERE p.aborted = 0")
    means = np.array([[np.mean([c for i, u, c in rows if i == image and u == unit]) for unit in meta["units"]]
                      for image in meta["image_ids"]])
    np.testing.assert_allclose(fit["means"], means)
    lines = report.stdout.splitlines()
    assert lines[0].startswith(f"{out}: readouts of 4 unit(s) on 3 bank neurons' outputs, fitted on 22 images at 22")
    assert lines[1].split()[:4] == ["unit", "images", "penalty", "held-out"]
    for k, unit in enumerate(meta["units"]):
        cells = lines[2 + k].split()
        r = np.corrcoef(fit["held_out"][k], means[:, k])[0, 1]
        assert cells[0] == unit and cells[1] == "22" and cells[3] == f"{r:.3f}", (cells, r)
        assert float(cells[2]) == pytest.approx(fit["alphas"][k], rel=0.05)


def test_bad_loop_settings_are_one_line_before_anything_is_made_or_shown(tmp_path, cli):
    StimulusSet([StimulusRecord(image_id="tex00", kind="natural")], pink_noise_images(1, seed=1)).save(tmp_path / "set")
    for option, value, said in (("--batch", "0", "loop setting batch = 0: give a whole number of at least 1"),
                                ("--refit-every", "-3", "loop setting refit_every = -3: give a whole number of at "
                                                        "least 1"),
                                ("--synthesize", "max", "--synthesize needs --for-units U,...")):
        refused = cli("loop", "run", "--stimuli", str(tmp_path / "set"), "--out", str(tmp_path / "s"), option, value)
        assert refused.returncode == 2 and said in refused.stderr, refused.stderr
        assert not (tmp_path / "s").exists(), "nothing is written for a refused command"

    # A set too small for a readout fit: no round could ever start, so the loop is refused instead of waiting.
    StimulusSet([StimulusRecord(image_id=f"tex{k:02d}", kind="natural") for k in range(9)],
                pink_noise_images(9, seed=2)).save(tmp_path / "nine")
    refused = cli("loop", "run", "--stimuli", str(tmp_path / "nine"), "--out", str(tmp_path / "s"))
    assert refused.returncode == 2 and f"--stimuli {tmp_path / 'nine'}: 9 image(s); the loop's readouts are fitted " \
        "on responses to 10 images or more" in refused.stderr, refused.stderr
    assert not (tmp_path / "s").exists(), "nothing is written for a refused command"

    # A pool that holds no images (here a set's manifest) is refused before the session's folder is made: the folder
    # it used to leave could neither be started again nor resumed.
    StimulusSet([StimulusRecord(image_id=f"tex{k:02d}", kind="natural") for k in range(10)],
                pink_noise_images(10, seed=3)).save(tmp_path / "ten")
    refused = cli("loop", "run", "--stimuli", str(tmp_path / "ten"), "--pool", str(tmp_path / "ten" / "manifest.json"),
                  "--out", str(tmp_path / "s"))
    assert refused.returncode == 2 and "manifest.json" in refused.stderr, refused.stderr
    assert not (tmp_path / "s").exists(), "nothing is written for a refused command"

    # A hand-edited loop.json is refused by the resume, naming the setting, before the session is opened.
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "loop.json").write_text(json.dumps({"strategy": "best", "batches": 2}))
    refused = cli("session", "resume", str(tmp_path / "old"))
    assert refused.returncode == 2 and f"{tmp_path / 'old' / 'loop.json'}: loop setting strategy = 'best': choose " \
        "one of random, gaudy-first, committee (fix the file)" in refused.stderr, refused.stderr
    assert cli("loop", "report", str(tmp_path / "old")).stderr.startswith(
        f"compactrig: error: {tmp_path / 'old'}: no readout fits stored")


KILLED_LOOP_RUN = """
import os, signal, sys
from pathlib import Path
renaming = os.replace
def replace(source, target):  # killed as the start puts session.json in place: every other part is written
    if Path(target).name == "session.json":
        os.kill(os.getpid(), signal.SIGKILL)
    return renaming(source, target)
os.replace = replace
from compactrig.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.needs_display
def test_a_loop_run_killed_during_its_start_leaves_what_a_second_loop_run_clears_and_starts_over(tmp_path, cli):
    StimulusSet([StimulusRecord(image_id=f"tex{i:02d}", kind="natural") for i in range(10)],
                pink_noise_images(10, seed=4)).save(tmp_path / "set")  # 10: the fewest a readout is fitted on
    (tmp_path / "rig.toml").write_text(RIG.replace("frames_on = 20", "frames_on = 2"))
    out = tmp_path / "session"
    args = ["loop", "run", "--stimuli", str(tmp_path / "set"), "--out", str(out), "--rig", str(tmp_path / "rig.toml"),
            "--batches", "0", "--refit-every", "10", "--pool", str(tmp_path / "set")]
    killed = subprocess.run([sys.executable, "-c", KILLED_LOOP_RUN, *args], capture_output=True, text=True,
                            timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert {"loop.json", "stimuli", "trials.sqlite", "starting.json"} <= {p.name for p in out.iterdir()}
    assert not (out / "session.json").exists()
    again = cli(*args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "all 0 round(s) answered and fitted; the loop is done" in again.stdout
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith("lock")) == [
        "loop", "loop.json", "session.json", "stimuli", "trials.sqlite"]
    assert query(out, "SELECT COUNT(*) FROM presentations WHERE aborted = 0") == [(10,)]


@pytest.mark.needs_display
def test_a_loop_started_with_relative_paths_resumes_from_another_folder(tmp_path, cli):
    """``--pool`` and ``--bank`` typed relative to where the loop was started: the resume, run from elsewhere (as
    after a crash, from a new terminal), found neither."""
    from compactrig.engine.models.bank import load_bank
    from compactrig.engine.models.bank_writer import write_model
    here = tmp_path / "here"
    demo = load_bank("demo")
    for k in range(3):
        write_model(here / "bank", "190923", k, demo.model(f"demo:{k}"), {"copied_from": f"demo:{k}"})
    StimulusSet([StimulusRecord(image_id=f"tex{i:02d}", kind="natural") for i in range(10)],
                pink_noise_images(10, seed=9)).save(here / "set")
    StimulusSet([StimulusRecord(image_id=f"pool{i:02d}", kind="natural") for i in range(6)],
                pink_noise_images(6, seed=4)).save(here / "pool")
    (here / "rig.toml").write_text(RIG.replace("frames_on = 20", "frames_on = 2"))
    started = cli("loop", "run", "--stimuli", "set", "--pool", "pool", "--bank", "bank", "--rig", "rig.toml",
                  "--source", "simulated", "--batches", "0", "--out", "session", cwd=here)
    assert started.returncode == 0, started.stdout + started.stderr
    resumed = cli("session", "resume", str(here / "session"), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "no such" not in resumed.stderr

