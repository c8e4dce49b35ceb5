"""The closed loop's decisions without Qt: the refit schedule, stale results dropped, the committee's fallback,
the strategies and queueing, driven through ``LoopController`` with the runner's own event types.

Jobs are held and ended by the test (``HeldJobs``), so what a result meets when it comes back is chosen
here. Features are the demo bank's outputs; the expected readouts and choices are computed here from the
float64 reference model and numpy."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from compactrig.engine.models.bank import load_bank
from compactrig.engine.readout.ridge import fit_ridge
from compactrig.engine.stats.response_sums import PerImageSums
from compactrig.rig.loop.controller import LoopController
from compactrig.rig.loop.events import BatchChosen, ImagesDesigned, LoopMessage, ReadoutsFitted
from compactrig.rig.loop.fit_files import load_fits
from compactrig.rig.loop.jobs import LoopJob, ThreadJobs
from compactrig.rig.loop.loop_plan import LoopPlan
from compactrig.rig.loop.readout_table import readout_rows
from compactrig.rig.loop.rounds import Rounds, save_round
from compactrig.rig.session.events import ImagesAdded, ResponseStored, SessionStarted, SessionStatus
from compactrig.rig.session.live import LiveSession
from compactrig.rig.session.setup import SessionPlan, append_to_session, start_session
from compactrig.stimuli.closed_loop import batch_strategy, committee_spread
from compactrig.stimuli.next_images import choose_next, pool_kinds
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet
from compactrig.stimuli.textures import pink_noise_images

from support.independent_model import evaluate

DEMO = load_bank("demo")
UNITS = ["u0", "u1"]
N_IMAGES = 12
WEIGHTS = np.array([[2.0, 0.0, 1.0], [0.0, -1.5, 0.5]])
"""The simulated units' dependence on the demo neurons' outputs (mean count = 5 + features @ w)."""


class HeldJobs:
    """The controller's jobs, held until the test ends one (run then finished, as a runner would)."""

    def __init__(self) -> None:
        self.jobs: list[LoopJob] = []

    def __call__(self, job: LoopJob) -> None:
        self.jobs.append(job)

    def waiting(self, kind: str) -> list[LoopJob]:
        return [j for j in self.jobs if j.kind == kind and not j.ended]

    def finish(self, kind: str) -> LoopJob:
        job = self.waiting(kind)[0]
        job.finish(job.run(lambda done, total, phase="": None))
        return job


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """A session folder's stimulus copy, the demo features of its images (float64 reference), counts."""
    folder = tmp_path_factory.mktemp("session")
    pixels = pink_noise_images(N_IMAGES, seed=3, contrast=60.0)
    images = StimulusSet([StimulusRecord(image_id=f"img{i:02d}", kind="natural") for i in range(N_IMAGES)], pixels)
    images.save(folder / "stimuli")
    features = np.stack([evaluate(DEMO.state_dict(n), pixels) for n in DEMO.neuron_ids], axis=1)
    counts = np.random.default_rng(0).poisson(np.maximum(5 + features @ WEIGHTS.T, 0.1), size=(2, N_IMAGES, 2))
    return folder, images, features, counts.astype(np.float64)


def started(folder, images: StimulusSet, planned: int) -> SessionStarted:
    return SessionStarted(list(UNITS), images.ids, {}, {}, [], planned, str(folder))


