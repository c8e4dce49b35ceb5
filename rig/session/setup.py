"""Creating and extending a session folder: the plan, the pre-flight checks, the snapshot, queued images.

Everything here happens before or between runs (``start_session``, ``append_to_session``) or on
behalf of a running one (``add_images_to_session``); the runner only shows what the folder plans.
"""

from __future__ import annotations

import glob
import json
import shutil
import time
import uuid
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from compactrig.engine import __version__
from compactrig.engine.errors import CompactRigError
from compactrig.engine.files.inside_folder import path_inside
from compactrig.engine.files.safe_output import write_atomically
from compactrig.engine.models.bank import load_bank
from compactrig.plugins.registry import check_rig_plugins, make_source
from compactrig.plugins.sources.base import ResponseSource
from compactrig.rig.presenter.rig import RigConfig, load_rig, parse_rig
from compactrig.rig.session.folder import (
    HOLDER_FILE,
    LOCK_FILE,
    SESSION_FILE,
    STARTING_FILE,
    STIMULI_DIR,
    STORE_FILE,
    SessionLock,
    read_snapshot,
    write_snapshot,
)
from compactrig.rig.session.integrity import checked_stimuli, open_session_store, same_images, stimulus_hashes
from compactrig.rig.session.trial_store import SESSION_ID, TrialStore
from compactrig.stimuli.stimulus_set import StimulusSet, add_to_folder
from compactrig.stimuli.trial_plan import make_plan

BYTES_PER_PRESENTATION = 4096
"""Generous disk estimate per presentation (store rows, WAL) for the pre-flight check."""

OLD_PLAN_SOURCE: dict[str, tuple[type, ...]] = {"source": (str,), "source_options": (dict,)}
"""What a plan recorded of the source before the rig was its one home: read from old folders, never written."""


@dataclass
class SessionPlan:
    """What ``compactrig session run`` was asked for beyond the rig; stored in ``session.json``.

    The source is not here: it is the rig's (``session.json``'s rig is the rig the session runs with,
    the command line's ``--source``/``--source-opt`` applied; see ``session_rig``).
    """

    stimuli: str
    unit_map: dict = field(default_factory=dict)
    bank: str | None = None
    repeats: int = 1
    seed: int | None = None
    max_dropped_frames: int | None = None
    max_missing: int = 3
    """A plan item whose response went missing this many times is left out (and reported)."""

    @classmethod
    def from_snapshot(cls, snapshot: dict[str, Any], where: str) -> SessionPlan:
        """The plan ``session.json`` (``where``) recorded, each field of its kind; an edited one is refused in one
        line naming the field. A plan written when it also recorded the source is read (``session_rig`` takes
        the source from it)."""
        plan = snapshot.get("plan")
        if not isinstance(plan, dict):
            raise CompactRigError(f"{where}: 'plan' is {plan!r}, not a table; restore session.json from a backup")
        unknown = sorted(set(plan) - set(cls.__dataclass_fields__) - set(OLD_PLAN_SOURCE))
        kinds = {"stimuli": (str,), "unit_map": (dict,), "bank": (str, type(None)), "repeats": (int,),
                 "seed": (int, type(None)), "max_dropped_frames": (int, type(None)), "max_missing": (int,),
                 **OLD_PLAN_SOURCE}
        wrong = [name for name, allowed in kinds.items() if name in plan and (
            not isinstance(plan[name], allowed) or isinstance(plan[name], bool))]
        missing = [name for name in ("stimuli",) if name not in plan]
        if unknown or wrong or missing:
            name = (unknown or wrong or missing)[0]
            problem = "is not a plan field" if unknown else "is missing" if missing else f"is {plan[name]!r}"
            raise CompactRigError(f"{where}: the plan's {name!r} {problem}; restore session.json from a backup")
        least = {"repeats": 1, "max_missing": 1, "max_dropped_frames": 0, "seed": 0}
        low = next((name for name, floor in least.items() if isinstance(plan.get(name), int) and plan[name] < floor),
                   None)
        if low is not None:
            raise CompactRigError(f"{where}: the plan's {low!r} is {plan[low]}, below {least[low]}; restore "
                                  "session.json from a backup")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in plan.get("unit_map", {}).items()):
            raise CompactRigError(f"{where}: the plan's unit map must map unit names to neuron ids; restore "
                                  "session.json from a backup")
        return cls(**{name: value for name, value in plan.items() if name not in OLD_PLAN_SOURCE})


def session_rig(snapshot: dict[str, Any], where: str) -> RigConfig:
    """The rig the session runs with, its source included: ``session.json``'s rig, checked as a rig file is.

    A folder written when the plan recorded the source too holds the rig file's ``[source]`` in its rig
    and the source actually used (the command line's over the rig file's) in its plan: the plan's is taken.
    """
    rig = parse_rig(snapshot["rig"], where)
    plan = snapshot["plan"]
    if "source" in plan:
        SessionPlan.from_snapshot(snapshot, where)  # the old fields are of their kind
        rig = replace(rig, source_name=plan["source"], source_options=plan.get("source_options", {}))
    return rig


