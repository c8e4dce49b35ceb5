"""``compactrig session export --nwb``: the session as an NWB file (needs the ``nwb`` extra: pynwb).

Contents: the stimulus images (``Images`` of ``RGBImage``, in stimulus-set order), one
``IndexSeries`` of the presentations (which image, at which onset), a ``presentations``
time-interval table (one row per presentation: onset, offset, trial, order, image id, frames,
dropped frames, aborted, and each unit's spike count), all timestamps in seconds from the first
onset. The onsets' LSL-clock origin is kept in the file's notes so they can be re-aligned.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from engine.errors import CompactRigError
from gui.session.folder import STIMULI_DIR, STORE_FILE, read_snapshot
from gui.session.store import TrialStore
from stimuli.stimulus_set import StimulusSet


def _column(unit: str) -> str:
    return "count_" + re.sub(r"[^A-Za-z0-9]+", "_", unit).strip("_")


def export_nwb(folder: Path, out: Path, subject_id: str = "unknown", species: str = "Macaca mulatta",
               sex: str = "U", age: str | None = None) -> int:
    """Write ``out``; returns the number of presentations written."""
    try:
        from pynwb import NWBHDF5IO, NWBFile
        from pynwb.file import Subject
        from pynwb.base import ImageReferences
        from pynwb.epoch import TimeIntervals
        from pynwb.image import Images, IndexSeries, RGBImage
    except ImportError:
        raise CompactRigError("NWB export needs pynwb: pip install 'compactrig[nwb]'") from None
    snapshot = read_snapshot(folder)
    store = TrialStore(folder / STORE_FILE)
    try:
        presentations = store.presentations()
        responses = store.responses()
    finally:
        store.close()
    if not presentations:
        raise CompactRigError(f"{folder}: the session has no presentations yet; nothing to export")
    stimulus_set = StimulusSet.load(folder / STIMULI_DIR)
    origin = min(p.onset_time for p in presentations)
    refresh = snapshot["rig"]["screen"]["refresh_hz"]
    nwbfile = NWBFile(
        session_description=f"CompactRig session {folder.name}: {len(stimulus_set)} images, "
                            f"source {snapshot['plan']['source']}",
        identifier=str(uuid.uuid4()), session_start_time=datetime.now(timezone.utc),
        experiment_description="closed-loop presentation of model-designed and natural images (CompactRig)",
        subject=Subject(subject_id=subject_id, species=species, sex=sex, age=age),
        notes=f"timestamps are seconds after the first onset, which was {origin:.6f} s on the LSL clock; "
              f"model bank {snapshot['bank']['name']} sha256 {snapshot['bank']['sha256']}; "
              f"CompactRig {snapshot['software_version']}")
    images = [RGBImage(name=image_id, data=pixels, description=f"stimulus {image_id}")
              for image_id, pixels in zip(stimulus_set.ids, stimulus_set.pixels)]
    stimuli = Images(name="stimuli", images=images, description="the stimulus set, as shown",
                     order_of_images=ImageReferences(name="order_of_images", data=images))
    nwbfile.add_stimulus_template(stimuli)
    index = {image_id: i for i, image_id in enumerate(stimulus_set.ids)}
    onsets = np.array([p.onset_time - origin for p in presentations])
    nwbfile.add_stimulus(IndexSeries(name="presentations", data=np.array([index[p.image_id] for p in presentations],
                                                                         dtype=np.uint32),
                                     indexed_images=stimuli, unit="N/A", timestamps=onsets,
                                     description="index into stimuli of each presented image, at its onset"))
    counts = {}
    for order, unit, count in responses:
        counts.setdefault(unit, {})[order] = count
    table = TimeIntervals(name="presentations", description="one row per presentation (image onset to offset)")
    for name, description in (("order", "presentation number"), ("trial", "trial (fixation) number"),
                              ("image_id", "stimulus id"), ("frames", "frames the image was on"),
                              ("dropped_frames", "dropped frames during the presentation"),
                              ("aborted", "1 if aborted (shown again later)")):
        table.add_column(name, description)
    for unit in sorted(counts):
        table.add_column(_column(unit), f"spike count of unit {unit} in the response window (NaN: none)")
    for p, onset in zip(presentations, onsets):
        row = {_column(u): float(counts[u].get(p.order, np.nan)) for u in counts}
        table.add_row(start_time=float(onset), stop_time=float(onset + p.frames / refresh), order=p.order,
                      trial=p.trial, image_id=p.image_id, frames=p.frames, dropped_frames=p.dropped,
                      aborted=int(p.aborted), **row)
    nwbfile.add_time_intervals(table)
    with NWBHDF5IO(str(out), "w") as io:
        io.write(nwbfile)
    return len(presentations)
