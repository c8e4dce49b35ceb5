"""The session being watched, accumulated once: what the live fits, the summary line and the loop read.

A ``LiveSession`` is fed the session's events in order (``take_events``), every response exactly once:
by the session controller (``controller``) on its consumer's thread, so the window or the terminal reads
it without locks. It holds one ``PerImageSums`` of every unit of the session (mapped to a model or not)
and every image, and the mapped units' ``PopulationFit`` reading those same sums. The Live fits view
draws it, the controller's summary line after each trial quotes it, the closed loop's readouts and
compact models are fitted on its sums, and a stored session's report builds one from the store the same
way (``fits.fits_from_store``), so the table, the report and the readouts cannot drift apart. It also
keeps the spike times of every response that has them (``rasters``), for the rasters and PSTHs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compactrig.engine.stats.population_fit import PopulationFit, PopulationSummary
from compactrig.engine.stats.response_sums import PerImageSums
from compactrig.rig.session.events import ImagesAdded, ResponseStored, SessionStarted, UnitsDiscovered
from compactrig.rig.session.rasters import SpikeRasters


class LiveSession:
    """Every unit's response sums per image, and the mapped units' fits, of the session last started."""

    def __init__(self) -> None:
        self.folder: Path | None = None
        self.unit_map: dict[str, str] = {}
        self.sums: PerImageSums | None = None
        """Every unit (columns) and image (rows) of the session; None before the first session."""
        self.fit: PopulationFit | None = None
        """The units mapped to a model against their predictions, reading ``sums``."""
        self.summary: PopulationSummary | None = None
        """``fit``'s summary as of the last events taken."""
        self.rasters = SpikeRasters()
        """Every unit's spike times per presentation of the session (none kept: a session counted only)."""
        self.windows: dict[str, tuple[float, float]] = {}
        """The counting windows adopted (unit, or "" for every unit -> s from the onset; ``windows.window_for``)."""
        self.source_window: tuple[float, float] | None = None
        """The window the source counts in (s from the onset), as its last response said; None: none yet."""

    @property
    def unmapped(self) -> list[str]:
        """Units without a model (in the session's order)."""
        if self.sums is None or self.fit is None:
            return []
        mapped = set(self.fit.units)
        return [u for u in self.sums.units if u not in mapped]

    @property
    def has_spikes(self) -> bool:
        """Spike times were kept for some presentation (False for a replay or a session counted only)."""
        return self.rasters.has_spikes

    def raster_order(self, unit: str) -> list[str]:
        """The images presented, for ``unit``'s raster: by its model's prediction (a unit without a model: by
        its mean response), lowest first; images it never answered last."""
        shown = self.rasters.image_ids
        if self.sums is None or unit not in self.sums.units:
            return list(shown)
        if self.fit is not None and unit in self.fit.units:
            column = dict(zip(self.fit.image_ids, self.fit.predictions[self.fit.units.index(unit)]))
        else:
            column = dict(zip(self.sums.image_ids, self.sums.means()[:, self.sums.units.index(unit)]))
        value = np.array([column.get(image, np.nan) for image in shown], dtype=np.float64)
        return [shown[k] for k in np.argsort(np.where(np.isnan(value), np.inf, value), kind="stable")]

    def take_events(self, events: list[object]) -> bool:
        """Apply the session's events in order; True when something changed. The fit's history gets one
        row per call that brought responses (or a new session)."""
        batch: list[tuple[str, dict[str, float]]] = []
        changed = responded = False
        for event in events:
            if isinstance(event, SessionStarted):
                self._add(batch)
                self._begin(event)
                batch, changed, responded = list(event.stored), True, True
            elif isinstance(event, ResponseStored) and self.sums is not None:
                batch.append((event.image_id, event.counts))
                changed = responded = True
                if event.window is not None:
                    self.source_window = event.window
                if event.spikes is not None and event.order is not None and event.span is not None:
                    self.rasters.add(event.order, event.image_id, event.spikes, event.span)
            elif isinstance(event, UnitsDiscovered) and self.sums is not None:
                self._add(batch)  # those came before the units, which counted 0 in them
                batch, changed = [], True
                self._add_units(event)
            elif isinstance(event, ImagesAdded) and self.sums is not None:
                self._add(batch)
                batch, changed = [], True
                self._add_images(event)
        self._add(batch)
        if changed and self.fit is not None:
            self.summary = self.fit.record_history() if responded else self.fit.summary()
        return changed

    def _begin(self, started: SessionStarted) -> None:
        if started.rasters is not None:
            self.rasters = started.rasters
        elif not started.recount:
            self.rasters = SpikeRasters(started.units)
        self.folder = Path(started.folder) if started.folder else None
        self.windows = dict(started.windows)
        if started.source_window is not None or not started.recount:
            self.source_window = started.source_window
        self.unit_map = dict(started.unit_map)
        self.sums = PerImageSums(started.units, started.image_ids)
        mapped = [u for u in started.units if u in started.predictions]
        predictions = (np.stack([started.predictions[u] for u in mapped]) if mapped
                       else np.zeros((0, len(started.image_ids))))
        self.fit = PopulationFit(mapped, started.image_ids, predictions, responses=self.sums)

    def _add(self, batch: list[tuple[str, dict[str, float]]]) -> None:
        """Presentations as (image id, counts per unit) into the sums; a unit without a count has none."""
        if batch and self.fit is not None and self.sums is not None:
            units = self.sums.units
            self.fit.add([image for image, _ in batch],
                         np.array([[counts.get(u, np.nan) for u in units] for _, counts in batch], dtype=np.float64))

    def _add_units(self, discovered: UnitsDiscovered) -> None:
        assert self.fit is not None and self.sums is not None  # a session has begun
        for unit in discovered.units:  # 0 counted in every stored response, as the store has it
            self.rasters.add_unit(unit)
            if unit in discovered.predictions:
                self.fit.add_unit(unit, discovered.predictions[unit], counted_before=0.0)
            else:
                self.sums.add_unit(unit, counted_before=0.0)

    def _add_images(self, added: ImagesAdded) -> None:
        assert self.fit is not None  # a session has begun
        units = self.fit.units
        self.fit.add_images(added.image_ids, [added.predictions[u] for u in units] if units
                            else np.zeros((0, len(added.image_ids))))