def response(images: StimulusSet, counts: np.ndarray, k: int) -> ResponseStored:
    """The k-th presentation: image k mod 12, repeat k // 12."""
    return ResponseStored(images.ids[k % N_IMAGES], dict(zip(UNITS, counts[k // N_IMAGES, k % N_IMAGES])))


def controller_with(jobs, refit_every: int = 4) -> tuple[LoopController, list, list]:
    events, queued = [], []
    controller = LoopController(jobs, LiveSession(), lambda images, repeats: queued.append((images, repeats)),
                                refit_every)
    controller.subscribe(events.append)
    controller.set_bank(DEMO)
    return controller, events, queued


def feed(controller: LoopController, events: list) -> None:
    """The session's events as a session controller hands them on: into the live session, then the loop."""
    controller.live.take_events(events)
    controller.take_events(events)


def fitted(events: list) -> list[ReadoutsFitted]:
    return [e for e in events if isinstance(e, ReadoutsFitted)]


def test_readouts_refit_on_schedule_one_at_a_time_and_once_more_when_the_plan_is_caught_up(session):
    folder, images, features, counts = session
    jobs = HeldJobs()
    controller, events, _ = controller_with(jobs, refit_every=4)
    feed(controller, [started(folder, images, planned=20)])
    jobs.finish("features")
    for k in range(10):
        feed(controller, [response(images, counts, k)])
    assert len(jobs.waiting("refit")) == 1, "the first fit as soon as 10 images have responses"
    for k in range(10, 15):
        feed(controller, [response(images, counts, k)])
    assert len(jobs.waiting("refit")) == 1, "one refit at a time"
    jobs.finish("refit")  # fitted at 10; 5 more since >= 4: the next starts at once
    jobs.finish("refit")
    for k in range(15, 18):
        feed(controller, [response(images, counts, k)])
    assert not jobs.waiting("refit"), "3 behind, fewer than refit_every"
    feed(controller, [response(images, counts, 18)])
    jobs.finish("refit")
    feed(controller, [response(images, counts, 19), SessionStatus(20, 20, False, True, 60.0, 0, True)])
    jobs.finish("refit")  # caught up: one more, so the readouts have every response
    assert [e.at for e in fitted(events)] == [10, 15, 19, 20]
    assert not jobs.waiting("refit") and controller.fitted_on_everything

    # The last fit is the ridge fit of the reference features and the mean of the 20 responses.
    order = controller.fit_data.image_ids
    rows = [images.ids.index(i) for i in order]
    n = np.array([[2 if r < 8 else 1] * 2 for r in rows])  # presentations 12..19 repeat images 0..7
    sums = np.array([counts[0, r] + (counts[1, r] if r < 8 else 0) for r in rows])
    sumsq = np.array([counts[0, r] ** 2 + (counts[1, r] ** 2 if r < 8 else 0) for r in rows])
    expected = fit_ridge(features[rows], PerImageSums.from_counts(UNITS, order, n, sums, sumsq))
    np.testing.assert_allclose(controller.fit.held_out_r, expected.held_out_r, atol=1e-3)
    np.testing.assert_allclose(controller.fit.weights, expected.weights, rtol=1e-3, atol=1e-3)


def test_a_result_that_went_stale_while_its_job_ran_is_dropped(session):
    folder, images, _, counts = session
    jobs = HeldJobs()
    controller, events, queued = controller_with(jobs)
    feed(controller, [started(folder, images, planned=12)] + [response(images, counts, k) for k in range(12)])
    jobs.finish("features")
    assert len(jobs.waiting("refit")) == 1
    feed(controller, [started(folder, images, planned=12)])  # a new session while the fit runs
    jobs.finish("refit")
    assert controller.fit is None and not fitted(events), "a fit of the old session's responses is not shown"

    # Features computed for the old feature choice are computed again for the new one.
    controller.set_feature_stage(1)
    running = jobs.waiting("features")
    assert len(running) == 1, "the new session's features job, for the outputs, still runs (one at a time)"
    jobs.finish("features")
    again = jobs.waiting("features")
    assert len(again) == 1 and again[0] is not running[0], "its result is stale: computed again for stage 1"
    assert controller.pool_features is None
    jobs.finish("features")
    stage_1 = sum(DEMO.info(n).filters[1] for n in DEMO.neuron_ids)
    assert controller.pool_features.shape == (400, stage_1) != (400, 3)

    # A batch chosen from a pool that was replaced meanwhile queues nothing.
    assert controller.choose_batch("random", 4, 1)
    natural = tmp_folder_images(folder)
    assert controller.set_natural(natural)
    jobs.finish("choose")
    assert not queued and "The candidate pool changed while the batch was chosen; choose again" in \
        [e.text for e in events if isinstance(e, LoopMessage)]


def tmp_folder_images(folder):
    """A folder of natural candidates (PNGs) beside the session."""
    path = folder.parent / "natural"
    if not path.exists():
        path.mkdir()
        for k, pixels in enumerate(pink_noise_images(5, seed=21)):
            Image.fromarray(pixels).save(path / f"nat{k}.png")
    return path


def test_the_committee_chooses_at_random_until_the_first_fit_then_by_disagreement(session):
    folder, images, _, counts = session
    assert batch_strategy("committee", False) == "random" and batch_strategy("committee", True) == "committee"
    assert batch_strategy("gaudy-first", False) == "gaudy-first"
    jobs = HeldJobs()
    controller, events, queued = controller_with(jobs)
    feed(controller, [started(folder, images, planned=24)])
    jobs.finish("features")
    pool, kinds = controller.pool, pool_kinds(controller.pool)
    assert kinds.count("gaudy") == len(pool) // 2 == 200

    assert controller.choose_batch("committee", 5, 2)
    jobs.finish("choose")
    first = [e for e in events if isinstance(e, BatchChosen)][-1]
    expected = choose_next("random", kinds, 5, np.random.default_rng(0), np.zeros(len(pool), dtype=bool))
    assert first.strategy == "random" and first.requested == "committee"
    assert first.images.ids == [pool.ids[i] for i in expected] and all(k == "natural" for k in
                                                                       [kinds[i] for i in expected])
    assert [(q.ids, r) for q, r in queued] == [(first.images.ids, 2)]
    assert any("this batch is chosen at random" in e.text for e in events if isinstance(e, LoopMessage))

    feed(controller, [ImagesAdded(first.images.ids, {}, 34)] + [response(images, counts, k) for k in range(12)])
    jobs.finish("refit")
    assert controller.fit is not None
    assert controller.choose_batch("gaudy-first", 3, 1)
    jobs.finish("choose")
    gaudy = [e for e in events if isinstance(e, BatchChosen)][-1]
    assert gaudy.strategy == "gaudy-first" and all(r.kind == "gaudy" for r in gaudy.images.records)

    exclude = np.isin(pool.ids, first.images.ids + gaudy.images.ids)
    spread = committee_spread(controller.fit_data, controller.fit, controller.pool_features, 8, seed=2)
    assert controller.choose_batch("committee", 4, 1)
    jobs.finish("choose")
    committee = [e for e in events if isinstance(e, BatchChosen)][-1]
    free = np.flatnonzero(~exclude)
    top = free[np.argsort(-spread[free], kind="stable")[:4]]
    assert committee.strategy == "committee" and committee.images.ids == [pool.ids[i] for i in top]
    assert not set(committee.images.ids) & set(first.images.ids + gaudy.images.ids), "never chosen twice"


def test_every_fit_is_stored_in_the_session_folder_once_and_a_failure_to_store_is_told(tmp_path, session):
    """What ``loop report`` and a lab read later: each fit the loop makes, with the sums it used (unit u1 never
    answered img05: NaN there, left out of its fit), stored once; another feature choice on as many
    presentations beside it; an unwritable folder is a message and the fit still stands."""
    stimuli, images, _, counts = session
    folder = tmp_path / "session"
    shutil.copytree(stimuli / "stimuli", folder / "stimuli")
    jobs = HeldJobs()
    controller, events, _ = controller_with(jobs, refit_every=100)

    def present(k: int) -> ResponseStored:
        shown = response(images, counts, k)
        return ResponseStored(shown.image_id, {"u0": shown.counts["u0"]}) if k % N_IMAGES == 5 else shown
    feed(controller, [started(folder, images, planned=24)] + [present(k) for k in range(12)])
    jobs.finish("features")
    jobs.finish("refit")
    feed(controller, [present(k) for k in range(12, 24)] + [SessionStatus(24, 24, False, True, 60.0, 0, True)])
    jobs.finish("refit")
    controller.refit_now()  # the same responses and features: the same fit, not stored again
    jobs.finish("refit")
    controller.set_feature_stage(1)
    jobs.finish("features")
    jobs.finish("refit")
    made = fitted(events)
    assert [e.at for e in made] == [12, 24, 24, 24]
    names = sorted(p.name for p in (folder / "loop" / "readouts").iterdir())
    assert names == ["fit-000012.npz", "fit-000024-1.npz", "fit-000024.npz"]
    stored = load_fits(folder)
    assert [s.at for s in stored] == [12, 24, 24] and "stage 1 channels" in stored[-1].features
    for fit, event in zip(stored, [made[0], made[1], made[3]]):
        assert fit.units == list(event.units) == UNITS and fit.image_ids == event.data.image_ids
        np.testing.assert_array_equal(fit.fit.held_out_r, event.fit.held_out_r)
        np.testing.assert_array_equal(fit.fit.weights, event.fit.weights)
    last, row = stored[1], stored[1].image_ids.index("img05")
    with np.errstate(invalid="ignore"):
        recorded = np.array([[np.mean([counts[r, images.ids.index(i), u] for r in range(2)]) for u in range(2)]
                             for i in last.image_ids])
    recorded[row, 1] = np.nan  # u1 never answered img05
    np.testing.assert_array_equal(last.responses.means(), recorded)
    assert last.responses.counts[row].tolist() == [2, 0] and np.isnan(last.fit.held_out[1, row])
    assert [cells[1] for cells in readout_rows(last.fit, last.units, ["demo:0", "demo:1", "demo:2"],
                                               np.arange(3))] == ["12", "11"], "images fitted, per unit"

    broken = tmp_path / "broken"
    shutil.copytree(stimuli / "stimuli", broken / "stimuli")
    (broken / "loop").write_text("not a folder")
    controller, events, _ = controller_with(jobs)
    feed(controller, [started(broken, images, planned=12)] + [response(images, counts, k) for k in range(12)])
    jobs.finish("features")
    jobs.finish("refit")
    assert controller.fit is not None and controller.fitted_at == 12, "the fit stands"
    told = [e.text for e in events if isinstance(e, LoopMessage)]
    assert any(t.startswith("The readout fit on 12 presentations could not be stored: ") for t in told), told


def test_images_synthesized_for_a_unit_go_to_the_session_with_their_features_in_a_thread(session):
    """With ``ThreadJobs`` (the command line's runner): the design runs in a thread and ends on pump."""
    folder, images, _, counts = session
    jobs = ThreadJobs()
    controller, events, queued = controller_with(jobs.start)
    feed(controller, [started(folder, images, planned=12)] + [response(images, counts, k) for k in range(12)])
    while controller.fit is None:
        jobs.join()
        jobs.pump()
    assert not controller.synthesize("u9"), "a unit without a readout"
    assert controller.synthesize("u1", "max", n=2, steps=3, repeats=3)
    jobs.join()
    jobs.pump()
    designed = [e for e in events if isinstance(e, ImagesDesigned)][-1]
    assert designed.images.ids == ["max_readout-u1_seed0", "max_readout-u1_seed1"]
    assert [(q.ids, r) for q, r in queued] == [(designed.images.ids, 3)]
    assert controller.log.missing_features(designed.images.ids) == [], "their features are ready for the next fit"
    assert controller.work_job is None


def test_a_round_saved_but_not_in_the_plan_is_queued_again_on_resume_and_a_planned_one_is_not(tmp_path, session):
    """What a resume after SIGKILL meets: the round's images saved in the session folder, the plan without them."""
    _, images, _, _ = session
    images.save(tmp_path / "set")
    folder = tmp_path / "s"
    start_session(folder, SessionPlan(stimuli=str(tmp_path / "set")), None)
    designed = StimulusSet([StimulusRecord(image_id="max_readout-u1_seed7", kind="max", seed=7)],
                           pink_noise_images(1, seed=8))
    pool_image = StimulusSet([StimulusRecord(image_id="pool0", kind="natural")], pink_noise_images(1, seed=5))
    round_1 = pool_image.merged(designed)
    save_round(folder, 1, round_1)
    queued, said = [], []
    controller = LoopController(HeldJobs(), LiveSession(), lambda images, repeats: queued.append((images.ids, repeats)))
    rounds = Rounds(controller, LoopPlan(batches=2, repeats=3), folder, lambda: None, said.append)
    assert controller.next_seed == 8, "a designed image's seed is never used again"
    rounds.requeue_unplanned()
    assert queued == [(round_1.ids, 3)] and rounds.pending and said == [
        "round 1: its 2 image(s) were not in the plan yet; queued again"]

    append_to_session(folder, round_1, 3)  # the runner took it (here: the stopped session's own way)
    queued.clear()
    Rounds(controller, LoopPlan(batches=2, repeats=3), folder, lambda: None, said.append).requeue_unplanned()
    assert queued == [], "a round the plan holds is not queued twice"


def test_refit_now_says_what_it_did_or_why_it_cannot_and_the_schedule_stays_quiet(session):
    folder, images, features, counts = session
    jobs = HeldJobs()
    controller, events, _ = controller_with(jobs, refit_every=100)

    def told() -> list[str]:
        said = [e.text for e in events if isinstance(e, LoopMessage)]
        events.clear()
        return said

    controller.refit_now()
    assert told() == ["No session yet: the readouts are fitted to a session's responses"]
    feed(controller, [started(folder, images, planned=24)])
    jobs.finish("features")
    for k in range(9):
        feed(controller, [response(images, counts, k)])
    controller.refit_now()
    assert told() == ["Not enough responses to fit yet: every unit needs responses to 10 images"]
    assert not jobs.waiting("refit")
    feed(controller, [response(images, counts, 9)])
    jobs.finish("refit")  # the first fit, on the schedule: drawn, not announced
    assert [e.at for e in fitted(events)] == [10] and told() == []
    for k in range(10, 12):
        feed(controller, [response(images, counts, k)])
    controller.refit_now()
    controller.refit_now()
    assert told() == ["A refit is already under way; its result is shown when it is done"]
    jobs.finish("refit")
    order = controller.fit_data.image_ids
    rows = [images.ids.index(i) for i in order]
    expected = fit_ridge(features[rows], PerImageSums.from_counts(
        UNITS, order, np.ones((N_IMAGES, 2), dtype=int), counts[0, rows], counts[0, rows] ** 2))
    said = told()
    assert said == [f"Readouts refitted on 12 presentations (median held-out r "
                    f"{float(np.median(expected.held_out_r)):.2f})"], said


def test_the_images_synthesized_for_a_unit_are_known_by_their_provenance_not_their_names(tmp_path, session):
    """Two of the session's images were designed for u1 in an earlier loop and renamed; two more are designed
    for u1 now: those four, and only they, are the ones the view marks for u1 (none for u0)."""
    _, images, _, counts = session
    earlier = {"img03", "img07"}
    StimulusSet([StimulusRecord(image_id=r.image_id, kind="max", target_neuron="readout:u1",
                                method={"method": "gradient through readout", "unit": "u1"})
                 if r.image_id in earlier else r for r in images.records], images.pixels).save(tmp_path / "stimuli")
    jobs = HeldJobs()
    controller, events, _ = controller_with(jobs)
    feed(controller, [started(tmp_path, images, planned=12)] + [response(images, counts, k) for k in range(12)])
    jobs.finish("features")
    marked = controller.designed_for("u1", images.ids)
    assert [i for i, m in zip(images.ids, marked) if m] == sorted(earlier)
    assert not controller.designed_for("u0", images.ids).any()

    jobs.finish("refit")
    assert controller.synthesize("u1", "max", n=2, steps=3)
    jobs.finish("synthesize")
    now = [e for e in events if isinstance(e, ImagesDesigned)][-1].images.ids
    assert controller.designed_for("u1", now).all() and not controller.designed_for("u0", now).any()


def rounds_of_a_new_session(tmp_path, images: StimulusSet):
    """A session started on ``images`` and two rounds to drive through a controller with held jobs: (folder,
    jobs, controller, images queued, rounds, lines said, the stops asked for)."""
    images.save(tmp_path / "set")
    folder = tmp_path / "s"
    start_session(folder, SessionPlan(stimuli=str(tmp_path / "set")), None)
    jobs = HeldJobs()
    controller, _, queued = controller_with(jobs)
    said, stops = [], []
    rounds = Rounds(controller, LoopPlan(batches=2), folder, lambda: stops.append(True), said.append)
    return folder, jobs, controller, queued, rounds, said, stops


def test_a_loop_whose_answered_plan_cannot_be_fitted_stops_the_session_and_names_the_unit(tmp_path, session):
    """A unit heard from only late (a sorter's new unit) answers too few images for a readout: once every
    planned presentation is answered no fit, and so no round, can come; the loop says so and stops the session
    instead of waiting forever. Until then (presentations still to come) it waits."""
    _, images, _, counts = session
    folder, jobs, controller, queued, rounds, said, stops = rounds_of_a_new_session(tmp_path, images)

    def present(k: int) -> ResponseStored:  # u1 is heard from only from the 8th image on
        answer = dict(zip(UNITS, counts[0, k]))
        return ResponseStored(images.ids[k], answer if k >= 7 else {"u0": answer["u0"]})

    feed(controller, [started(folder, images, planned=12)] + [present(k) for k in range(12)]
         + [SessionStatus(11, 12, False, True, 60.0, 0, True)])
    jobs.finish("features")
    rounds.step()
    assert stops == [] and rounds.blocked is None, "a presentation is still to come"
    feed(controller, [SessionStatus(12, 12, False, True, 60.0, 0, True)])
    rounds.step()
    assert stops == [True] and queued == []
    assert said == ["the loop stops: no readout can be fitted with the plan settled: unit(s) u1 (5) answered fewer "
                    "than 10 images, and a readout needs responses to 10; no round can start"]
    rounds.step()
    assert stops == [True], "said and stopped once"


def test_a_plan_item_left_out_after_its_missing_responses_settles_the_plan_for_the_loop(session):
    """An image whose response always goes missing is left out by the runner (``max_missing``): the plan is then
    settled one presentation short of complete, and the loop is caught up (its rounds go on) instead of waiting."""
    folder, images, _, counts = session
    jobs = HeldJobs()
    controller, _, _ = controller_with(jobs, refit_every=100)
    feed(controller, [started(folder, images, planned=12)] + [response(images, counts, k) for k in range(11)]
         + [SessionStatus(11, 12, False, True, 60.0, 0, True)])
    jobs.finish("features")
    jobs.finish("refit")
    assert not controller.caught_up and not jobs.waiting("refit"), "one presentation still to come"
    feed(controller, [SessionStatus(11, 12, False, True, 60.0, 0, True, left_out=1)])
    assert controller.caught_up


def test_a_loop_whose_source_heard_no_unit_stops_once_its_images_are_left_out(tmp_path, session):
    """A silent recording: every response names no unit, so the runner leaves each image out after its
    missing tries (``test_a_session_whose_recording_hears_no_unit...`` against the Open Ephys stand-in); the
    plan is then settled with nothing stored, and the loop stops saying so instead of waiting for a fit."""
    _, images, _, _ = session
    folder, jobs, controller, queued, rounds, said, stops = rounds_of_a_new_session(tmp_path, images)
    feed(controller, [SessionStarted([], images.ids, {}, {}, [], 12, str(folder)),
                      SessionStatus(0, 12, False, True, 60.0, 0, True, left_out=11)])
    while jobs.waiting("features"):
        jobs.finish("features")
    rounds.step()
    assert stops == [], "an image still to be tried"
    feed(controller, [SessionStatus(0, 12, False, True, 60.0, 0, True, left_out=12)])
    rounds.step()
    assert stops == [True] and queued == [] and said == [
        "the loop stops: no readout can be fitted with the plan settled: no unit was heard (the plan's images were "
        "left out), and a readout needs responses to 10; no round can start"]
