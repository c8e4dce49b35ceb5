"""A session folder's parts checked against its ``session.json`` by content, at start, resume and export.

``session.json`` records each stimulus image's pixel hash and the session's id; the trial store holds
the same id in its meta table. A resume or an export refuses a ``stimuli/`` whose pixels are not the
recorded ones, and a trial store that is missing, empty, damaged, without a plan or another session's,
each in one line naming the fix; it never mistakes a lost store for a finished session. Both parts are
opened only inside the session folder (a ``stimuli/`` or store linked from elsewhere is refused).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from compactrig.engine.errors import CompactRigError
from compactrig.engine.files.inside_folder import path_inside
from compactrig.rig.session.folder import STIMULI_DIR, STORE_FILE
from compactrig.rig.session.trial_store import SESSION_ID, TrialStore
from compactrig.stimuli.stimulus_set import StimulusSet

RESTORE_STIMULI = "restore the session's stimuli/ folder as it was copied (the session shows only what it recorded)"
RESTORE_STORE = "restore the session's own trials.sqlite from a backup (resume and export need it)"


def stimulus_hashes(stimuli: StimulusSet) -> dict[str, str]:
    """Image id -> SHA-256 of its pixels (uint8, as shown): what ``session.json`` records of each image."""
    return {image_id: hashlib.sha256(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()).hexdigest()
            for image_id, pixels in zip(stimuli.ids, stimuli.pixels)}


def same_images(folder: Path, stimuli: StimulusSet) -> bool:
    """Whether the stimulus set in ``folder`` holds exactly ``stimuli`` (ids and pixels); False when unreadable."""
    try:
        there = StimulusSet.load(folder)
    except CompactRigError:
        return False
    return stimulus_hashes(there) == stimulus_hashes(stimuli)


def checked_stimuli(folder: Path, snapshot: dict[str, Any]) -> StimulusSet:
    """The session's ``stimuli/``, once every image ``session.json`` records is there with its recorded pixels.

    Images the folder holds beyond those (a crash while images were being queued) are kept, not checked:
    no plan item names them. A snapshot from before hashes were recorded is checked by ids only.
    """
    try:
        stimuli = StimulusSet.load(path_inside(folder, STIMULI_DIR, f"session {folder}"))
    except CompactRigError as error:
        raise CompactRigError(f"{folder}: the session's stimuli cannot be read ({error}); {RESTORE_STIMULI}") from None
    hashes = stimulus_hashes(stimuli)
    recorded = snapshot.get("stimulus_hashes")
    for image_id in snapshot["stimulus_ids"]:
        if image_id not in hashes:
            raise CompactRigError(f"{folder / STIMULI_DIR}: image {image_id!r}, which session.json records, is "
                                  f"missing; {RESTORE_STIMULI}")
        if recorded is not None and recorded.get(image_id) != hashes[image_id]:
            raise CompactRigError(f"{folder / STIMULI_DIR}: image {image_id!r} is not the one session.json recorded "
                                  f"(its pixels differ); {RESTORE_STIMULI}")
    return stimuli


def open_session_store(folder: Path, snapshot: dict[str, Any]) -> TrialStore:
    """The session's own trial store, open; refused when missing, empty, damaged, planless or another session's."""
    path = path_inside(folder, STORE_FILE, f"session {folder}")
    if not path.is_file():
        raise CompactRigError(f"{path}: missing, so the session's presentations and responses are gone; "
                              f"{RESTORE_STORE}")
    if path.stat().st_size == 0:
        raise CompactRigError(f"{path}: empty (0 bytes), so the session's presentations and responses are gone; "
                              f"{RESTORE_STORE}")
    store = TrialStore(path)
    try:
        damage = store.intact()
        if damage is not None:
            raise CompactRigError(f"{path}: damaged ({damage}); {RESTORE_STORE}")
        expected, found = snapshot.get(SESSION_ID), store.meta(SESSION_ID)
        if expected is None and found is not None:  # only a session from before session ids has neither
            raise CompactRigError(f"{path}: belongs to session {found}, but session.json names no session id (it was "
                                  f"edited, or is another folder's); put back the session's own session.json")
        if expected is not None and found != expected:
            raise CompactRigError(f"{path}: belongs to {'another session' if found else 'no session'} (id {found}, "
                                  f"session.json says {expected}); {RESTORE_STORE}")
        if not store.plan():
            raise CompactRigError(f"{path}: holds no plan, so it is not this session's store; {RESTORE_STORE}")
    except BaseException:
        store.close()
        raise
    return store
