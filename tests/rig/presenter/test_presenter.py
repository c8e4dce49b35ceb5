"""The presenter process under Xvfb: pixels, order and counts (never timing: Xvfb has no vsync)."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import time
import uuid

import numpy as np
import pylsl
import pytest
from PIL import Image

from compactrig.engine.errors import CompactRigError
from compactrig.engine.models.bank import load_bank
from compactrig.rig.presenter import protocol as msg
from compactrig.rig.presenter.client import Presenter
from compactrig.rig.presenter.rig import RigConfig, parse_rig
from compactrig.stimuli.probes import colour_blob, dot_lattice, grating
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet, annotate
from compactrig.stimuli.trial_plan import Trial, make_plan

from support.commands import run_cli

pytestmark = pytest.mark.needs_display

RIG = {"screen": {"resolution": [800, 600], "refresh_hz": 60.0, "width_cm": 40.0, "distance_cm": 57.0},
       "image": {"size_deg": 11.0, "position_deg": [7.0, 0.0]},
       "fixation": {"size_deg": 0.5, "colour": [255, 0, 0]},
       "photodiode": {"corner": "bottom-left", "size_px": 30},
       "timing": {"frames_on": 3, "frames_off": 2, "images_per_trial": 2, "inter_trial_s": 0.05}}


@pytest.fixture(scope="module")
def stimulus_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stimuli")
    pixels = np.stack([grating(30, period_px=16), colour_blob((1, -1, 0), radius_px=30),
                       dot_lattice(spacing_px=16, dot_sigma_px=3)])
    records = [StimulusRecord(image_id=i, kind="natural") for i in ("grating", "blob", "dots")]
    annotate(load_bank(), pixels, records).save(folder)
    return folder


def write_rig(path, **changes):
    lines = []
    for section, table in {**RIG, **changes}.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def read_log(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_captured_frames_log_and_order(tmp_path, stimulus_folder):
    rig_path = write_rig(tmp_path / "rig.toml")
    capture, log = tmp_path / "frames", tmp_path / "log.csv"
    result = run_cli("present", "--stimuli", str(stimulus_folder), "--rig", str(rig_path), "--repeats", "2",
                     "--shuffle", "--seed", "4", "--log", str(log), "--capture", str(capture), timeout=120)
    assert result.returncode == 0, result.stderr
    stimulus_set = StimulusSet.load(stimulus_folder)
    plan = make_plan(stimulus_set.ids, 2, 2, shuffle=True, seed=4)
    planned = [(t.trial_id, image) for t in plan for image in t.image_ids]
    rows = read_log(log)
    assert [(int(r["trial"]), r["image_id"]) for r in rows] == planned
    assert [int(r["order"]) for r in rows] == list(range(6))
    assert all(int(r["frames_shown"]) == 3 and r["aborted"] == "0" for r in rows)
    assert sorted(r["image_id"] for r in rows) == sorted(stimulus_set.ids * 2)
    times = [float(r["onset_time"]) for r in rows]
    assert times == sorted(times) and abs(times[0] - pylsl.local_clock()) < 120, "onsets on the LSL clock"

    rig = parse_rig(RIG)
    side = rig.drawn_image_px()
    scale = side // 112
    assert scale == 2 and not rig.fixation_overlaps_image()
    x, y = rig.pixel_aligned_position(side)
    left, top = int(400 + x - side / 2), int(300 - y - side / 2)
    assert sorted(p.name for p in capture.iterdir()) == [f"{i:05d}.png" for i in range(6)]
    for order, row in enumerate(rows):
        frame = Image.open(capture / f"{order:05d}.png").convert("RGB")
        assert frame.size == (800, 600)
        drawn = np.asarray(frame)[top:top + side, left:left + side]
        expected = stimulus_set.pixels[stimulus_set.ids.index(row["image_id"])]
        blocks = drawn.reshape(112, scale, 112, scale, 3)
        assert (blocks == expected[:, None, :, None, :]).all(), f"{row['image_id']}: every PNG pixel is a " \
            f"{scale}x{scale} block of exactly its value"
        around = np.asarray(frame)
        assert (around[top - 1, left:left + side] == 128).all() and (around[top:top + side, left - 1] == 128).all(), \
            "the image starts exactly at its pixel-aligned edge (background just outside)"
        pixels = np.asarray(frame)
        assert tuple(pixels[300, 400]) == (255, 0, 0), "fixation dot at the screen centre"
        patch = pixels[600 - 15, 15]
        assert tuple(patch) == ((255, 255, 255) if order % 2 == 0 else (0, 0, 0)), "photodiode toggles per onset"
        assert tuple(pixels[50, 400]) == (128, 128, 128), "background grey"


def run_until_done(presenter, timeout=60):
    events = []
    done = presenter.wait_for(msg.RunDone, timeout, collected=events)
    return events, done


def start(rig: RigConfig, stimulus_folder):
    presenter = Presenter(rig, {"session": "/data/session-7", "stimulus_set": "/data/set-A"}).start()
    presenter.wait_for(msg.Ready, 60)
    stimulus_set = StimulusSet.load(stimulus_folder)
    presenter.send(msg.LoadStimuli(stimulus_set.ids, stimulus_set.pixels))
    presenter.wait_for(msg.StimuliLoaded, 60)
    return presenter, stimulus_set


def test_abort_stops_within_two_frames_and_keeps_the_log(stimulus_folder):
    rig = parse_rig({**RIG, "timing": {"frames_on": 40, "frames_off": 20, "images_per_trial": 3}})
    presenter, stimulus_set = start(rig, stimulus_folder)
    try:
        trials = make_plan(stimulus_set.ids, 10, 3)
        presenter.send(msg.RunTrials(trials))
        before = []
        while sum(isinstance(e, msg.Onset) for e in before) < 2:
            before.append(presenter.wait_for(msg.Onset, 30, collected=before))
        presenter.send(msg.Abort())
        after, done = run_until_done(presenter)
        onsets = [e for e in before + after if isinstance(e, msg.Onset)]
        assert done.aborted and done.frames_after_abort <= 2
        assert [o.order for o in onsets] == list(range(len(onsets))) and len(onsets) < 30
        assert done.images_shown == len(onsets)
        finished = [e for e in before + after if isinstance(e, msg.ImageDone)]
        assert [e.order for e in finished] == [o.order for o in onsets], "every onset gets its end"
        assert not finished[0].aborted and finished[0].frames_shown == 40
        assert finished[-1].aborted and finished[-1].frames_shown < 40, "the image up at the abort is cut short"
        assert all(e.offset_time > e.onset_time for e in finished)
        trial_done = next(e for e in after if isinstance(e, msg.TrialDone))
        assert trial_done.aborted and trial_done.end_time >= finished[-1].offset_time
        time.sleep(0.3)
        assert not any(isinstance(e, msg.Onset) for e in presenter.poll()), "nothing shown after the abort"
    finally:
        presenter.shutdown()


def test_pause_waits_for_the_trial_boundary_then_resume_continues(stimulus_folder):
    presenter, stimulus_set = start(parse_rig(RIG), stimulus_folder)
    try:
        presenter.send(msg.RunTrials([Trial(0, ("grating", "blob")), Trial(1, ("dots",))]))
        presenter.send(msg.Pause())
        events = []
        presenter.wait_for(msg.TrialDone, 30, collected=events)
        time.sleep(0.5)
        events += presenter.poll()
        assert not any(isinstance(e, (msg.TrialStarted, msg.RunDone)) for e in events if getattr(e, "trial_id", 0) == 1)
        presenter.send(msg.Resume())
        rest, done = run_until_done(presenter)
        assert not done.aborted and done.images_shown == 3
        assert [o.image_id for o in events + rest if isinstance(o, msg.Onset)] == ["grating", "blob", "dots"]
    finally:
        presenter.shutdown()


def test_lsl_markers_match_the_onsets(stimulus_folder):
    source_id = f"compactrig-test-{uuid.uuid4()}"
    rig = parse_rig({**RIG, "markers": {"outputs": ["lsl"], "lsl": {"name": "TestMarkers", "source_id": source_id}}})
    presenter, stimulus_set = start(rig, stimulus_folder)
    try:
        streams = pylsl.resolve_byprop("source_id", source_id, 1, 10.0)
        assert streams, "the marker stream is visible on the network"
        inlet = pylsl.StreamInlet(streams[0])
        inlet.open_stream(10.0)
        presenter.send(msg.RunTrials(make_plan(stimulus_set.ids, 2, 2)))
        events, _ = run_until_done(presenter)
        onsets = [e for e in events if isinstance(e, msg.Onset)]
        markers, deadline = [], time.monotonic() + 10
        while len(markers) < len(onsets) + 2 * 3 and time.monotonic() < deadline:
            sample, stamp = inlet.pull_sample(timeout=0.5)
            if sample is not None:
                markers.append((json.loads(sample[0]), stamp + inlet.time_correction()))
        onset_markers = [(m, t) for m, t in markers if m["event"] == "onset"]
        assert len(onset_markers) == len(onsets) == 6
        for (marker, stamp), onset in zip(onset_markers, onsets):
            assert (marker["order"], marker["trial"], marker["image"]) == (onset.order, onset.trial_id, onset.image_id)
            assert abs(stamp - onset.onset_time) < 1e-3 and onset.marker_sent
        assert [m["event"] for m, _ in markers].count("trial_start") == 3
        ends = [t for m, t in markers if m["event"] == "trial_end"]
        trial_ends = [e.end_time for e in events if isinstance(e, msg.TrialDone)]
        assert len(ends) == 3 and all(abs(a - b) < 1e-3 for a, b in zip(ends, trial_ends)), "trial_end on its flip"
        done = [e for e in events if isinstance(e, msg.ImageDone)]
        assert all(abs(d.offset_time - o.onset_time) > 0 for d, o in zip(done, onsets))
        presenter.send(msg.MarkAborted(3, "fixation break"))
        sample, stamp = inlet.pull_sample(timeout=5.0)
        assert json.loads(sample[0]) == {"event": "abort", "order": 3, "reason": "fixation break"}
        described = inlet.info(5.0).desc().child("compactrig")
        assert described.child_value("session") == "/data/session-7"
        assert described.child_value("stimulus_set") == "/data/set-A"
    finally:
        presenter.shutdown()


def test_the_onset_is_reported_while_the_image_is_still_up_and_ctrl_c_does_not_reach_the_presenter(
        stimulus_folder):
    """A long image: the source must learn its onset at the first flip, not after its frames."""
    rig = parse_rig({**RIG, "timing": {"frames_on": 300, "frames_off": 0, "images_per_trial": 2}})
    presenter, stimulus_set = start(rig, stimulus_folder)
    try:
        presenter.send(msg.RunTrials([Trial(0, ("grating", "blob"))]))
        onset = presenter.wait_for(msg.Onset, 30)
        learned_at = pylsl.local_clock()
        os.kill(presenter.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole process group
        events, done = run_until_done(presenter)
        first_done = next(e for e in events if isinstance(e, msg.ImageDone))
        assert first_done.order == onset.order and learned_at < first_done.offset_time, \
            "the onset arrived before the image was taken down"
        second = next(e for e in events if isinstance(e, msg.Onset))
        assert abs(first_done.offset_time - second.onset_time) < 1e-9, "no off frames: the next onset removes it"
        assert not done.aborted and presenter.alive, "the presenter ignores SIGINT; the parent decides"
    finally:
        presenter.shutdown()


def test_a_windowed_presenter_opens_where_the_rig_file_puts_it():
    """The X server's own account of the window (xwininfo), not the presenter's: with no window manager
    under Xvfb, the window's top-left corner is exactly [screen] position."""
    rig = parse_rig({**RIG, "screen": {**RIG["screen"], "resolution": [320, 240], "width_cm": 16.0,
                                       "position": [37, 23]},
                     "image": {"size_deg": 2.0, "position_deg": [1.0, 0.0]}})
    presenter = Presenter(rig).start()
    try:
        presenter.wait_for(msg.Ready, 60)
        tree = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True, text=True, check=True).stdout
        assert re.search(r"320x240\+37\+23\s", tree), tree
    finally:
        presenter.shutdown()


