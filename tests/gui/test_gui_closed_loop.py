"""The closed-loop panel of the Live fits view, driven with pytest-qt on a real session (presenter
under Xvfb, simulated source with mixture units that are not bank neurons)."""

from __future__ import annotations

import numpy as np
import pytest

from compactrig.engine.models.bank import load_bank, load_directory
from compactrig.engine.models.bank_writer import read_provenance
from compactrig.engine.readout.ridge import fit_ridge
from compactrig.engine.stats.response_sums import PerImageSums
from compactrig.gui.closed_loop_panel import IDLE_TEXT
from compactrig.rig.loop.fit_files import load_fits
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet
from compactrig.stimuli.textures import pink_noise_images

from support.independent_model import evaluate
from support.rig_view import RIG, set_up_rig
from support.sessions import table
from support.user_input import choose, click, click_row, open_tab, type_into

pytestmark = [pytest.mark.slow, pytest.mark.needs_display]


@pytest.fixture()
def loop_window(qtbot, window, tmp_path, monkeypatch):
    main = window
    StimulusSet([StimulusRecord(image_id=f"tex{i:02d}", kind="natural") for i in range(12)],
                pink_noise_images(12, seed=9)).save(tmp_path / "set")
    set_up_rig(qtbot, main, monkeypatch, RIG, tmp_path, tmp_path / "set", tmp_path / "session")
    fields = main.rig.source.form.fields
    for name, value in (("unknown", "2"), ("mixture_size", "2"), ("seed", "4")):
        type_into(qtbot, fields[name], value)
    type_into(qtbot, main.rig.repeats, "2")
    click(qtbot, main.rig.hold_open)
    open_tab(qtbot, main.tabs, main.live)
    type_into(qtbot, main.live.loop.refit_every, "10")
    type_into(qtbot, main.live.loop.repeats, "1")
    yield main
    if main.rig.running():
        main.rig.stop_and_wait()


