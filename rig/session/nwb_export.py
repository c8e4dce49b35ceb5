"""``compactrig session export --nwb``: the session as an NWB file (needs the ``nwb`` extra: pynwb).

Contents: the stimulus images (``Images`` of ``RGBImage``, in stimulus-set order); one
``IndexSeries`` of the presentations (which image, at which onset); a ``presentations``
time-interval table (one row per presentation: onset to the flip that removed the image, trial,
order, image id, frames, dropped frames, aborted with its reason, the source's counting window, each unit's
spike count (``windows.counted_responses``: in the unit's adopted window where one was adopted, with the
source's own count beside it) and, for units mapped to a model, the model's predicted response); the fixation
trials as NWB ``trials`` (aborted ones with their reason); and a ``unit_map`` table (unit, model
neuron, bank, declared or discovered) in the ``compactrig`` processing module, with, when event codes
were sent, the ``code_table`` (each event's code, the onset range, the reasons) and ``event_codes``
(every word sent: output, event, presentation, trial, word, time). When spike times were kept, the NWB
``units`` table: one row per unit (its name, the model neuron mapped, its adopted window), its spikes on
the session's clock, each once, and the spans they were kept over as its ``obs_intervals``
(``unit_trains``); a session counted only (a replay) has none, and its notes say so.

``session_start_time`` is when the session was created (so exporting twice gives the same file
contents, identifier included). Times are seconds from it: onsets on the LSL clock are put on the
wall clock by the earliest store write after a flip, and the notes give the exact constant that
turns them back into LSL times.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from pathlib import Path

import numpy as np

from compactrig.engine.errors import CompactRigError
from compactrig.engine.files.safe_output import write_atomically
from compactrig.plugins.event_codes import EVENTS, ONSET, CodeTable
from compactrig.rig.presenter.rig import parse_rig
from compactrig.rig.session.fits import mapped_predictions
from compactrig.rig.session.folder import SESSION_FILE, read_snapshot
from compactrig.rig.session.integrity import checked_stimuli, open_session_store
from compactrig.rig.session.setup import SessionPlan, session_rig
from compactrig.rig.session.unit_trains import unit_trains
from compactrig.rig.session.windows import counted_responses, window_for


def _column(prefix: str, unit: str) -> str:
    return prefix + re.sub(r"[^A-Za-z0-9]+", "_", unit).strip("_")


def _code_tables(codes: CodeTable, sent: list, shift: float, table: type, column: type) -> list:
    """The code table (one row per event and reason: first code, number of codes) and every word sent."""
    rows = [(event, getattr(codes, event), 1) for event in EVENTS] + [(ONSET, codes.onset_first, codes.onset_count)]
    rows += [(f"abort_reason:{kind}", code, 1) for kind, code in codes.abort_reasons]
    described = (f"{codes.word_bits}-bit words; an onset is its identity ({codes.identity}) modulo {codes.capacity} "
                 f"as {codes.identity_words} word(s) onset_first + a base-{codes.onset_count} digit, lowest first; "
                 "an abort is its code, its reason's code, then the aborted presentation's identity words")
    code_table = table(name="code_table", description=described, columns=[
        column(name="event", description="the event, or abort_reason:KIND", data=[r[0] for r in rows]),
        column(name="first_code", description="the event's code (the onset range's first)", data=[r[1] for r in rows]),
        column(name="codes", description="how many codes (the onset range's size; else 1)", data=[r[2] for r in rows])])
    words = table(name="event_codes", description="every digital word the event-code outputs sent, in order",
                  columns=[
        column(name="output", description="the marker output that sent it", data=[w[0] for w in sent]),
        column(name="event", description="the event it belongs to", data=[w[1] for w in sent]),
        column(name="order", description="the presentation (-1: none, a trial's event)",
               data=[-1 if w[2] is None else w[2] for w in sent]),
        column(name="trial", description="the trial (-1: not known)",
               data=[-1 if w[3] is None else w[3] for w in sent]),
        column(name="word", description="the word", data=[w[4] for w in sent]),
        column(name="time", description="when it was handed to the device, s from session_start_time",
               data=[w[5] + shift for w in sent])])
    return [code_table, words]


def _count_description(unit: str, adopted: tuple[float, float] | None) -> str:
    missing = "NaN: no response: aborted or the source was not connected"
    if adopted is None:
        return f"spike count of unit {unit} in the source's counting window (window_start..window_end); {missing}"
    return (f"spike count of unit {unit} in its adopted window, {adopted[0] * 1000:g}..{adopted[1] * 1000:g} ms after "
            f"onset, recounted from spike_times (a presentation without spike times kept: the source's count); "
            f"{missing}")


def _units_table(units_type: type, kept: dict, onsets: dict[int, float], units: list[str],
                 unit_map: dict[str, str], adopted: dict[str, tuple[float, float]]):
    """The NWB units table: each unit's spikes on the session's clock, each once, observed over the spans kept.
    Its ``resolution`` is the precision the store kept spike times at (float32 s from the onset, over the
    widest span): the recording system's own sampling (not stored) may be coarser."""
    trains = unit_trains(kept, onsets, len(units))
    widest = max(max(abs(start), abs(end)) for (start, end), _ in kept.values())
    table = units_type(name="units", resolution=float(np.spacing(np.float32(widest))),
                       description="the recorded units' spike times, s from session_start_time, kept over a span "
                                   "around each presentation (obs_intervals); resolution: the precision they were "
                                   "stored at (float32 s from the onset), the recording's sampling may be coarser")
    for name, description in (("unit", "recorded unit id"), ("neuron", "model neuron id mapped to it ('' if none)"),
                              ("window_start", "start of its adopted counting window, s after onset (NaN: the "
                                               "source's window, in presentations)"),
                              ("window_end", "end of its adopted counting window, s after onset (NaN: the "
                                             "source's window, in presentations)")):
        table.add_column(name, description)
    for unit, times in zip(units, trains.times):
        window = adopted.get(unit, (np.nan, np.nan))
        table.add_unit(spike_times=times, obs_intervals=[list(span) for span in trains.observed], unit=unit,
                       neuron=unit_map.get(unit, ""), window_start=float(window[0]), window_end=float(window[1]))
    return table