def _load_stimuli(stimuli: Path) -> StimulusSet:
    stimulus_set = StimulusSet.load(stimuli)  # missing or damaged stimulus files are named here
    if len(stimulus_set) == 0:
        raise CompactRigError(f"{stimuli}: the stimulus set is empty; add images before a session")
    return stimulus_set


def _make_folder(folder: Path) -> Path | None:
    """``folder`` made (with its parents); returns the topmost folder made here (None: it existed)."""
    made = next((p for p in reversed([folder, *folder.parents]) if not p.exists()), None)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as error:
        raise CompactRigError(f"{folder}: cannot write the session here ({error.strerror or error}); "
                              "choose another --out") from None
    return made


def _check_free_folder(folder: Path, stimulus_set: StimulusSet, stimuli: Path, n_planned: int) -> bool:
    """Refuse a folder holding a session, a trial store or other stimuli, or too little free disk (what a
    start that was killed before its ``session.json`` wrote is removed first); True when its ``stimuli/``
    already holds exactly this set (reused)."""
    if (folder / SESSION_FILE).exists():
        raise CompactRigError(f"{folder}: already holds a session; continue it with `compactrig session resume "
                              f"{folder}` or choose another --out")
    _remove_unfinished_start(folder)
    if (folder / STORE_FILE).exists():
        raise CompactRigError(f"{folder}: holds a {STORE_FILE} but no {SESSION_FILE} (a start that did not finish, "
                              f"or not a session); choose another --out, or move {STORE_FILE} away")
    foreign = sorted(p.name for p in folder.iterdir() if p.name not in (LOCK_FILE, HOLDER_FILE, STIMULI_DIR))
    if foreign:
        raise CompactRigError(f"{folder}: holds files that are not a session's ({', '.join(foreign[:3])}"
                              f"{'...' if len(foreign) > 3 else ''}); a session needs a new or empty folder: choose "
                              "another --out")
    reuse = (folder / STIMULI_DIR).exists()
    if reuse and not same_images(folder / STIMULI_DIR, stimulus_set):
        raise CompactRigError(f"{folder / STIMULI_DIR}: already holds other images than {stimuli}; choose another "
                              "--out (a session never shows, nor replaces, a stimuli/ folder it did not copy)")
    needed = n_planned * BYTES_PER_PRESENTATION + sum(p.stat().st_size for p in stimuli.iterdir() if p.is_file())
    free = shutil.disk_usage(folder).free
    if free < 2 * needed:
        raise CompactRigError(f"{folder}: only {free / 1e6:.1f} MB free, the session needs about "
                              f"{2 * needed / 1e6:.1f} MB; free some space or choose another --out")
    return reuse


def _remove_unfinished_start(folder: Path) -> None:
    """Remove what a start killed before its ``session.json`` wrote: the parts its ``STARTING_FILE`` names,
    what it was writing beside their names (``write_atomically``'s partial files), then the list itself.
    Nothing else in the folder is touched."""
    marker = folder / STARTING_FILE
    names: object = []
    if marker.exists():
        try:
            names = json.loads(marker.read_text())
        except (OSError, ValueError):
            names = None
    if not isinstance(names, list) or not all(isinstance(name, str) and name == Path(name).name and name not in (
            "", ".", "..", SESSION_FILE, LOCK_FILE, HOLDER_FILE) for name in names):
        raise CompactRigError(f"{marker}: not the list of parts a start writes (edited?); choose another --out, "
                              "or remove it and the files of the start that did not finish")
    parts = [path_inside(folder, name, str(marker)) for name in names]
    partial_writes = [path for name in [*names, SESSION_FILE, STARTING_FILE]
                      for path in folder.glob(f".{glob.escape(name)}.*.partial*")]
    _remove(parts + partial_writes)
    marker.unlink(missing_ok=True)


