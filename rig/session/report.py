"""``compactrig session report``: one PNG that says how a session went.

Panels: model prediction versus mean response per image for each mapped unit (with the
affine fit and r), dropped frames per presentation, and the timeline of onsets with
aborted presentations marked; under them the refresh each run measured (in red when it was not
the rig file's: every duration was wrong). Drawn with Matplotlib's Agg backend (no window, no Qt).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import numpy as np  # noqa: E402

from compactrig.engine.files.safe_output import write_atomically  # noqa: E402
from compactrig.rig.session.fits import stored_fits  # noqa: E402
from compactrig.rig.session.folder import read_snapshot, recorded_refreshes  # noqa: E402
from compactrig.rig.session.integrity import checked_stimuli, open_session_store  # noqa: E402
from compactrig.rig.session.windows import counts_of  # noqa: E402

MAX_FIT_PANELS = 4
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
    finally:
        store.close()
    mapping = dict(list(snapshot["plan"].get("unit_map", {}).items())[:MAX_FIT_PANELS])
    figure, axes = plt.subplots(1, 2 + max(len(mapping), 1), figsize=(4.2 * (2 + max(len(mapping), 1)), 3.8))
    _fits(axes[:-2], folder, snapshot, mapping, presentations, responses)
    orders = [p.order for p in presentations]
    axes[-2].bar(orders, [p.dropped for p in presentations], color="tab:orange", width=1.0)
    axes[-2].set(title="dropped frames", xlabel="presentation", ylabel="frames")
    times = np.array([p.onset_time for p in presentations])
    aborted = np.array([p.aborted for p in presentations], dtype=bool)
    if len(times):
        axes[-1].plot(times[~aborted] - times[0], np.array(orders)[~aborted], ".", ms=3, label="shown")
        axes[-1].plot(times[aborted] - times[0], np.array(orders)[aborted], "x", color="tab:red", label="aborted")
        axes[-1].legend(loc="lower right", fontsize=8)
    axes[-1].set(title="timeline", xlabel="time since first onset (s)", ylabel="presentation")
    figure.suptitle(f"{folder.name}: {complete}/{planned} planned presentations complete, "
                    f"{int(aborted.sum())} aborted, {sum(p.dropped for p in presentations)} dropped frames")
    notes = [(part, differs) for line, differs in _refresh_notes(snapshot)
             for part in textwrap.wrap(line, int(figure.get_figwidth() * 15))]  # 9-point text, all of it on the page
    band = 0.05 * len(notes)
    for k, (line, differs) in enumerate(notes):
        figure.text(0.01, band - 0.05 * (k + 0.8), line, fontsize=9, color=TROUBLE_COLOUR if differs else "black")
    figure.tight_layout(rect=(0, band, 1, 1))
    try:
        write_atomically(out, lambda path: figure.savefig(path, dpi=100, format="png"))
    finally:
        plt.close(figure)
    return out


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
