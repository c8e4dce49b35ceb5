"""The closed loop learns new neurons: rounds chosen by each strategy (``Rounds`` and ``LoopController``, as
``compactrig loop run`` drives them) teach the readouts virtual units that are not bank neurons, and images
designed through a unit's readout beat the best natural image for it.

The session runner's part is played here with its own event types: every planned presentation is answered at
once by the simulated source plugin (Poisson counts around mixtures of demo-bank neurons). The numbers checked
come from the source's truth, never from the loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from compactrig.engine.models.bank import load_bank
from compactrig.engine.models.fast_predict import Predictor
from compactrig.engine.readout.features import compute_features
from compactrig.plugins.sources.base import Presentation
from compactrig.plugins.sources.simulated import SimulatedSource
from compactrig.rig.loop.controller import LoopController
from compactrig.rig.loop.events import BatchChosen, ReadoutsFitted
from compactrig.rig.loop.jobs import LoopJob
from compactrig.rig.loop.loop_plan import LoopPlan
from compactrig.rig.loop.rounds import Rounds
from compactrig.rig.presenter.rig import RigConfig
from compactrig.rig.session.events import ImagesAdded, ResponseStored, SessionStarted, SessionStatus
from compactrig.rig.session.live import LiveSession
from compactrig.rig.session.setup import SessionPlan, start_session
from compactrig.stimuli.closed_loop import design_for_unit, synthesis_readout
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet
from compactrig.stimuli.synthesis import SynthesisSettings
from compactrig.stimuli.textures import pink_noise_images

pytestmark = pytest.mark.slow

DEMO = load_bank("demo")
OPTIONS = dict(neurons="none", unknown=2, mixture_size=2, seed=11)
FIRST, BATCH, ROUNDS, REPEATS = 20, 10, 8, 2
"""20 natural images first, then 8 rounds of 10 chosen images, each shown twice: 200 presentations."""
LEARNT = {"random": 0.95, "gaudy-first": 0.7, "committee": 0.9}
"""The least r with the truth on unseen natural images after 200 presentations, per strategy."""


def calibrated(natural: np.ndarray) -> SimulatedSource:
    source = SimulatedSource(**OPTIONS)
    source.calibrate_mixtures(natural, 8.0, 3.0)  # mean 8, SD 3 over the very images the loop may show
    return source


def run_loop(strategy: str, folder: Path, pool_folder: Path, first: StimulusSet, source: SimulatedSource):
    """One session with its loop; the controller, the plan (an image per presentation) and every fit by
    presentations."""
    jobs: list[LoopJob] = []
    queued: list[tuple[StimulusSet, int]] = []
    live = LiveSession()
    controller = LoopController(jobs.append, live, lambda images, repeats: queued.append((images, repeats)),
                                refit_every=10_000)  # fitted when each round is answered
    fits: dict[int, ReadoutsFitted] = {}
    controller.subscribe(lambda event: fits.setdefault(event.at, event) if isinstance(event, ReadoutsFitted) else None)
    chosen: list[BatchChosen] = []
    controller.subscribe(lambda event: chosen.append(event) if isinstance(event, BatchChosen) else None)
    controller.set_bank(DEMO)
    assert controller.set_natural(pool_folder)
    first.save(folder.with_name(folder.name + "-set"))  # a real session folder: rounds read its checked plan
    start_session(folder, SessionPlan(stimuli=str(folder.with_name(folder.name + "-set")), repeats=REPEATS), None,
                  RigConfig().with_source("simulated", OPTIONS))
    rounds = Rounds(controller, LoopPlan(strategy=strategy, batch=BATCH, batches=ROUNDS, refit_every=10_000,
                                         repeats=REPEATS), folder, lambda: None, lambda line: None)
    source.prepare(first.ids, first.pixels)
    plan = [image for image in first.ids for _ in range(REPEATS)]
    events: list[object] = [SessionStarted(list(source.units), first.ids, {}, {}, [], len(plan), str(folder))]
    shown = 0
    for _ in range(1000):
        for images, repeats in queued:  # the runner takes queued images into its plan
            source.prepare(images.ids, images.pixels)
            plan += [image for image in images.ids for _ in range(repeats)]
            events.append(ImagesAdded(images.ids, {}, len(plan)))
        queued.clear()
        for image in plan[shown:]:
            source.submit(Presentation(shown, 0, image, float(shown)))
            shown += 1
        events += [ResponseStored(r.image_id, r.counts) for r in source.collect(now=shown + 10.0)]
        events.append(SessionStatus(shown, len(plan), False, True, 60.0, 0, True))
        live.take_events(events)  # as the session controller hands them on: the live session, then the loop
        controller.take_events(events)
        rounds.take_runner_events(events)
        events = []
        while jobs:
            job = jobs.pop(0)
            job.finish(job.run(lambda done, total, phase="": None))
        rounds.step()
        if rounds.finished:
            return controller, plan, fits, chosen
    raise AssertionError(f"{strategy}: the loop did not finish")


def test_rounds_of_each_strategy_teach_the_readouts_and_designed_images_beat_the_best_natural(tmp_path):
    textures = pink_noise_images(160, seed=5)
    natural, test_images = textures[:120], textures[120:]
    ids = [f"nat{k:03d}" for k in range(120)]
    (tmp_path / "pool").mkdir()
    for image_id, pixels in zip(ids, natural):
        Image.fromarray(pixels).save(tmp_path / "pool" / f"{image_id}.png")
    first = StimulusSet([StimulusRecord(image_id=i, kind="natural") for i in ids[:FIRST]], natural[:FIRST])
    predictor = Predictor(DEMO)
    runs = {}
    for strategy in ("random", "gaudy-first", "committee"):
        source = calibrated(natural)
        truth = source.true_rates(test_images)
        controller, plan, fits, chosen = run_loop(strategy, tmp_path / strategy, tmp_path / "pool", first, source)
        assert sorted(fits) == list(range(FIRST * REPEATS, 201, BATCH * REPEATS)), "a fit as each round is answered"
        queued = plan[FIRST * REPEATS::REPEATS]
        assert len(set(queued)) == len(queued) == BATCH * ROUNDS and not set(queued) & set(ids[:FIRST]), \
            "no image is chosen twice, nor one the session showed"
        kinds = {r.image_id: r.kind for batch in chosen for r in batch.images.records}
        if strategy == "gaudy-first":
            assert all(kinds[i] == "gaudy" for i in queued)
        if strategy == "random":
            assert all(kinds[i] == "natural" for i in queued)
        if strategy == "committee":
            assert [b.strategy for b in chosen] == ["committee"] * ROUNDS, "fitted before the first round"
        test_features = compute_features(predictor, test_images, controller.spec)
        final = np.array([np.corrcoef(fits[200].fit.predict(test_features)[u], truth[u])[0, 1] for u in range(2)])
        # Gaudy images can push a mixture below zero (a silent unit, nothing to fit): judge the units that responded.
        # They teach the responses to natural images least, the committee's mixture nearly as well as natural ones.
        responsive = controller.log.sums.sums.std(axis=0) > 0
        assert responsive.any() and (final[responsive] > LEARNT[strategy]).all(), (strategy, final)
        runs[strategy] = controller

    controller = runs["committee"]
    data, fit, unit = controller.fit_data, controller.fit, 0
    readout = synthesis_readout(predictor, controller.spec, data, fit, controller.units, unit, max_neurons=3)
    design = design_for_unit(readout, unit, [0, 1], SynthesisSettings(steps=40))
    source = calibrated(natural)
    true = source.true_rates(design.images)[unit]
    best_natural = source.true_rates(natural)[unit].max()
    assert true.min() > best_natural, (true, best_natural)
    assert np.allclose(design.responses, readout.model.predict(design.images)[unit])
    record = design.records[0]
    assert record.kind == "max" and record.target_neuron == "readout:unit0"
    assert record.method["bank_neurons"] == list(DEMO.neuron_ids) and record.image_id == "max_readout-unit0_seed0"
    assert record.method["images_fitted"] == len(data.image_ids) == FIRST + BATCH * ROUNDS

    # A population image: unit 0 up while unit 1 stays nearer its baseline than under the plain max image.
    population = design_for_unit(readout, unit, [0, 1], SynthesisSettings(steps=40), data, population_weight=4.0)
    means = data.responses.sums / data.responses.counts  # every image answered by both units here
    z_population = (source.true_rates(population.images) - means.mean(axis=0)[:, None]) / means.std(axis=0)[:, None]
    z_max = (source.true_rates(design.images) - means.mean(axis=0)[:, None]) / means.std(axis=0)[:, None]
    assert (z_population[0] > 1).all(), z_population
    assert np.abs(z_population[1]).mean() < np.abs(z_max[1]).mean(), (z_population, z_max)
    assert population.records[0].image_id == "popmax_readout-unit0_seed0"