def test_a_ctrl_c_while_the_presenter_starts_does_not_kill_it(capfd):
    """A terminal's Ctrl-C reaches the whole process group; one pressed while the presenter was still importing
    killed it with a KeyboardInterrupt traceback on the terminal, and the session's clean stop became "the
    presenter process died". Here SIGINT reaches the child at once and then every 50 ms while it starts."""
    presenter = Presenter(parse_rig(RIG)).start()
    try:
        for _ in range(10):
            os.kill(presenter.pid, signal.SIGINT)
            time.sleep(0.05)
        presenter.wait_for(msg.Ready, 60)
        assert presenter.alive
    finally:
        presenter.shutdown()
    assert "KeyboardInterrupt" not in capfd.readouterr().err


def test_killing_the_presenter_is_noticed_within_a_second(stimulus_folder):
    presenter = Presenter(parse_rig(RIG)).start()
    try:
        presenter.wait_for(msg.Ready, 60)
        os.kill(presenter.pid, signal.SIGKILL)
        killed = time.monotonic()
        died = presenter.wait_for(msg.PresenterDied, 5)
        assert time.monotonic() - killed < 1.0 and died.exitcode == -signal.SIGKILL
    finally:
        presenter.shutdown()


def test_bad_screen_and_bad_sets_fail_before_anything_is_shown(tmp_path, stimulus_folder, cli):
    rig_path = write_rig(tmp_path / "rig.toml", screen={**RIG["screen"], "index": 5})
    result = run_cli("present", "--stimuli", str(stimulus_folder), "--rig", str(rig_path), timeout=120)
    assert result.returncode == 2 and "screen.index = 5" in result.stderr and "Traceback" not in result.stderr
    StimulusSet.empty().save(tmp_path / "empty")
    empty = cli("present", "--stimuli", str(tmp_path / "empty"))
    assert empty.returncode == 2 and "stimulus set is empty" in empty.stderr
    broken = cli("present", "--stimuli", str(tmp_path))
    assert broken.returncode == 2 and "no manifest.json" in broken.stderr
    unknown = write_rig(tmp_path / "unknown.toml", timing={"frames_on": 3, "flashes": 2})
    bad_rig = cli("present", "--stimuli", str(stimulus_folder), "--rig", str(unknown))
    assert bad_rig.returncode == 2 and "unknown key timing.flashes" in bad_rig.stderr


def test_a_marker_stream_nobody_records_stops_the_start_with_a_clear_message():
    """``wait_for_recorder_s``: no image is shown before the recording system listens."""
    source_id = f"compactrig-unheard-{uuid.uuid4()}"
    rig = parse_rig({**RIG, "markers": {"outputs": ["lsl"], "lsl": {"name": source_id, "source_id": source_id,
                                                                    "wait_for_recorder_s": 0.5}}})
    presenter = Presenter(rig).start()
    try:
        with pytest.raises(CompactRigError, match=r"no recorder subscribed to the marker stream .* within 0.5 s"):
            presenter.wait_for(msg.Ready, 60)
    finally:
        presenter.shutdown()