def test_readouts_fit_live_then_a_queued_batch_and_images_for_a_unit_are_shown(qtbot, loop_window, tmp_path):
    main = loop_window
    rig, live, loop = main.rig, main.live, main.live.loop
    folder = tmp_path / "session"
    open_tab(qtbot, main.tabs, rig)
    click(qtbot, rig.start_button)
    open_tab(qtbot, main.tabs, live)
    # The first fit comes by itself once 10 images have responses (no "Refit now" needed).
    qtbot.waitUntil(lambda: loop.controller.fit is not None and loop.controller.pool_features is not None,
                    timeout=120000)
    qtbot.waitUntil(lambda: rig.progress.value() == 24, timeout=60000)  # the plan is done; the session stays open
    assert rig.running()
    qtbot.waitUntil(lambda: loop.controller.feature_job is None, timeout=60000)
    assert not loop.cancel_button.isEnabled() and loop.progress.format() == IDLE_TEXT, "idle: nothing to cancel"
    readouts = folder / "loop" / "readouts"
    # a fit scheduled at the plan's end may still be on its way to the folder (written beside, then renamed)
    qtbot.waitUntil(lambda: loop.controller.refit_job is None and readouts.is_dir()
                    and not any(p.name.startswith(".") for p in readouts.iterdir()), timeout=30000)
    stored_before = sorted(readouts.iterdir())
    assert stored_before and all(p.name.startswith("fit-") for p in stored_before), "the scheduled fits are stored"
    click(qtbot, loop.refit_button)
    qtbot.waitUntil(lambda: loop.controller.fitted_at == 24 and loop.controller.refit_job is None, timeout=30000)
    last = load_fits(folder)[-1]  # the window's fits are stored in the session folder, as `loop run`'s
    assert last.at == 24 and (readouts / "fit-000024.npz").is_file()
    np.testing.assert_array_equal(last.fit.held_out_r, loop.controller.fit.held_out_r)
    assert last.units == loop.controller.units and last.image_ids == loop.controller.fit_data.image_ids

    # The live readouts are ridge fits of the bank's responses, as computed independently here.
    assert loop.controller.units == ["unit0", "unit1", "unit2", "unit3", "unit4"]
    assert loop.table.rowCount() == 5
    bank = load_bank("demo")
    pixels = StimulusSet.load(tmp_path / "set").pixels
    features = np.stack([evaluate(bank.state_dict(n), pixels) for n in bank.neuron_ids], axis=1)
    rows = table(folder, "SELECT p.image_id, r.unit, r.count FROM responses r JOIN presentations p ON p.ord = r.ord "
                          "WHERE p.aborted = 0 ORDER BY p.ord, r.unit")
    order = loop.controller.fit_data.image_ids  # the folds follow the loop's image order; the numbers are computed here
    assert sorted(order) == sorted({image for image, _, _ in rows})
    counts = np.zeros((12, 5, 2))
    seen = np.zeros((12, 5), dtype=int)
    for image, unit, count in rows:
        i, u = order.index(image), int(unit[4:])
        counts[i, u, seen[i, u]] = count
        seen[i, u] += 1
    trials = PerImageSums.from_counts(loop.controller.units, order, seen, counts.sum(axis=2), (counts**2).sum(axis=2))
    expected = fit_ridge(features[[int(i[3:]) for i in order]], trials)
    np.testing.assert_allclose(loop.controller.fit.held_out_r, expected.held_out_r, atol=1e-3)
    np.testing.assert_allclose(loop.controller.fit.weights, expected.weights, rtol=1e-3, atol=1e-3)
    assert loop.table.item(3, 3).text() == f"{expected.held_out_r[3]:.3f}"

    # Queue next batch: four gaudy images, shown at once because the session is held open.
    loop.strategy.setFocus()
    qtbot.keyClicks(loop.strategy, "gaudy")
    assert loop.strategy.currentText() == "gaudy-first"
    type_into(qtbot, loop.batch, "4")
    click(qtbot, loop.queue_button)
    qtbot.waitUntil(lambda: rig.progress.value() == 28, timeout=60000)
    queued = [i for (i,) in table(folder, "SELECT image_id FROM plan WHERE item >= 24 ORDER BY item")]
    assert len(queued) == 4 and all(i.startswith("gaudy_texture") for i in queued)
    assert set(queued) <= set(live.fit.image_ids), "the mapped units' fits take the new images"

    # Synthesize for a mixture unit, chosen by clicking its row: the images go to the stimulus set and
    # into the session. While it runs, Cancel is the button to press and the bar says what runs.
    click_row(qtbot, loop.table, 3)
    assert loop.controller.units[loop.focus] == "unit3"
    assert loop.fit_plot.getPlotItem().titleLabel.text.startswith("unit3")
    type_into(qtbot, loop.n_images, "2")
    type_into(qtbot, loop.steps, "15")
    click(qtbot, loop.synth_button)
    assert loop.cancel_button.isEnabled() and not loop.synth_button.isEnabled()
    assert loop.progress.format().startswith("Synthesizing for unit3")
    qtbot.waitUntil(lambda: any(i.startswith("max_readout-unit3") for i in main.stimuli.stimulus_set.ids),
                    timeout=120000)
    qtbot.waitUntil(lambda: rig.progress.value() == 30, timeout=60000)
    designed = [r for r in main.stimuli.stimulus_set.records if r.image_id.startswith("max_readout-unit3")]
    assert len(designed) == 2 and designed[0].method["unit"] == "unit3"
    shown = {i for (i,) in table(folder, "SELECT p.image_id FROM presentations p JOIN responses r ON r.ord = p.ord")}
    assert {r.image_id for r in designed} <= shown

    # Cancel a long synthesis mid-run: it stops with the best images so far, and the panel is idle again.
    qtbot.waitUntil(lambda: loop.controller.work_job is None, timeout=60000)
    type_into(qtbot, loop.steps, "2000")
    click(qtbot, loop.queue_designed)  # these stay in the stimulus set only
    click(qtbot, loop.synth_button)
    qtbot.wait(1500)
    assert loop.progress.format().startswith("Synthesizing for unit3"), "the bar keeps naming the running job"
    click(qtbot, loop.cancel_button)
    qtbot.waitUntil(lambda: loop.controller.work_job is None, timeout=60000)
    assert loop.synth_button.isEnabled(), (loop.controller.fit is None, loop.controller.feature_job)
    assert not loop.cancel_button.isEnabled(), loop.controller.feature_job

    open_tab(qtbot, main.tabs, rig)
    with qtbot.waitSignal(rig.session_finished, timeout=60000) as finished:
        click(qtbot, rig.abort_button)
    assert finished.args == [True], "stopped with every planned presentation answered: complete"


