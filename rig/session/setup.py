"""Creating and extending a session folder: the plan, the pre-flight checks, the snapshot, queued images.

Everything here happens before or between runs (``start_session``, ``append_to_session``) or on
behalf of a running one (``add_images_to_session``); the runner only shows what the folder plans.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from compactrig.engine import __version__
from compactrig.engine.bank import load_bank
from compactrig.engine.errors import CompactRigError
from compactrig.plugins.registry import make_source
from compactrig.plugins.sources.base import ResponseSource
from compactrig.rig.presenter.rig import RigConfig, load_rig
from compactrig.rig.session.folder import STIMULI_DIR, STORE_FILE, SessionLock, read_snapshot, write_snapshot
from compactrig.rig.session.store import TrialStore
from compactrig.stimuli.stimulus_set import StimulusSet, add_to_folder
from compactrig.stimuli.trial_plan import make_plan

BYTES_PER_PRESENTATION = 4096
"""Generous disk estimate per presentation (store rows, WAL) for the pre-flight check."""

@dataclass
class SessionPlan:
    """What ``compactrig session run`` was asked for; stored in ``session.json``."""

    stimuli: str
    source: str
    source_options: dict = field(default_factory=dict)
    unit_map: dict = field(default_factory=dict)
    bank: str | None = None
    repeats: int = 1
    seed: int | None = None
    max_dropped_frames: int | None = None
    max_missing: int = 3
    """A plan item whose response went missing this many times is left out (and reported)."""


def preflight(folder: Path, stimuli: Path, n_planned: int) -> StimulusSet:
    """Every reason the session could not run, raised before the first image is shown."""
    stimulus_set = StimulusSet.load(stimuli)  # missing or damaged stimulus files are named here
    if len(stimulus_set) == 0:
        raise CompactRigError(f"{stimuli}: the stimulus set is empty; add images before a session")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as error:
        raise CompactRigError(f"{folder}: cannot write the session here ({error.strerror or error}); "
                              "choose another --out") from None
    needed = n_planned * BYTES_PER_PRESENTATION + sum(p.stat().st_size for p in stimuli.iterdir() if p.is_file())
    free = shutil.disk_usage(folder).free
    if free < 2 * needed:
        raise CompactRigError(f"{folder}: only {free / 1e6:.1f} MB free, the session needs about "
                              f"{2 * needed / 1e6:.1f} MB; free some space or choose another --out")
    return stimulus_set


def start_session(folder: Path, plan: SessionPlan, rig_path: Path | None, rig: RigConfig | None = None) -> None:
    """Create the session folder (snapshot, plan) after the pre-flight checks; does not run it.

    The rig is read from ``rig_path``, or given as ``rig`` (the window's edited rig; ``rig_path``
    then only names where it came from).
    """
    folder = Path(folder)
    if (folder / "session.json").exists():
        raise CompactRigError(f"{folder}: already holds a session; continue it with `compactrig session resume "
                              f"{folder}` or choose another --out")
    rig = rig or load_rig(rig_path)
    stimuli = Path(plan.stimuli)
    stimulus_set = StimulusSet.load(stimuli)
    n_planned = len(stimulus_set) * plan.repeats
    stimulus_set = preflight(folder, stimuli, n_planned)
    check_unit_map(make_source(plan.source, plan.source_options), plan.unit_map)  # fails now, not mid-session
    if plan.max_missing < 1:
        raise CompactRigError(f"max_missing = {plan.max_missing}: give 1 or more")
    lock = SessionLock(folder).acquire()
    try:
        bank = load_bank(plan.bank)
        unknown = sorted(set(plan.unit_map.values()) - set(bank.neuron_ids))
        if unknown:
            raise CompactRigError(f"--map names neuron {unknown[0]!r}, which the bank {bank.identity()['name']!r} does "
                                  f"not have (e.g. {', '.join(bank.neuron_ids[:3])}); check --bank and --map")
        snapshot = {"software_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "rig": rig_table(rig), "rig_file": str(rig_path) if rig_path else None,
                    "bank": bank.identity(), "plan": asdict(plan), "stimulus_ids": stimulus_set.ids}
        write_snapshot(folder, snapshot, stimuli)
        store = TrialStore(folder / STORE_FILE)
        plan_images(store, stimulus_set.ids, plan.repeats, plan.seed)
        store.close()
    finally:
        lock.release()


def plan_images(store: TrialStore, image_ids: list[str], repeats: int, seed: int | None) -> None:
    """Append ``image_ids`` x ``repeats`` to the plan, one shuffled block per repeat."""
    ids, blocks = [], []
    for trial in make_plan(image_ids, repeats, len(image_ids), shuffle=True, seed=seed):
        ids += trial.image_ids
        blocks += [trial.trial_id] * len(trial.image_ids)
    store.write_plan(ids, blocks)


def add_images_to_session(folder: Path, store: TrialStore, current: StimulusSet, images: StimulusSet,
                          repeats: int, seed: int | None = None) -> StimulusSet:
    """Images into the session (folder copy, snapshot, then plan; a crash between leaves unplanned files only).

    Ids already in the session must be the same pixels (they are planned again); returns the
    images that were new to it. The caller holds the session lock.
    """
    known = dict(zip(current.ids, current.pixels))
    for image_id, pixels in zip(images.ids, images.pixels):
        if image_id in known and not np.array_equal(known[image_id], pixels):
            raise CompactRigError(f"image id {image_id!r} is already in the session with other pixels; rename it")
    new = images.filtered(lambda record: record.image_id not in known)
    if len(new):
        add_to_folder(folder / STIMULI_DIR, new)
        snapshot = read_snapshot(folder)
        snapshot["stimulus_ids"] = list(snapshot["stimulus_ids"]) + new.ids
        write_snapshot(folder, snapshot, folder / STIMULI_DIR)
    plan_images(store, images.ids, repeats, seed)
    return new


def append_to_session(folder: Path, images: StimulusSet, repeats: int = 1) -> int:
    """Queue images into a session that is not running (resume it to show them); returns plan items added."""
    folder = Path(folder)
    read_snapshot(folder)
    lock = SessionLock(folder).acquire()
    try:
        store = TrialStore(folder / STORE_FILE)
        try:
            add_images_to_session(folder, store, StimulusSet.load(folder / STIMULI_DIR), images, repeats)
        finally:
            store.close()
    finally:
        lock.release()
    return len(images) * repeats


def default_unit_map(source_name: str, options: dict) -> tuple[dict[str, str], str | None]:
    """(unit -> neuron, bank) for units that are known bank neurons (a simulated source's
    ``ground_truth``); no mapping for sources that cannot know what they record."""
    source = make_source(source_name, options)
    truth = getattr(source, "ground_truth", None)
    if truth is None:
        return {}, None
    return ({unit: neuron for unit, neuron in truth().items() if neuron != "mixture"},
            source.settings.get("bank"))


def check_unit_map(source: ResponseSource, unit_map: dict[str, str]) -> None:
    """A source that knows its units (declared, simulated, replayed) must have every mapped unit."""
    known = list(source.units)
    strangers = [unit for unit in unit_map if known and unit not in known]
    if strangers:
        raise CompactRigError(f"--map names unit {strangers[0]!r}, which source {source.name!r} does not record "
                              f"(its units: {', '.join(known[:8])}{'...' if len(known) > 8 else ''}); "
                              "fix --map or the source's units option")


def rig_table(rig: RigConfig) -> dict:
    """The rig as the TOML table ``parse_rig`` reads back (a resumed session shows what the first run showed)."""
    return {"screen": {"index": rig.screen_index, "fullscreen": rig.fullscreen, "resolution": list(rig.resolution),
                       **({"position": list(rig.window_position)} if rig.window_position else {}),
                       "refresh_hz": rig.refresh_hz, "distance_cm": rig.distance_cm, "width_cm": rig.width_cm,
                       "background": rig.background, "pace_frames": rig.pace_frames,
                       **({"gamma": rig.gamma} if rig.gamma else {})},
            "image": {"size_deg": rig.image_size_deg, "position_deg": list(rig.image_position_deg)},
            "fixation": {"size_deg": rig.fixation_size_deg, "colour": list(rig.fixation_colour)},
            "photodiode": {"corner": rig.photodiode_corner, "size_px": rig.photodiode_size_px},
            "timing": {"frames_on": rig.frames_on, "frames_off": rig.frames_off,
                       "images_per_trial": rig.images_per_trial, "inter_trial_s": rig.inter_trial_s},
            "markers": {"outputs": list(rig.marker_outputs), **rig.marker_options},
            "source": {"name": rig.source_name, "options": rig.source_options},
            "gate": {"name": rig.gate_name, "options": rig.gate_options}}
