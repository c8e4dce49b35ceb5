"""The session controller without Qt: a real session (simulated source, presenter under Xvfb) started,
paused, given queued images, aborted, resumed and read back, seen only through its typed events and its
live session, whose numbers are recomputed here from the trial store and the float64 reference model."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import numpy as np
import pytest

from compactrig.engine.errors import CompactRigError
from compactrig.engine.models.bank import load_bank
from compactrig.rig.presenter.rig import load_rig
from compactrig.rig.session.controller import SessionController
from compactrig.rig.session.events import (
    ImagesAdded,
    ResponseStored,
    SessionEnded,
    SessionMessage,
    SessionStarted,
    SessionStatus,
    StoredSessionShown,
    TrialShown,
)
from compactrig.rig.session.folder import STIMULI_DIR
from compactrig.rig.session.setup import SessionPlan
from compactrig.stimuli.probes import colour_blob, grating
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

from support.independent_model import evaluate
from support.sessions import RIG, check_exactly_once, table

MAPPED = {"unit0": "demo:0", "unit1": "demo:1", "unit2": "demo:2"}
"""The simulated source's bank-neuron units (its ``unknown=1`` mixture, unit3, has no model)."""


def images(ids: list[str], pixels: list[np.ndarray]) -> StimulusSet:
    return StimulusSet([StimulusRecord(image_id=i, kind="natural") for i in ids], np.stack(pixels))


def take_until(session: SessionController, seen: list, done: Callable[[list], bool], timeout: float = 60) -> None:
    """Take the controller's events as a consumer does (every 20 ms) until ``done(seen)``."""
    deadline = time.monotonic() + timeout
    while not done(seen):
        assert time.monotonic() < deadline, [e for e in seen if isinstance(e, SessionMessage)]
        time.sleep(0.02)
        seen += session.take_events()


def texts(events: list) -> list[str]:
    return [e.text for e in events if isinstance(e, SessionMessage)]


def since_start(events: list) -> list:
    starts = [k for k, e in enumerate(events) if isinstance(e, SessionStarted)]
    return events[starts[-1]:]