def test_make_compact_models_writes_a_bank_of_the_units_that_models_offers_and_it_predicts_held_out_images(
        qtbot, window, tmp_path, monkeypatch):
    """A finished session of 60 images (a demo neuron and a mixture unit): the button makes a compact model
    per unit in a job that its own button stops; the bank appears in Models' bank choice, chosen there by
    keyboard; its held-out r, recomputed here from the store and an independent evaluation of the written
    model, matches its provenance."""
    main = window
    StimulusSet([StimulusRecord(image_id=f"tex{i:02d}", kind="natural") for i in range(60)],
                pink_noise_images(60, seed=3, contrast=60.0)).save(tmp_path / "set")
    set_up_rig(qtbot, main, monkeypatch, RIG, tmp_path, tmp_path / "set", tmp_path / "day1")
    fields = main.rig.source.form.fields
    for name, value in (("neurons", "demo:2"), ("unknown", "1"), ("mixture_size", "2"), ("seed", "4")):
        type_into(qtbot, fields[name], value)
    type_into(qtbot, main.rig.repeats, "1")
    loop = main.live.loop
    with qtbot.waitSignal(main.rig.session_finished, timeout=120000):
        click(qtbot, main.rig.start_button)
    open_tab(qtbot, main.tabs, main.live)
    qtbot.waitUntil(lambda: loop.controller.log is not None and loop.controller.log.n_presentations == 60,
                    timeout=30000)

    click(qtbot, loop.compact_button)
    assert loop.compact_button.text() == "Stop making compact models" and loop.controller.compact_job is not None
    with qtbot.waitSignal(main.statusBar().messageChanged, timeout=60000,
                          check_params_cb=lambda text: text.startswith("Making compact models stopped")):
        click(qtbot, loop.compact_button)
    qtbot.waitUntil(lambda: loop.controller.compact_job is None, timeout=10000)
    assert loop.compact_button.text() == "Make compact models"

    type_into(qtbot, loop.compact_epochs, "3")
    click(qtbot, loop.compact_button)
    qtbot.waitUntil(lambda: loop.controller.compact_job is None, timeout=240000)
    folder = tmp_path / "day1" / "compact_models"
    assert main.statusBar().currentMessage().startswith(f"2 compact models written to {folder}")

    open_tab(qtbot, main.tabs, main.models)
    choose(qtbot, main.models.bank_choice, "day1")
    qtbot.waitUntil(lambda: main.models.table.rowCount() == 2, timeout=10000)
    assert [main.models.table.item(r, 0).text() for r in range(2)] == ["day1:0", "day1:1"]
    provenance = read_provenance(folder)
    assert provenance["day1:1"]["recorded_unit"] == "unit1"
    assert provenance["day1:1"]["compact"]["parameters"] <= 20_000
    assert provenance["day1:1"]["compact"]["held_out_r2_er"] is None, "one repeat per image: no noise-corrected R^2"
    held_out = provenance["day1:1"]["images"]["held_out"]
    rows = table(tmp_path / "day1", "SELECT p.image_id, r.count FROM responses r JOIN presentations p "
                                     "ON p.ord = r.ord WHERE r.unit = 'unit1' AND p.aborted = 0")
    recorded = dict(rows)
    pixels = StimulusSet.load(tmp_path / "set", only=held_out)
    predicted = evaluate(load_directory(folder).state_dict("day1:1"), pixels.pixels)
    r = np.corrcoef(predicted, [recorded[i] for i in pixels.ids])[0, 1]
    assert r == pytest.approx(provenance["day1:1"]["compact"]["held_out_r"], abs=0.01)