ISO_DURATION = re.compile(r"P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?")
"""An ISO 8601 duration (``P8Y``, ``P3Y6M``, ``P120D``), the form NWB and DANDI take a subject's age in."""


def check_age(age: str | None) -> str | None:
    """``age`` when it is an ISO 8601 duration or a range of two (``P8Y/P9Y``); else refused in one line."""
    if age is None or all(ISO_DURATION.fullmatch(part) for part in age.split("/", 1)):
        return age
    raise CompactRigError(f"--age {age!r} is not an ISO 8601 duration; give the subject's age as e.g. P8Y "
                          "(8 years), P3Y6M or P120D")


def export_nwb(folder: Path, out: Path, subject_id: str = "unknown", species: str = "Macaca mulatta",
               sex: str = "U", age: str | None = None) -> int:
    """Write ``out`` (beside it, then renamed into place: a failed export keeps what was there); returns the number
    of presentations written."""
    try:
        from hdmf.common import DynamicTable, VectorData
        from pynwb import NWBHDF5IO, NWBFile
        from pynwb.base import ImageReferences
        from pynwb.epoch import TimeIntervals
        from pynwb.file import Subject
        from pynwb.image import Images, IndexSeries, RGBImage
        from pynwb.misc import Units
    except ImportError:
        raise CompactRigError("NWB export needs pynwb: pip install 'compactrig[nwb]'") from None
    age = check_age(age)
    folder = Path(folder)
    snapshot = read_snapshot(folder)
    store = open_session_store(folder, snapshot)  # refused when missing, damaged or another session's
    try:
        presentations, responses, counted = store.presentations(), store.responses(), counted_responses(store)
        windows, trials, units = store.response_windows(), store.trials(), store.units()
        adopted, kept = store.count_windows(), store.spike_times(units)
        recorded_at, declared = store.recorded_at(), store.declared_units()
        codes = store.event_codes()
    finally:
        store.close()
    if not presentations:
        raise CompactRigError(f"{folder}: the session has no presentations yet; nothing to export")
    stimulus_set = checked_stimuli(folder, snapshot)
    plan = SessionPlan.from_snapshot(snapshot, str(folder / SESSION_FILE))
    rig = session_rig(snapshot, str(folder / SESSION_FILE))
    created = datetime.strptime(snapshot["created"], "%Y-%m-%dT%H:%M:%S%z")
    wall_minus_lsl = min(recorded_at[p.order] - p.onset_time for p in presentations)
    shift = wall_minus_lsl - created.timestamp()  # NWB time = LSL time + shift
    refresh = rig.refresh_hz
    nwbfile = NWBFile(
        session_description=f"CompactRig session {folder.name}: {len(stimulus_set)} images, "
                            f"source {rig.source_name}",
        identifier=str(uuid.uuid5(uuid.NAMESPACE_URL, f"compactrig-session:{snapshot['created']}:{folder.name}")),
        session_start_time=created,
        experiment_description="closed-loop presentation of model-designed and natural images (CompactRig)",
        subject=Subject(subject_id=subject_id, species=species, sex=sex, age=age),
        notes=f"times are seconds from session_start_time; LSL clock time = NWB time - ({shift:.6f}); "
              f"{'spike times in units' if kept else 'counts only: no spike times were kept'}; "
              f"model bank {snapshot['bank']['name']} sha256 {snapshot['bank']['sha256']}; "
              f"CompactRig {snapshot['software_version']}")
    images = [RGBImage(name=image_id, data=pixels, description=f"stimulus {image_id}")
              for image_id, pixels in zip(stimulus_set.ids, stimulus_set.pixels)]
    stimuli = Images(name="stimuli", images=images, description="the stimulus set, as shown",
                     order_of_images=ImageReferences(name="order_of_images", data=images))
    nwbfile.add_stimulus_template(stimuli)
    index = {image_id: i for i, image_id in enumerate(stimulus_set.ids)}
    onsets = np.array([p.onset_time + shift for p in presentations])
    nwbfile.add_stimulus(IndexSeries(name="presentations", data=np.array([index[p.image_id] for p in presentations],
                                                                         dtype=np.uint32),
                                     indexed_images=stimuli, unit="N/A", timestamps=onsets,
                                     description="index into stimuli of each presented image, at its onset"))
    source: dict[str, dict[int, float]] = {unit: {} for unit in units}
    for order, unit, count in responses:
        source.setdefault(unit, {})[order] = count
    counts: dict[str, dict[int, float]] = {unit: {} for unit in source}
    for c in counted:
        counts[c.unit][c.order] = c.count
    own = {unit: window for unit in source if (window := window_for(adopted, unit)) is not None}
    mapped = {u: n for u, n in plan.unit_map.items() if u in counts}
    predicted = mapped_predictions(plan.bank, mapped, stimulus_set) if mapped else {}
    table = TimeIntervals(name="presentations", description="one row per presentation (image onset to the flip "
                                                            "that removed it)")
    for name, description in (("order", "presentation number (never reused; the marker stream's order)"),
                              ("trial", "trial (fixation) number"), ("image_id", "stimulus id"),
                              ("frames", "frames the image was on"),
                              ("dropped_frames", "dropped frames during the presentation"),
                              ("aborted", "1 if aborted (its plan item was shown again later)"),
                              ("abort_reason", "why it was aborted ('' if not)"),
                              ("window_start", "start of the source's counting window, seconds after onset "
                                               "(NaN: no count); a unit's adopted window: its count column"),
                              ("window_end", "end of the source's counting window, seconds after onset (NaN: no "
                                             "count); a unit's adopted window: its count column")):
        table.add_column(name, description)
    for unit in counts:
        table.add_column(_column("count_", unit), _count_description(unit, own.get(unit)))
    for unit in own:
        table.add_column(_column("source_count_", unit), f"spike count of unit {unit} as the source counted it, in "
                                                         "its window (window_start..window_end); NaN: no response")
    for unit in predicted:
        table.add_column(_column("predicted_", unit), f"predicted response of {mapped[unit]} (mapped to unit {unit})")
    for p, onset in zip(presentations, onsets):
        offset = p.offset_time + shift if p.offset_time is not None else onset + p.frames / refresh
        window = windows.get(p.order, (np.nan, np.nan))
        row = {_column("count_", u): float(counts[u].get(p.order, np.nan)) for u in counts}
        row |= {_column("source_count_", u): float(source[u].get(p.order, np.nan)) for u in own}
        row |= {_column("predicted_", u): float(values[index[p.image_id]]) for u, values in predicted.items()}
        table.add_row(start_time=float(onset), stop_time=float(max(offset, onset)), order=p.order, trial=p.trial,
                      image_id=p.image_id, frames=p.frames, dropped_frames=p.dropped, aborted=int(p.aborted),
                      abort_reason=p.abort_reason or "", window_start=float(window[0]), window_end=float(window[1]),
                      **row)
    nwbfile.add_time_intervals(table)
    if kept:
        nwbfile.units = _units_table(Units, kept, {p.order: p.onset_time + shift for p in presentations}, units,
                                     plan.unit_map, own)
    timed = [t for t in trials if t[1] is not None]
    if timed:
        nwbfile.add_trial_column("trial", "trial (fixation) number")
        nwbfile.add_trial_column("images", "images shown in the trial")
        nwbfile.add_trial_column("aborted", "1 if fixation broke or the run was stopped during the trial")
        nwbfile.add_trial_column("abort_reason", "why the trial was aborted ('' if not)")
        for trial, start, end, shown, aborted, reason in timed:
            assert start is not None  # the untimed are left out above
            begin = start + shift
            nwbfile.add_trial(start_time=float(begin), stop_time=float(max(end + shift if end else begin, begin)),
                              trial=trial, images=shown, aborted=int(aborted), abort_reason=reason or "")
    module = nwbfile.create_processing_module("compactrig", "how recorded units relate to the compact models")
    module.add(DynamicTable(name="unit_map", description="recorded units, and the model neuron each is compared with",
                            columns=[VectorData(name="unit", description="recorded unit id", data=list(counts)),
                                     VectorData(name="neuron", description="model neuron id ('' if none)",
                                                data=[plan.unit_map.get(u, "") for u in counts]),
                                     VectorData(name="declared", description="1 if named before the session, "
                                                                             "0 if discovered during it",
                                                data=[int(u in declared) for u in counts])]))
    if codes:
        for table in _code_tables(parse_rig(snapshot["rig"], str(folder / SESSION_FILE)).event_codes, codes, shift,
                                  DynamicTable, VectorData):
            module.add(table)

    def write(path: Path) -> None:
        with NWBHDF5IO(str(path), "w") as io:
            io.write(nwbfile)
    write_atomically(out, write)
    return len(presentations)
