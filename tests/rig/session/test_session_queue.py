"""Images queued into a session while it runs (the closed loop), and into a stopped one."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from compactrig.engine.models.bank import load_bank
from compactrig.rig.presenter.rig import load_rig
from compactrig.rig.session.events import ImagesAdded, ResponseStored, SessionMessage
from compactrig.rig.session.folder import STIMULI_DIR, read_snapshot
from compactrig.rig.session.runner import SessionRunner
from compactrig.rig.session.setup import SessionPlan, append_to_session, start_session
from compactrig.stimuli.probes import colour_blob, grating
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

from support.independent_model import evaluate
from support.sessions import RIG, check_exactly_once, table

pytestmark = pytest.mark.needs_display


def images(ids: list[str], pixels: list[np.ndarray]) -> StimulusSet:
    return StimulusSet([StimulusRecord(image_id=i, kind="natural") for i in ids], np.stack(pixels))


@pytest.fixture()
def session(tmp_path):
    rig = tmp_path / "rig.toml"
    rig.write_text(RIG)
    stimuli = tmp_path / "set"
    images([f"img{i}" for i in range(4)], [grating(a) for a in (0, 45, 90, 135)]).save(stimuli)
    folder = tmp_path / "session"
    start_session(folder, SessionPlan(stimuli=str(stimuli), unit_map={"unit1": "demo:1"}, bank="demo"), rig,
                  load_rig(rig).with_source(None, {"seed": 2}))
    return folder


def run_in_thread(runner: SessionRunner) -> tuple[threading.Thread, list]:
    result = []
    thread = threading.Thread(target=lambda: result.append(runner.run()))
    thread.start()
    return thread, result


@pytest.mark.slow
def test_images_queued_during_a_session_are_shown_answered_and_fitted(session):
    events = []
    runner = SessionRunner(session, on_event=events.append)
    runner.controls.pause_requested = True  # queue while paused, so the plan cannot finish first
    thread, result = run_in_thread(runner)

    def lines() -> list[str]:
        return [e.text for e in list(events) if isinstance(e, SessionMessage)]

    deadline = time.monotonic() + 60
    while not any("paused" in line for line in lines()) and time.monotonic() < deadline:
        time.sleep(0.05)
    new = images(["blob_red", "blob_blue"], [colour_blob((1, -1, 0)), colour_blob((0, 0, 1))])
    assert runner.queue_images(new, repeats=2)
    assert runner.queue_images(images(["img0"], [grating(0)]), repeats=1), "a known image is planned again"
    assert runner.queue_images(images(["img1"], [grating(10)]), repeats=1)  # same id, other pixels: refused
    deadline = time.monotonic() + 30
    while not any(isinstance(e, ImagesAdded) for e in events) and time.monotonic() < deadline:
        time.sleep(0.05)
    runner.controls.pause_requested = False
    thread.join(120)
    assert result == [True], lines()
    assert any("img1" in line and "other pixels" in line for line in lines())
    check_exactly_once(session, 4 + 4 + 1)
    assert read_snapshot(session)["stimulus_ids"] == ["img0", "img1", "img2", "img3", "blob_red", "blob_blue"]
    assert StimulusSet.load(session / STIMULI_DIR).ids[-2:] == ["blob_red", "blob_blue"]
    added = next(e for e in events if isinstance(e, ImagesAdded))
    assert added.image_ids == ["blob_red", "blob_blue"] and added.planned == 4 + 4
    expected = evaluate(load_bank("demo").state_dict("demo:1"), new.pixels)
    assert np.allclose(added.predictions["unit1"], expected, atol=1e-4 * np.abs(expected).max())
    shown = [e.image_id for e in events if isinstance(e, ResponseStored)]
    assert shown.count("blob_red") == 2 and shown.count("img0") == 2
    assert runner.queue_images(new) is False, "a finished runner refuses; append_to_session instead"


@pytest.mark.slow
def test_images_appended_to_a_stopped_session_are_shown_on_resume(session):
    assert SessionRunner(session).run()
    assert append_to_session(session, images(["blob_green"], [colour_blob((-1, 1, 0))]), repeats=3) == 3
    assert [i for _, i in table(session, "SELECT item, image_id FROM plan ORDER BY item")][-3:] == ["blob_green"] * 3
    assert SessionRunner(session).run()
    check_exactly_once(session, 7)
