"""A session as a watcher (the Live fits view, a report) starts from it: running or read back from its folder."""

from __future__ import annotations

from pathlib import Path

from compactrig.engine.files.natural_order import natural_sorted
from compactrig.rig.session.events import SessionStarted
from compactrig.rig.session.fits import mapped_predictions, stored_responses
from compactrig.rig.session.folder import SESSION_FILE, read_snapshot
from compactrig.rig.session.integrity import checked_stimuli, open_session_store
from compactrig.rig.session.rasters import from_store
from compactrig.rig.session.setup import SessionPlan
from compactrig.rig.session.trial_store import TrialStore
from compactrig.rig.session.windows import counts_of, source_window
from compactrig.stimuli.stimulus_set import StimulusSet


def session_started(folder: Path, plan: SessionPlan, store: TrialStore, stimulus_set: StimulusSet,
                    units: list[str], recount: bool = False) -> SessionStarted:
    """The event a watcher starts from (units, images, mapped predictions, what is stored, counted in the
    windows adopted, with its spike times); ``recount``: the same session again, after a window was adopted
    (its spike times did not change: not read again)."""
    mapping = {u: n for u, n in plan.unit_map.items() if u in units}
    return SessionStarted(list(units), stimulus_set.ids, mapped_predictions(plan.bank, mapping, stimulus_set),
                          mapping, stored_responses(store.presentations(), counts_of(store)), len(store.plan()),
                          str(folder), store.count_windows(), recount,
                          None if recount else from_store(store, list(units)), source_window(store))


def stored_session(folder: Path) -> SessionStarted:
    """What a watcher needs to show a session that is not running, as the event a running one starts with."""
    folder = Path(folder)
    snapshot = read_snapshot(folder)
    stimuli = checked_stimuli(folder, snapshot)
    store = open_session_store(folder, snapshot)
    try:
        units = natural_sorted(store.units() or {unit for _, unit, _ in store.responses()})
        return session_started(folder, SessionPlan.from_snapshot(snapshot, str(folder / SESSION_FILE)), store,
                               stimuli, units)
    finally:
        store.close()


def check_session(folder: Path) -> None:
    """Refuse, in one line naming the fix, a session whose stimuli or trial store are not the ones its
    ``session.json`` recorded (for exports that read the folder themselves)."""
    folder = Path(folder)
    snapshot = read_snapshot(folder)
    checked_stimuli(folder, snapshot)
    open_session_store(folder, snapshot).close()