def start_session(folder: Path, plan: SessionPlan, rig_path: Path | None, rig: RigConfig | None = None,
                  extra_files: Mapping[str, str] | None = None) -> None:
    """Create the session folder (stimuli copy, trial store with the plan, then ``session.json``); does not run it.

    Everything that needs no folder is checked first (the rig, the source, gate and marker outputs with
    their options, the mapping, the bank, the stimuli), so a mistake leaves no folder behind. Then the
    session lock is taken before the folder is looked at, so of two starts into one folder exactly one
    starts. ``session.json`` is written last: a folder that has one is a complete session. Before its first
    part, a start writes the names of the parts it will write (``STARTING_FILE``) and removes that list
    after ``session.json``, so a start killed half-way (its ``except`` never runs) leaves a list of what is
    its own: the next start into the folder removes exactly those parts and begins again. The rig is
    read from ``rig_path``, or given as ``rig`` (the window's edited rig, or the rig file with the command
    line's source: ``RigConfig.with_source``; ``rig_path`` then only names where it came from); it is
    stored as the session's rig, the one home of its source. ``extra_files`` (name -> text: a closed loop's
    settings) are written with the session's own parts, before ``session.json``, and go with them when the
    start fails.
    """
    folder = Path(folder)
    rig = rig or load_rig(rig_path)
    if plan.max_missing < 1:
        raise CompactRigError(f"max_missing = {plan.max_missing}: give 1 or more")
    check_unit_map(check_rig_plugins(rig), plan.unit_map)
    if plan.bank is not None and Path(plan.bank).is_dir():  # kept absolute: resumed from wherever it is given
        plan = replace(plan, bank=str(Path(plan.bank).absolute()))
    bank = load_bank(plan.bank)
    unknown = sorted(set(plan.unit_map.values()) - set(bank.neuron_ids))
    if unknown:
        raise CompactRigError(f"--map names neuron {unknown[0]!r}, which the bank {bank.identity()['name']!r} does "
                              f"not have (e.g. {', '.join(bank.neuron_ids[:3])}); check --bank and --map")
    stimuli = Path(plan.stimuli)
    stimulus_set = _load_stimuli(stimuli)
    made = _make_folder(folder)
    lock_files = [folder / LOCK_FILE, folder / HOLDER_FILE]
    ours = [path for path in lock_files if not path.exists()]
    lock = SessionLock(folder).acquire()  # refused: another process holds the folder, which is then theirs
    written: list[Path] = []
    try:
        copy = not _check_free_folder(folder, stimulus_set, stimuli, len(stimulus_set) * plan.repeats)
        parts = ([STIMULI_DIR] if copy else []) + [STORE_FILE, *(extra_files or {})]
        written.append(folder / STARTING_FILE)
        write_atomically(folder / STARTING_FILE, partial(Path.write_text, data=json.dumps(parts)))
        if copy:
            written.append(folder / STIMULI_DIR)
            stimulus_set.save(folder / STIMULI_DIR)
        session_id = uuid.uuid4().hex
        written.append(folder / STORE_FILE)
        store = TrialStore(folder / STORE_FILE)
        try:
            store.set_meta(SESSION_ID, session_id)
            plan_images(store, stimulus_set.ids, plan.repeats, plan.seed)
        finally:
            store.close()
        for name, text in (extra_files or {}).items():
            written.append(folder / name)
            write_atomically(folder / name, partial(Path.write_text, data=text))
        write_snapshot(folder, {"software_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                SESSION_ID: session_id, "rig": rig_table(rig),
                                "rig_file": str(rig_path) if rig_path else None, "bank": bank.identity(),
                                "plan": asdict(plan), "stimulus_ids": stimulus_set.ids,
                                "stimulus_hashes": stimulus_hashes(stimulus_set)})
    except BaseException:
        _remove(written)
        lock.release()
        if made is not None:
            _remove_empty(folder, made)
        else:
            _remove(ours)  # a folder of the user's keeps nothing of a refused start
        raise
    with suppress(OSError):  # the session is complete; a list left over is stale, never read again
        (folder / STARTING_FILE).unlink()
    lock.release()


def _remove(written: list[Path]) -> None:
    """After a failed start, remove the files it wrote (best effort: the error being raised says what failed)."""
    for path in written:
        try:
            if path.is_dir():
                shutil.rmtree(path)
            for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                if part.is_file():
                    part.unlink()
        except OSError:
            pass


def _remove_empty(folder: Path, made: Path) -> None:
    """The folders a failed start made, when nothing but its lock files is left in them."""
    _remove([folder / LOCK_FILE, folder / HOLDER_FILE])
    for path in [folder, *folder.parents]:
        try:
            path.rmdir()  # only when empty
        except OSError:
            return
        if path == made:
            return


def plan_images(store: TrialStore, image_ids: list[str], repeats: int, seed: int | None) -> None:
    """Append ``image_ids`` x ``repeats`` to the plan, one shuffled block per repeat."""
    ids: list[str] = []
    blocks: list[int] = []
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
        if "stimulus_hashes" in snapshot:
            snapshot["stimulus_hashes"] = {**snapshot["stimulus_hashes"], **stimulus_hashes(new)}
        write_snapshot(folder, snapshot)
    plan_images(store, images.ids, repeats, seed)
    return new


def append_to_session(folder: Path, images: StimulusSet, repeats: int = 1) -> int:
    """Queue images into a session that is not running (resume it to show them); returns plan items added."""
    folder = Path(folder)
    read_snapshot(folder)
    lock = SessionLock(folder).acquire()
    try:
        snapshot = read_snapshot(folder)
        current = checked_stimuli(folder, snapshot)
        store = open_session_store(folder, snapshot)
        try:
            add_images_to_session(folder, store, current, images, repeats)
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
                       "images_per_trial": rig.images_per_trial, "inter_trial_s": rig.inter_trial_s,
                       "acquire_s": rig.acquire_s},
            "markers": {"outputs": list(rig.marker_outputs), **rig.marker_options, "codes": rig.event_codes.to_table()},
            "source": {"name": rig.source_name, "options": rig.source_options},
            "gate": {"name": rig.gate_name, "options": rig.gate_options}}
