"""Sessions: crash safety under SIGKILL, exact resume, exclusive access, pre-flight, export."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import datetime

import numpy as np
import pylsl
import pytest

from compactrig.engine.errors import CompactRigError
from compactrig.engine.models.bank import load_bank
from compactrig.rig.presenter.rig import load_rig, parse_rig
from compactrig.rig.session.folder import SessionLock, read_snapshot
from compactrig.rig.session.setup import SessionPlan, start_session
from compactrig.stimuli.probes import colour_blob, dot_lattice, grating
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

from support import REPO
from support.commands import compactrig_command, run_cli
from support.independent_model import evaluate
from support.peer_processes import command, start_peer
from support.sessions import RIG, check_exactly_once, count_so_far, table

pytestmark = pytest.mark.needs_display

@pytest.fixture(scope="module")
def stimuli(tmp_path_factory):
    folder = tmp_path_factory.mktemp("set")
    pixels = np.stack([grating(0), grating(90), dot_lattice(), colour_blob((1, -1, 0))])
    StimulusSet([StimulusRecord(image_id=f"img{i}", kind="natural") for i in range(4)], pixels).save(folder)
    return folder


@pytest.fixture()
def rig(tmp_path):
    path = tmp_path / "rig.toml"
    path.write_text(RIG)
    return path


class MarkerRecorder:
    """A recording system's view of the marker stream (pylsl only, as in pylsl's ReceiveStringMarkers
    example): every outlet the presenter opens under the source id, each followed by its own uid."""

    def __init__(self, source_id: str) -> None:
        self.markers: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._record, args=(source_id,), daemon=True)
        self._thread.start()

    def _record(self, source_id: str) -> None:
        from compactrig.plugins.lsl_clock import LostError, LslTimeoutError
        inlets: dict[str, pylsl.StreamInlet | None] = {}  # None: an outlet that was gone when opened
        while not self._stop.is_set():
            for info in pylsl.resolve_byprop("source_id", source_id, 0, 0.2):
                if info.uid() not in inlets:
                    try:  # a killed presenter's outlet is still announced for a moment
                        inlet = pylsl.StreamInlet(info, recover=False)
                        inlet.open_stream(2.0)
                        inlets[info.uid()] = inlet
                    except (LostError, LslTimeoutError):
                        inlets[info.uid()] = None
            for uid, inlet in list(inlets.items()):
                if inlet is None:
                    continue
                try:
                    samples, _ = inlet.pull_chunk(timeout=0.0)
                except LostError:
                    inlets[uid], samples = None, []
                self.markers += [json.loads(sample[0]) for sample in samples]

    def stop(self) -> list[dict]:
        time.sleep(1.0)
        self._stop.set()
        self._thread.join(5)
        return self.markers


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_loses_and_repeats_nothing(tmp_path, stimuli, rig, cli):
    out = tmp_path / "session"
    source_id = f"markers-{uuid.uuid4().hex[:8]}"
    rig.write_text(RIG + f'[markers]\noutputs = ["lsl"]\n[markers.lsl]\nname = "{source_id}"\n'
                         f'source_id = "{source_id}"\nwait_for_recorder_s = 20.0\n')
    recorder = MarkerRecorder(source_id)
    command = compactrig_command("session", "run", "--stimuli", str(stimuli), "--rig", str(rig),
                                 "--source", "simulated", "--map", "unit0=demo:0", "--repeats", "5", "--seed", "2",
                                 "--out", str(out))
    rng = random.Random(7)
    kills = 0
    for attempt in range(3):
        shown = count_so_far(out, "SELECT COUNT(*) FROM presentations")
        process = subprocess.Popen(command if attempt == 0 else compactrig_command("session", "resume", str(out)),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        # killed after a few more presentations, at a random moment within one: by progress, not by the clock,
        # so a fast machine cannot finish the session before the kills
        target, deadline = shown + rng.randint(2, 5), time.monotonic() + 120
        while (process.poll() is None and time.monotonic() < deadline
               and count_so_far(out, "SELECT COUNT(*) FROM presentations") < target):
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.15))
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # the runner and its presenter, mid-session
            process.wait()
            kills += 1
        else:
            break
    assert kills >= 2, "the session was killed at least twice"
    shown_before = table(out, "SELECT COUNT(*) FROM presentations")[0][0]
    final = run_cli("session", "resume", str(out), timeout=300)
    assert final.returncode == 0, final.stderr
    check_exactly_once(out, 20)
    orders = [o for (o,) in table(out, "SELECT ord FROM presentations ORDER BY ord")]
    assert len(orders) == len(set(orders)) >= shown_before
    onsets = [m["order"] for m in recorder.stop() if m["event"] == "onset"]
    assert len(onsets) == len(set(onsets)) > 0, "no presentation number reaches the recording twice, across crashes"
    again = cli("session", "resume", str(out))
    assert again.returncode == 0 and "already complete" in again.stdout


def test_run_export_and_exclusive_access(tmp_path, stimuli, rig, cli):
    out = tmp_path / "session"
    result = run_cli("session", "run", "--stimuli", str(stimuli), "--rig", str(rig), "--source", "simulated",
                     "--source-opt", "seed=3", "--source-opt", "unknown=9", "--map", "unit1=demo:1", "--repeats", "2",
                     "--out", str(out), timeout=300)
    assert result.returncode == 0, result.stderr
    assert "trial 0:" in result.stdout and "unit1 r=" in result.stdout
    check_exactly_once(out, 8, n_units=12)
    exported = cli("session", "export", str(out), "--npz", str(tmp_path / "r.npz"))
    assert exported.returncode == 0, exported.stderr
    data = np.load(tmp_path / "r.npz")
    assert data["responses"].shape == (12, 4, 2) and list(data["image_ids"]) == ["img0", "img1", "img2", "img3"]
    assert list(data["units"]) == [f"unit{k}" for k in range(12)], "unit2 before unit10, as people count"
    import compactrig
    read = compactrig.read_session(out)  # the scripting API reads what the export writes
    np.testing.assert_array_equal(read.responses, data["responses"])
    assert read.units == list(data["units"]) and read.mapped_neurons[1] == "demo:1"
    stored = table(out, "SELECT p.image_id, r.unit, r.count FROM responses r JOIN presentations p ON p.ord = r.ord "
                        "WHERE p.aborted = 0 ORDER BY p.ord")
    for image_id, unit, count in stored:
        row = list(data["units"]).index(unit)
        column = list(data["image_ids"]).index(image_id)
        assert count in data["responses"][row, column]
    assert np.isnan(data["predictions"][0]).all() and not np.isnan(data["predictions"][1]).any()
    nwb = cli("session", "export", str(out), "--nwb", str(tmp_path / "s.nwb"), "--subject", "M1",
              "--sex", "M", "--age", "P8Y")
    assert nwb.returncode == 0, nwb.stderr
    from nwbinspector import inspect_nwbfile
    from pynwb import NWBHDF5IO
    problems = [m for m in inspect_nwbfile(nwbfile_path=str(tmp_path / "s.nwb"))
                if m.importance.name in ("CRITICAL", "ERROR", "PYNWB_VALIDATION")]
    assert problems == [], [m.message for m in problems]
    with NWBHDF5IO(str(tmp_path / "s.nwb"), "r") as io:
        written = io.read()
        intervals = written.intervals["presentations"].to_dataframe()
        series = written.stimulus["presentations"]
        assert len(intervals) == len(table(out, "SELECT ord FROM presentations"))
        assert list(series.data[:]) == [["img0", "img1", "img2", "img3"].index(i) for i in intervals["image_id"]]
        onsets = [t for (t,) in table(out, "SELECT onset_time FROM presentations ORDER BY ord")]
        shift = float(re.search(r"LSL clock time = NWB time - \((-?[0-9.]+)\)", written.notes).group(1))
        np.testing.assert_allclose(series.timestamps[:] - shift, onsets, atol=2e-6)
        first = table(out, "SELECT r.count FROM responses r WHERE r.unit = 'unit1' ORDER BY r.ord LIMIT 1")[0][0]
        assert intervals["count_unit1"].dropna().iloc[0] == first
        assert written.stimulus_template["stimuli"].images["img2"].data.shape == (112, 112, 3)
        created = read_snapshot(out)["created"]
        assert written.session_start_time == datetime.strptime(created, "%Y-%m-%dT%H:%M:%S%z")
        assert written.session_start_time.tzinfo is not None
        assert 0 <= intervals["start_time"].iloc[0] < 300, "seconds from the session's creation"
        assert (intervals["window_start"].dropna() == 0.05).all() and (intervals["window_end"].dropna() == 0.15).all()
        predicted = evaluate(load_bank().state_dict("demo:1"), StimulusSet.load(out / "stimuli").pixels)
        np.testing.assert_allclose(intervals["predicted_unit1"], [predicted[int(i[3:])] for i in intervals["image_id"]],
                                   rtol=1e-5)
        unit_map = written.processing["compactrig"]["unit_map"].to_dataframe()
        assert dict(zip(unit_map["unit"], unit_map["neuron"]))["unit1"] == "demo:1"
        trials = written.trials.to_dataframe()
        assert sorted(trials["trial"]) == sorted({t for (t,) in table(out, "SELECT DISTINCT trial FROM presentations")})
        assert (trials["stop_time"] >= trials["start_time"]).all()
        identifier = written.identifier
    again = cli("session", "export", str(out), "--nwb", str(tmp_path / "again.nwb"))
    assert again.returncode == 0, again.stderr
    with NWBHDF5IO(str(tmp_path / "again.nwb"), "r") as io:
        assert io.read().identifier == identifier, "exporting twice describes the same session"
    report = cli("session", "report", str(out))
    assert report.returncode == 0, report.stderr
    from PIL import Image
    with Image.open(out / "report.png") as picture:
        assert picture.size[0] > 1000 and picture.size[1] > 300
    holder = SessionLock(out).acquire()
    try:
        refused = cli("session", "resume", str(out))
        assert refused.returncode == 2 and "session in use by process" in refused.stderr
    finally:
        holder.release()
    assert Counter(r for (r,) in table(out, "SELECT aborted FROM presentations"))[0] == 8


def test_stale_lock_from_a_killed_process_is_taken_over(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.path.insert(0, '.');"
                               "from compactrig.rig.session.folder import SessionLock; from pathlib import Path;"
                               f"lock = SessionLock(Path({str(tmp_path)!r})).acquire(); print('held', flush=True); "
                               "time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(CompactRigError, match=f"in use by process {holder.pid}"):
        SessionLock(tmp_path).acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    SessionLock(tmp_path).acquire().release()


def test_the_snapshot_keeps_the_whole_rig_so_a_resume_shows_what_the_first_run_showed(tmp_path, stimuli, rig):
    rig.write_text(RIG.replace("[screen]", "[screen]\nposition = [40, 30]\npace_frames = true\ngamma = 2.2"))
    start_session(tmp_path / "s", SessionPlan(stimuli=str(stimuli)), rig)
    stored = parse_rig(read_snapshot(tmp_path / "s")["rig"])
    assert stored == load_rig(rig), "every rig field survives the snapshot (the window's position too)"


def test_preflight_reports_before_anything_is_shown(tmp_path, stimuli, rig, cli):
    plan = SessionPlan(stimuli=str(stimuli), repeats=1)
    damaged = tmp_path / "damaged"
    StimulusSet.load(stimuli).save(damaged)
    (damaged / "img2.png").unlink()
    with pytest.raises(CompactRigError, match="img2.png: unusable stimulus image"):
        start_session(tmp_path / "s1", SessionPlan(stimuli=str(damaged)), rig)
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(CompactRigError, match="cannot write the session here"):
        start_session(blocked / "session", plan, rig)
    with pytest.raises(CompactRigError, match="has no option"):
        start_session(tmp_path / "s2", SessionPlan(stimuli=str(stimuli)), rig,
                      load_rig(rig).with_source(None, {"volume": "3"}))
    assert not (tmp_path / "s2" / "session.json").exists()
    result = cli("session", "run", "--stimuli", str(stimuli), "--source", "nope", "--out", str(tmp_path / "s3"))
    assert result.returncode == 2 and "not installed" in result.stderr
    result = cli("session", "run", "--stimuli", str(stimuli), "--map", "unit0=demo:0", "--map", "unit1=demo-1",
                 "--out", str(tmp_path / "s4"))
    assert result.returncode == 2 and "--map entry 'unit1=demo-1': 'demo-1' is not a neuron id" in result.stderr
    assert not (tmp_path / "s4").exists()


@pytest.mark.slow
def test_fixation_breaks_are_charged_to_the_images_on_screen_and_a_dead_tracker_fails_closed(tmp_path, stimuli):
    """An eye tracker in its own process (``tests/peers/eye_tracker.py``, pylsl only): trials wait for
    fixation; a break-and-return shorter than a poll aborts exactly the images up (or counting) at the
    break; killing the tracker (SIGKILL) mid-trial aborts that trial and holds the session until it
    returns."""
    name = f"fixation-{uuid.uuid4().hex[:8]}"
    peer = start_peer("eye_tracker.py", name, "500", "0")
    rig = tmp_path / "rig.toml"
    rig.write_text(RIG.replace("frames_on = 3", "frames_on = 30").replace("frames_off = 2", "frames_off = 10")
                   .replace("[screen]", "[screen]\npace_frames = true")
                   + f'[gate]\nname = "lsl"\n[gate.options]\nstream_name = "{name}"\n')
    out = tmp_path / "session"
    process = subprocess.Popen(compactrig_command("session", "run", "--stimuli", str(stimuli), "--rig", str(rig),
                                          "--source", "simulated", "--out", str(out)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def shown() -> int:
        return count_so_far(out, "SELECT COUNT(*) FROM presentations")

    def wait_for(condition, seconds=60.0):
        deadline = time.monotonic() + seconds
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.005)
        assert condition()

    try:
        wait_for(lambda: count_so_far(out, "SELECT COUNT(*) FROM plan") > 0)
        time.sleep(4.0)  # presenter up, animal not fixating: nothing may be shown
        assert shown() == 0
        command(peer, "fix")
        wait_for(lambda: shown() >= 1)
        time.sleep(0.2)
        command(peer, "break")
        time.sleep(0.02)
        command(peer, "fix")
        states = [peer.stdout.readline().split() for _ in range(3)]
        break_at = float(states[1][2])
        wait_for(lambda: table(out, "SELECT COUNT(DISTINCT trial) FROM presentations")[0][0] >= 2)
        time.sleep(0.1)
        killed_at = pylsl.local_clock()
        os.kill(peer.pid, signal.SIGKILL)
        peer.wait(5)
        time.sleep(2.0)
        held = shown()
        time.sleep(1.0)
        assert shown() == held, "no trial starts while the tracker is dead"
        peer = start_peer("eye_tracker.py", name, "500", "1")
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
        if peer.poll() is None:
            command(peer, "quit")
            peer.wait(5)
    assert process.returncode == 0, stderr
    rows = table(out, "SELECT trial, onset_time, offset_time, aborted, abort_reason FROM presentations ORDER BY ord")
    first_trial = [r for r in rows if r[0] == rows[0][0]]
    for _trial, onset, offset, aborted, reason in first_trial:
        charged = max(offset, onset + 0.15) > break_at
        assert bool(aborted) == charged and (reason == "fixation break") == charged, (onset, offset, break_at)
    assert any(r[3] for r in first_trial), "the break fell in the first trial"
    silent = [r for r in rows if r[4] and "eye tracker silent" in r[4]]
    assert silent and all(r[1] <= killed_at + 0.1 + 0.05 for r in silent[:1])
    trials = table(out, "SELECT trial, aborted, abort_reason FROM trials ORDER BY trial")
    assert trials[0][1] == 1 and any(t[2] and "eye tracker silent" in t[2] for t in trials)
    check_exactly_once(out, 4)


def test_too_little_free_disk_is_reported_before_the_session_starts(tmp_path, stimuli, rig):
    """On a real 64 KiB tmpfs (needs root to mount, as on the CI machines)."""
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(tiny)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.decode().strip()})")
    try:
        with pytest.raises(CompactRigError, match=r"only 0.1 MB free, the session needs about [0-9.]+ MB"):
            start_session(tiny / "session", SessionPlan(stimuli=str(stimuli), repeats=50), rig)
        assert not (tiny / "session" / "session.json").exists()
    finally:
        subprocess.run(["umount", str(tiny)], check=True)


def test_gate_options_are_checked():
    from compactrig.plugins.gates import Gate, LslGate
    assert LslGate(stream_name="Eye").settings == {"stream_name": "Eye", "resolve_timeout_s": 5.0, "stale_after_s": 0.1}
    with pytest.raises(CompactRigError, match="stale_after_s must be above 0"):
        LslGate(stale_after_s="0")
    with pytest.raises(CompactRigError, match="gate 'always' has no option 'stream_name'; its options: none"):
        Gate(stream_name="Eye")


def test_an_image_whose_response_always_goes_missing_is_left_out_after_three_tries(tmp_path, cli):
    """A replayed recording without image0009: each showing of it gets no response; after 3 it is left
    out, the session ends, and the summary names it."""
    recorded = np.random.default_rng(0).poisson(5, (2, 2, 4)).astype(float)
    np.save(tmp_path / "recorded.npy", recorded)
    stimuli = tmp_path / "set"
    StimulusSet([StimulusRecord(image_id=i, kind="natural") for i in ("image0001", "image0002", "image0009")],
                np.stack([grating(0), grating(90), dot_lattice()])).save(stimuli)
    rig = tmp_path / "rig.toml"
    rig.write_text(RIG)
    out = tmp_path / "session"
    result = cli("session", "run", "--stimuli", str(stimuli), "--rig", str(rig), "--source", "replay",
                 "--source-opt", f"responses={tmp_path / 'recorded.npy'}", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "1 plan item(s) left out after 3 missing responses each (images: image0009)" in result.stdout
    tries = table(out, "SELECT abort_kind, abort_reason FROM presentations WHERE image_id = 'image0009'")
    assert len(tries) == 3 and all(kind == "missing" and "not in the recording" in reason for kind, reason in tries)
    stored = table(out, "SELECT p.image_id, r.unit, r.count FROM presentations p JOIN responses r ON r.ord = p.ord "
                        "WHERE p.aborted = 0")
    expected = {(f"image{k + 1:04d}", f"n{u}"): recorded[u, k, 0] for k in range(2) for u in range(2)}
    assert {(i, u): c for i, u, c in stored} == expected


def test_map_errors_are_one_line_before_anything_is_shown(tmp_path, stimuli, rig, cli):
    unknown_neuron = cli("session", "run", "--stimuli", str(stimuli), "--rig", str(rig), "--source", "simulated",
                         "--map", "unit0=demo:7", "--out", str(tmp_path / "a"))
    assert unknown_neuron.returncode == 2 and "Traceback" not in unknown_neuron.stderr
    assert "--map names neuron 'demo:7', which the bank 'demo' does not have" in unknown_neuron.stderr
    stranger = cli("session", "run", "--stimuli", str(stimuli), "--rig", str(rig), "--source", "lsl",
                   "--source-opt", "units=3,5", "--map", "4=demo:0", "--out", str(tmp_path / "b"))
    assert stranger.returncode == 2 and "--map names unit '4', which source 'lsl' does not record (its units: 3, 5)" \
        in stranger.stderr
    assert not (tmp_path / "a" / "session.json").exists() and not (tmp_path / "b" / "session.json").exists()


@pytest.mark.slow
def test_ctrl_c_in_the_terminal_stops_cleanly_and_a_hung_presenter_is_not_waited_for(tmp_path, stimuli, rig):
    """Ctrl-C reaches the whole process group: the runner stops after the image on screen and says how to
    resume; the presenter (which ignores SIGINT) is shut down by its parent, not counted as dead. A
    presenter that hangs (SIGSTOP) ends the run with a one-line error within the trial's deadline."""
    out = tmp_path / "session"
    rig.write_text(RIG.replace("frames_on = 3", "frames_on = 30").replace("[screen]", "[screen]\npace_frames = true"))
    process = subprocess.Popen(compactrig_command("session", "run", "--stimuli", str(stimuli), "--rig", str(rig),
                                          "--source", "simulated", "--repeats", "20", "--out", str(out)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and count_so_far(out, "SELECT COUNT(*) FROM responses") < 2:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "stopped; resume with `compactrig session resume" in stdout and "died" not in stdout + stderr
    assert "Traceback" not in stderr

    resumed = subprocess.Popen(compactrig_command("session", "resume", str(out)), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    import psutil
    deadline = time.monotonic() + 60
    presenter = None
    while presenter is None and time.monotonic() < deadline:
        children = psutil.Process(resumed.pid).children(recursive=True)
        shown = table(out, "SELECT COUNT(*) FROM presentations")[0][0]
        presenter = next((c for c in children if "spawn" in " ".join(c.cmdline())), None) if shown > 2 else None
        time.sleep(0.05)
    shown = table(out, "SELECT COUNT(*) FROM presentations")[0][0]
    time.sleep(0.3)
    presenter.suspend()  # alive, but stuck mid-trial
    stopped_at = time.monotonic()
    try:
        stdout, stderr = resumed.communicate(timeout=60)
    finally:
        if presenter.is_running():
            presenter.resume()
    assert resumed.returncode == 2 and "the presenter stopped responding during trial" in stderr
    # the trial's deadline (twice its length plus 5 s), then the stuck presenter is killed, not asked to close
    assert time.monotonic() - stopped_at < 2 * (2 * 30 / 60 + 0.5) + 5 + 2
    assert "Traceback" not in stderr
    assert table(out, "SELECT COUNT(*) FROM presentations")[0][0] >= shown