def independent_r(events: list, predictions: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each mapped unit's r over its images' mean responses, from the last run's events up to here (numpy
    only); NaN before two images have responses."""
    run = since_start(events)
    shown = list(run[0].stored) + [(e.image_id, e.counts) for e in run if isinstance(e, ResponseStored)]
    r = {}
    for unit in MAPPED:
        means = {i: np.mean([c[unit] for image, c in shown if image == i]) for i in dict.fromkeys(i for i, _ in shown)}
        with np.errstate(invalid="ignore", divide="ignore"):  # equal means: no r, as the app says too
            r[unit] = (float(np.corrcoef([predictions[unit][i] for i in means], list(means.values()))[0, 1])
                       if len(means) >= 2 else float("nan"))
    return r


@pytest.fixture()
def session():
    controller = SessionController()
    yield controller
    controller.close()  # a failed test leaves no session running


@pytest.mark.slow
@pytest.mark.needs_display
def test_start_pause_queue_abort_resume_and_the_live_session_is_the_store(tmp_path, session):
    rig_file = tmp_path / "rig.toml"
    rig_file.write_text(RIG.replace("[screen]", "[screen]\npace_frames = true"))  # trials take their 167 ms
    rig = load_rig(rig_file).with_source("simulated", {"seed": 2, "unknown": 1})
    set_folder = tmp_path / "set"
    images([f"img{i}" for i in range(4)], [grating(a) for a in (0, 45, 90, 135)]).save(set_folder)
    folder = tmp_path / "session"
    plan = SessionPlan(stimuli=str(set_folder), repeats=3)
    session.start(folder, plan, rig, rig_file)
    session.set_paused(True)  # before the first trial: the queued images join a plan that cannot finish first
    assert session.running and session.folder == folder
    with pytest.raises(CompactRigError, match="A session is running"):
        session.resume(folder)
    seen: list = []
    take_until(session, seen, lambda events: "paused; resume to go on" in texts(events))
    assert texts(seen)[0] == "units mapped to their simulated neurons: " + ", ".join(
        f"{u}={n}" for u, n in MAPPED.items()), "no unit map: the simulated units' own neurons"
    blobs = images(["blob_red", "blob_blue"], [colour_blob((1, -1, 0)), colour_blob((0, 0, 1))])
    assert session.queue_images(blobs, 1) == "2 image(s) x 1 queued into the running session"
    take_until(session, seen, lambda events: any(isinstance(e, ImagesAdded) for e in events))
    assert not any(isinstance(e, TrialShown) for e in seen), "paused: nothing shown yet"
    session.set_paused(False)
    take_until(session, seen, lambda events: sum(isinstance(e, TrialShown) for e in events) >= 2)
    session.abort()
    take_until(session, seen, lambda events: isinstance(events[-1], SessionEnded))
    assert not session.running and seen[-1] == SessionEnded(str(folder), False, None)
    assert f"stopped; resume with `compactrig session resume {folder}`" in texts(seen)
    assert all(type(e).__module__ == "compactrig.rig.session.events" for e in seen), "typed events, no strings"
    assert not [e for e in seen if isinstance(e, SessionMessage) and e.trouble], "a healthy run has no trouble"
    assert isinstance(session.status, SessionStatus) and session.status.planned == 12 + 2

    # Each trial's summary line quotes the live session: r over the responses taken before it.
    bank = load_bank("demo")
    pixels = StimulusSet.load(folder / STIMULI_DIR)
    predictions = {u: dict(zip(pixels.ids, evaluate(bank.state_dict(n), pixels.pixels))) for u, n in MAPPED.items()}
    for k, event in enumerate(seen):
        if isinstance(event, TrialShown):
            line = seen[k + 1].text
            assert line.startswith(f"trial {event.trial_id}: {event.done}/{event.planned} presentations complete, "
                                   f"{event.waiting} awaiting responses")
            quoted = {unit: float(r) for unit, r in re.findall(r"(unit\d) r=(\S+)", line)}
            expected = independent_r(seen[:k], predictions)
            assert quoted.keys() == expected.keys(), line
            for unit, r in expected.items():
                assert abs(quoted[unit] - r) <= 0.005 + 1e-3 or np.isnan(r) and np.isnan(quoted[unit]), (line, r)

    # Stopped: queued images go into its plan; resumed, everything is shown and answered exactly once.
    green = images(["blob_green"], [colour_blob((-1, 1, 0))])
    assert session.queue_images(green, 2) == f"1 image(s) x 2 added to the plan of {folder}; resume it to show them"
    session.resume(folder)
    take_until(session, seen, lambda events: sum(isinstance(e, SessionEnded) for e in events) == 2, timeout=120)
    assert seen[-1] == SessionEnded(str(folder), True, None), texts(since_start(seen))
    check_exactly_once(folder, 12 + 2 + 2, n_units=4)

    # The live session holds the store: every unit's sums per image, the mapped units' r, from the store here.
    rows = table(folder, "SELECT p.image_id, r.unit, r.count FROM responses r JOIN presentations p ON p.ord = r.ord "
                         "WHERE p.aborted = 0")
    live = session.live
    assert live.sums is not None and live.fit is not None and live.summary is not None
    assert live.sums.units == ["unit0", "unit1", "unit2", "unit3"] and live.unmapped == ["unit3"]
    assert live.fit.units == list(MAPPED) and live.sums.n_presentations == 16
    for row, image in enumerate(live.sums.image_ids):
        for column, unit in enumerate(live.sums.units):
            counts = [c for i, u, c in rows if i == image and u == unit]
            assert live.sums.counts[row, column] == len(counts)
            assert live.sums.sums[row, column] == pytest.approx(sum(counts))
            assert live.sums.sumsq[row, column] == pytest.approx(sum(c * c for c in counts))
    pixels = StimulusSet.load(folder / STIMULI_DIR)
    assert live.sums.image_ids == pixels.ids
    for k, (unit, neuron) in enumerate(MAPPED.items()):
        means = [np.mean([c for i, u, c in rows if i == image and u == unit]) for image in pixels.ids]
        r = np.corrcoef(evaluate(bank.state_dict(neuron), pixels.pixels), means)[0, 1]
        assert live.summary.r[k] == pytest.approx(r, abs=1e-3)
        assert live.summary.n_images[k] == 7
    run = since_start(seen)
    assert [e.image_id for e in run if isinstance(e, ResponseStored)].count("blob_green") == 2

    # Read back, not running: the same numbers, by the same path.
    live_r, live_counts = live.summary.r.copy(), live.sums.counts.copy()
    session.open_stored(folder)
    take_until(session, seen, lambda events: isinstance(events[-1], StoredSessionShown))
    assert seen[-1] == StoredSessionShown(str(folder), 16) and isinstance(seen[-2], SessionStarted)
    np.testing.assert_allclose(session.live.summary.r, live_r)
    np.testing.assert_array_equal(session.live.sums.counts, live_counts)


def test_what_cannot_be_done_is_one_line_and_a_stored_session_that_cannot_be_read_is_trouble(tmp_path, session):
    with pytest.raises(CompactRigError, match="Start a session first"):
        session.queue_images(images(["a"], [grating(0)]), 1)
    with pytest.raises(CompactRigError, match="session.json"):
        session.resume(tmp_path)
    with pytest.raises(CompactRigError, match="not a session folder"):
        session.open_stored(tmp_path)
    assert not session.running and not session.busy()
    (tmp_path / "session.json").write_text("{}")
    session.open_stored(tmp_path)
    seen: list = []
    take_until(session, seen, lambda events: bool(events), timeout=10)
    assert len(seen) == 1 and seen[0].trouble and str(tmp_path) in seen[0].text
    assert session.live.fit is None, "nothing was shown"
