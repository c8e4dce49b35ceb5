"""``compactrig session report``: one PNG that says how a session went.

Panels: model prediction versus mean response per image for each mapped unit (with the
affine fit and r), dropped frames per presentation, and the timeline of onsets with
aborted presentations marked; under them, when spike times were kept, each unit's PSTH (small
multiples: its counting window shaded, its latency marked when one was found, ``windows.unit_latencies``);
at the bottom the refresh each run measured (in red when it was not the rig file's: every duration was
wrong), and for a session counted only that it has no PSTH. The PNG's ``Description`` says the same, one
line per PSTH panel. Drawn with Matplotlib's Agg backend (no window, no Qt).
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from compactrig.engine.files.safe_output import write_atomically  # noqa: E402
from compactrig.engine.stats.latency import BIN_S, Latency, binned  # noqa: E402
from compactrig.rig.session.fits import stored_fits  # noqa: E402
from compactrig.rig.session.folder import read_snapshot, recorded_refreshes  # noqa: E402
from compactrig.rig.session.integrity import checked_stimuli, open_session_store  # noqa: E402
from compactrig.rig.session.windows import counts_of, shown_spikes, unit_latencies, window_for  # noqa: E402

MAX_FIT_PANELS = 4
MAX_PSTH_PANELS = 48
PSTH_COLUMNS = 8
PSTH_ROW_IN = 1.9
PSTH_BIN_S = 0.01
TOP_ROW_IN = 3.8
LINE_IN = 0.19
WINDOW_COLOUR = "#9ecae1"
COUNTS_ONLY = "counts only: no spike times kept, no PSTH"
MAX_REFRESH_LINES = 4
TROUBLE_COLOUR = "#b00020"


def write_report(folder: Path, out: Path) -> Path:
    """Draw the session in ``folder`` into the PNG ``out`` (written beside it, then renamed into place)."""
    snapshot = read_snapshot(folder)
    store = open_session_store(folder, snapshot)  # refused when missing, damaged or another session's
    try:
        presentations = store.presentations()
        responses = counts_of(store)
        planned = len(store.plan())
        complete = len(store.completed_items())
        span, trains = shown_spikes(store)
        latencies = unit_latencies(store) if span[1] > span[0] else {}
        adopted, source_windows = store.count_windows(), sorted(set(store.response_windows().values()))
        counted_only = not store.spans()
    finally:
        store.close()
    mapping = dict(list(snapshot["plan"].get("unit_map", {}).items())[:MAX_FIT_PANELS])
    top = 2 + max(len(mapping), 1)
    psth_units = list(latencies)[:MAX_PSTH_PANELS]
    rows = math.ceil(len(psth_units) / PSTH_COLUMNS)
    height = TOP_ROW_IN + PSTH_ROW_IN * rows
    figure = plt.figure(figsize=(4.2 * top, height))
    grid = figure.add_gridspec(1 + (rows > 0), 1, height_ratios=[TOP_ROW_IN] + [PSTH_ROW_IN * rows] * (rows > 0))
    row = grid[0].subgridspec(1, top)
    axes = [figure.add_subplot(row[0, k]) for k in range(top)]
    described = []
    if rows:
        cells = grid[1].subgridspec(rows, PSTH_COLUMNS)
        for k, unit in enumerate(psth_units):
            windows = [own] if (own := window_for(adopted, unit)) is not None else source_windows
            axis = figure.add_subplot(cells[k // PSTH_COLUMNS, k % PSTH_COLUMNS])
            described.append(_psth(axis, unit, trains[unit], span, windows, own is not None, latencies[unit]))
            if k % PSTH_COLUMNS == 0:
                axis.set_ylabel("spikes/s", fontsize=7)
    _fits(axes[:-2], folder, snapshot, mapping, presentations, responses)
    orders = [p.order for p in presentations]
    axes[-2].bar(orders, [p.dropped for p in presentations], color="tab:orange", width=1.0)
    axes[-2].set(title="dropped frames", xlabel="presentation", ylabel="frames")
    axes[-2].set_ylim(0, max([p.dropped for p in presentations] + [1]) * 1.1)  # none dropped: a floor, not +-0.04
    axes[-2].yaxis.set_major_locator(MaxNLocator(integer=True))
    times = np.array([p.onset_time for p in presentations])
    aborted = np.array([p.aborted for p in presentations], dtype=bool)
    if len(times):
        axes[-1].plot(times[~aborted] - times[0], np.array(orders)[~aborted], ".", ms=3, label="shown")
        axes[-1].plot(times[aborted] - times[0], np.array(orders)[aborted], "x", color="tab:red", label="aborted")
        axes[-1].legend(loc="lower right", fontsize=8)
    axes[-1].set(title="timeline", xlabel="time since first onset (s)", ylabel="presentation")
    figure.suptitle(f"{folder.name}: {complete}/{planned} planned presentations complete, "
                    f"{int(aborted.sum())} aborted, {sum(p.dropped for p in presentations)} dropped frames")
    said = _psth_note(counted_only, len(latencies), len(psth_units), bool(trains) and not latencies)
    lines = _refresh_notes(snapshot) + [(said, False)] * bool(said)
    notes = [(part, differs) for line, differs in lines
             for part in textwrap.wrap(line, int(figure.get_figwidth() * 15))]  # 9-point text, all of it on the page
    line_height = LINE_IN / height
    band = line_height * len(notes)
    for k, (line, differs) in enumerate(notes):
        figure.text(0.01, band - line_height * (k + 0.8), line, fontsize=9,
                    color=TROUBLE_COLOUR if differs else "black")
    figure.tight_layout(rect=(0, band, 1, 1))
    metadata = {"Description": "\n".join(described + [said] * bool(said))}
    try:
        write_atomically(out, lambda path: figure.savefig(path, dpi=100, format="png", metadata=metadata))
    finally:
        plt.close(figure)
    return out


def _psth(axis, unit: str, trains: list[np.ndarray], span: tuple[float, float],
          windows: list[tuple[float, float]], adopted: bool, latency: Latency) -> str:
    """Draw ``unit``'s PSTH (spikes/s in ``PSTH_BIN_S`` bins, ms from the onset) with its counting windows
    shaded and its latency marked; returns the line that says what the panel shows."""
    per_bin = int(round(PSTH_BIN_S / BIN_S))
    fine = binned(trains, span).sum(axis=0)
    coarse = fine[:len(fine) // per_bin * per_bin].reshape(-1, per_bin).sum(axis=1)
    edges = 1000 * (span[0] + PSTH_BIN_S * np.arange(len(coarse) + 1))
    for start, end in windows:
        axis.axvspan(1000 * start, 1000 * end, color=WINDOW_COLOUR, lw=0)
    axis.stairs(coarse / (max(len(trains), 1) * PSTH_BIN_S), edges, fill=True, color="0.3")
    found = math.isfinite(latency.latency_s)
    if found:
        axis.axvline(1000 * latency.latency_s, color="tab:red", ls="--", lw=1)
    counted = ", ".join(f"{a * 1000:g}..{b * 1000:g}" for a, b in windows) or "none"
    whose = "adopted" if adopted else "the source's"
    told = f"latency {latency.latency_s * 1000:.0f} ms" if found else "no latency"
    axis.set_title(f"{unit}: {told}", fontsize=8)
    axis.tick_params(labelsize=7)
    axis.set_xlabel("ms from onset", fontsize=7)
    return f"PSTH {unit}: counted {counted} ms ({whose}), {told}, {len(trains)} presentations"


def _psth_note(counted_only: bool, n_units: int, drawn: int, no_shown: bool) -> str:
    """The line under the panels about the PSTHs: none kept, none shown, or only some drawn ('' if all)."""
    if counted_only:
        return COUNTS_ONLY
    if no_shown:
        return "no PSTH: no presentation shown without abort kept spike times"
    if drawn < n_units:
        return (f"PSTH of the first {drawn} of {n_units} units; 'compactrig session windows' gives every unit's "
                "latency")
    return ""


def _refresh_notes(snapshot: dict) -> list[tuple[str, bool]]:
    """One line per run (the last ``MAX_REFRESH_LINES``) with its measured refresh, and whether it was off."""
    checks = recorded_refreshes(snapshot)
    runs = list(enumerate(checks, 1))[-MAX_REFRESH_LINES:]
    return [(f"run {k} of {len(checks)}: {'warning: ' if check.differs else ''}{check.line()}", check.differs)
            for k, check in runs]


def _fits(axes, folder, snapshot, mapping, presentations, responses) -> None:
    if not mapping:
        axes[0].text(0.5, 0.5, "no unit mapped to a model\n(--map UNIT=NEURON)", ha="center", va="center")
        axes[0].set_axis_off()
        return
    stimulus_set = checked_stimuli(folder, snapshot)
    fit = stored_fits(snapshot["plan"].get("bank"), mapping, stimulus_set, presentations, responses)
    summary = fit.summary()
    for axis, (row, unit) in zip(axes, enumerate(fit.units)):
        x, y, _ = fit.points(row)
        axis.plot(x, y, "o", ms=4, alpha=0.7)
        line_x, line_y = fit.fit_line(row, summary)
        axis.plot(line_x, line_y, "-", color="tab:red")
        low, high = fit.r2_er_interval(row, n_boot=100)
        interval = f" [{low:.2f}, {high:.2f}]" if np.isfinite(low) else ""
        axis.set(title=f"{unit} vs {mapping[unit]}: r = {summary.r[row]:.2f}\n"  # two lines: the panels are narrow
                       f"r2_ER = {summary.r2_er[row]:.2f}{interval}",
                 xlabel="model prediction", ylabel="mean count per image")
