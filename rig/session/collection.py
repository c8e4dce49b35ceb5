"""Responses from the source into the trial store and to the watchers.

Every presentation on screen is handed to the source (``expect``); what the source delivers is stored the
moment it arrives, counts and spike times together, once ``counts.check_response`` (and ``check_spikes``)
accepts it. A response that goes missing, or whose counts
are refused (NaN, negative, infinite, absurdly large, not numbers), aborts its presentation, so its plan item
is shown again; each kind of refusal is told to the user once. Every known unit gets a count (0 when it did
not fire); a unit first heard from mid-session joins the session with 0 for every response already stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pylsl

from compactrig.engine.files.natural_order import natural_sorted
from compactrig.plugins.sources.base import Presentation
from compactrig.plugins.sources.guard import GuardedSource
from compactrig.rig.session.controls import CLOSING_WAIT_S, RunControls
from compactrig.rig.session.counts import CountProblem, check_response, check_spikes
from compactrig.rig.session.events import Report, ResponseStored, UnitsDiscovered
from compactrig.rig.session.fits import mapped_predictions
from compactrig.rig.session.setup import SessionPlan
from compactrig.rig.session.trial_store import MISSING, TrialStore
from compactrig.rig.session.windows import recounted
from compactrig.stimuli.stimulus_set import StimulusSet


class ResponseCollector:
    """The presentations awaiting responses, and what happens when each response comes or does not."""

    def __init__(self, store: TrialStore, guard: GuardedSource, plan: SessionPlan, stimulus_set: StimulusSet,
                 units: list[str], report: Report, on_event: Callable[[object], None],
                 mark_aborted: Callable[[int, str, str], None]) -> None:
        self.store, self.guard, self.plan, self.stimulus_set = store, guard, plan, stimulus_set
        self.units = units
        """Every unit of the session (as in the store), kept here so a response needs no store query."""
        self.report, self.on_event, self.mark_aborted = report, on_event, mark_aborted
        self.waiting: dict[int, tuple[int, str]] = {}
        """Presentation -> (plan item, image id): shown, response due."""
        self._aborted: set[int] = set()
        self._told: set[str] = set()
        """Kinds of refused counts the user has been told about (once each)."""
        self.adopted = store.count_windows()
        """The counting windows adopted from the spikes (``windows``): the watchers are told those counts."""

    def add_images(self, new: StimulusSet) -> dict[str, np.ndarray]:
        """Images new to the session: the source prepares them; the mapped units' predictions of them are
        returned (for the watchers' fits)."""
        self.stimulus_set = self.stimulus_set.merged(new)
        for lost in self.guard.prepare(new.ids, new.pixels, pylsl.local_clock()):
            self.report(f"source: {lost.missing}", trouble=True)
        return mapped_predictions(self.plan.bank, self._mapped(self.units), new)

    def _mapped(self, units: list[str]) -> dict[str, str]:
        return {u: self.plan.unit_map[u] for u in units if u in self.plan.unit_map}

    def expect(self, order: int, item: int, image_id: str, trial_id: int, onset: float) -> None:
        """Presentation ``order`` is up: its response is due after the source's window."""
        self.waiting[order] = (item, image_id)
        for lost in self.guard.submit(Presentation(order, trial_id, image_id, onset), pylsl.local_clock()):
            self.abort(lost.order, f"source: {lost.missing}")

    def abort(self, order: int, reason: str, kind: str = MISSING) -> None:
        """Presentation ``order`` does not count: stored as aborted with why, marked in the marker
        stream, the source told to forget it; its plan item is shown again."""
        if order in self._aborted:
            return
        self._aborted.add(order)
        self.store.mark_aborted(order, reason, kind)
        self.mark_aborted(order, reason, kind)
        self.guard.cancel(order)
        self.waiting.pop(order, None)

    def collect(self) -> None:
        """Store what the source delivered; a missing response aborts its presentation."""
        for response in self.guard.collect(pylsl.local_clock()):
            entry = self.waiting.get(response.order)
            if entry is None:
                continue
            if response.counts is None:
                self.abort(response.order, f"source: {response.missing}")
                continue
            checked, problem = check_response(response.counts, response.window)
            if problem is not None:
                self._refuse(response.order, entry[1], problem)
                continue
            assert checked is not None  # no problem: the counts are checked
            window = (float(response.window[0]), float(response.window[1]))
            spikes, span = None, None
            if response.spikes is not None:
                spikes, problem = check_spikes(response.spikes, response.span, window, checked)
                if problem is not None:
                    self._refuse(response.order, entry[1], problem)
                    continue
                assert response.span is not None  # check_spikes accepted it
                span = (float(response.span[0]), float(response.span[1]))
            if not checked and not self.units:  # nothing to store: the presentation would stay unanswered forever
                self._no_unit_yet(response.order)
                continue
            del self.waiting[response.order]
            heard = [unit for unit in checked if unit not in self.units]  # rare: no store query otherwise
            if heard:
                self._units_discovered(heard)
            counts = {unit: 0.0 for unit in self.units} | checked
            self.store.record_response(response.order, counts, window, spikes, span)
            self.on_event(ResponseStored(entry[1], recounted(counts, spikes, self.adopted), response.order, spikes,
                                         span, window))
        for line in self.guard.messages():
            self.report(line, trouble=True)

    def _no_unit_yet(self, order: int) -> None:
        """A response naming no unit while none is known (a silent recording): the presentation is missing, so
        after ``max_missing`` tries its item is left out and the session ends, saying so, instead of showing the
        plan again forever; the user is told once."""
        reason = "no unit heard yet (no spikes from any unit)"
        self.abort(order, f"source: {reason}")
        if "no unit" not in self._told:
            self._told.add("no unit")
            self.report(f"source {self.guard.source.name!r}: {reason}; check that the recording's channels and "
                        "spike detection are on (such responses are missing and their images shown again)",
                        trouble=True)

    def _refuse(self, order: int, image_id: str, problem: CountProblem) -> None:
        """Counts the store must not hold: the presentation is missing (shown again), the user told once per kind."""
        self.abort(order, f"source sent unusable counts: {problem.reason}")
        if problem.kind not in self._told:
            self._told.add(problem.kind)
            self.report(f"source {self.guard.source.name!r} sent unusable counts ({problem.kind}; first for image "
                        f"{image_id}: {problem.reason}); such responses are missing and their images shown again "
                        "(told once per kind)", trouble=True)

    def finish_waiting(self, controls: RunControls) -> None:
        """After a stop, keep the responses still due for images already shown (up to the source's
        timeout; at most ``CLOSING_WAIT_S`` when the window is closing)."""
        source = self.guard.source
        deadline = time.monotonic() + source.due_s + source.settings["timeout_s"]
        while self.waiting and time.monotonic() < deadline:
            if controls.closing:
                deadline = min(deadline, time.monotonic() + CLOSING_WAIT_S)
            self.collect()
            time.sleep(0.01)

    def give_up(self, reason: str) -> None:
        """Every presentation still waiting is aborted (its response will not come)."""
        for order in list(self.waiting):
            self.abort(order, reason)

    def _units_discovered(self, units: list[str]) -> None:
        new = self.store.add_units(units)
        self.units[:] = natural_sorted(self.units + new)
        self.report(f"new unit(s) heard from: {', '.join(units)} (0 counted for the responses already stored)")
        self.on_event(UnitsDiscovered(list(units), mapped_predictions(self.plan.bank, self._mapped(units),
                                                                      self.stimulus_set)))
