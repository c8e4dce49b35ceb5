"""The one progress protocol as a bar shows it: forward only within a phase, each step of larger work named."""

from __future__ import annotations

from compactrig.engine.progress import ForwardOnly, named


def test_a_bar_never_goes_back_within_a_phase_and_a_new_phase_starts_from_its_own_beginning():
    shown: list[tuple[int, int | None, str]] = []
    bar = ForwardOnly(lambda done, total, phase="": shown.append((done, total, phase)))
    for done in (1, 3, 2, 3, 4):  # 2 arrives late from a worker thread
        bar(done, 10, "readout features")
    bar(1, 10, "distillation")  # a new phase: from its start
    bar(0, 10, "distillation")
    bar(5, None)  # an unnamed step of unknown length
    assert shown == [(1, 10, "readout features"), (3, 10, "readout features"), (3, 10, "readout features"),
                     (4, 10, "readout features"), (1, 10, "distillation"), (5, None, "")]


def test_a_named_step_reports_under_its_own_name_whatever_its_callee_calls_it():
    shown: list[tuple[int, int | None, str]] = []
    step = named(lambda done, total, phase="": shown.append((done, total, phase)), "the candidate pool")
    step(2, 7)
    step(3, 7, "neurons")
    assert shown == [(2, 7, "the candidate pool"), (3, 7, "the candidate pool")]
