"""Every unit's spike times around the onsets, kept compactly for the rasters and PSTHs drawn at the rig.

A session of 100 units and 10,000 presentations holds millions of spikes, so no spike is a Python
object: per unit, one growing float32 array of times (s from the onset) and one of the presentation
they belong to (its index here, in the order added), appended in amortised constant time. Each
unit's PSTH is kept as a running 1 ms histogram (``latency.binned``'s bins) over the first
presentation's span, brought up to date from the spikes added since it was last asked for, so a
redraw costs the bins, not the spikes. ``LiveSession`` feeds one from every response that kept its
spikes; a stored session's is read from its trial store (``from_store``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from compactrig.engine.stats.latency import BIN_S, Latency, binned, response_latency
from compactrig.rig.session.trial_store import TrialStore
from compactrig.rig.session.windows import in_window


class _Growing:
    """A 1-D array appended to in amortised constant time; ``view`` is what was added (do not write)."""

    def __init__(self, dtype: type) -> None:
        self._data: np.ndarray = np.zeros(16, dtype=dtype)
        self.n = 0

    def extend(self, values: np.ndarray) -> None:
        end = self.n + len(values)
        if end > len(self._data):
            self._grow(end)
        self._data[self.n:end] = values
        self.n = end

    def _grow(self, end: int) -> None:
        grown = np.zeros(max(end, 2 * len(self._data)), dtype=self._data.dtype)
        grown[:self.n] = self._data[:self.n]
        self._data = grown  # a reader's earlier view keeps the old buffer, whose first ``n`` stay valid

    def append(self, value: float, count: int = 1) -> None:
        """``value``, ``count`` times."""
        end = self.n + count
        if end > len(self._data):
            self._grow(end)
        self._data[self.n:end] = value
        self.n = end

    @property
    def view(self) -> np.ndarray:
        n = self.n  # read before the buffer: the buffer then holds at least ``n`` values
        return self._data[:n]


class _Unit:
    """One unit's spikes: times and the presentation of each, its running histogram, when it was added."""

    def __init__(self, first: int) -> None:
        self.times = _Growing(np.float32)
        self.rows = _Growing(np.int32)
        self.first = first
        """The presentations before it was added hold no spikes of it (it was not heard of yet)."""
        self.histogram: np.ndarray | None = None
        self.histogrammed = 0
        """How many of ``times`` ``histogram`` holds."""


class SpikeRasters:
    """Every unit's spike times per presentation, and each presentation's image and span."""

    def __init__(self, units: Sequence[str] = ()) -> None:
        self._units: dict[str, _Unit] = {}
        self.image_ids: list[str] = []
        """The images seen, in the order first presented (``image_index`` points into it)."""
        self._image_index: dict[str, int] = {}
        self._presentation_image = _Growing(np.int32)
        self._orders = _Growing(np.int64)
        self._span_start = _Growing(np.float64)
        self._span_end = _Growing(np.float64)
        self.grid: tuple[float, float] | None = None
        """The span the PSTHs cover: the first presentation's (a 1 ms bin edge at each end)."""
        for unit in units:
            self.add_unit(unit)

    @property
    def units(self) -> list[str]:
        return list(self._units)

    @property
    def n_presentations(self) -> int:
        return self._orders.n

    @property
    def has_spikes(self) -> bool:
        """Some presentation's spike times were kept (False for a session counted only: a replay)."""
        return self.n_presentations > 0

    @property
    def orders(self) -> np.ndarray:
        """Each presentation's number in the session, in the order added."""
        return self._orders.view

    @property
    def span(self) -> tuple[float, float]:
        """The span every presentation kept (s from the onset); (0, 0) before any."""
        if not self.has_spikes:
            return 0.0, 0.0
        return float(self._span_start.view.max()), float(self._span_end.view.min())

    def add_unit(self, unit: str) -> None:
        """A unit heard of from now on (none of its spikes in the presentations added before)."""
        if unit not in self._units:
            self._units[unit] = _Unit(self.n_presentations)

    def add(self, order: int, image_id: str, spikes: dict[str, np.ndarray], span: tuple[float, float]) -> None:
        """One presentation's spike times (unit -> s from the onset; a unit left out fired none) kept over
        ``span``; a unit not heard of before is added."""
        row = self.n_presentations
        for unit, times in spikes.items():
            if unit not in self._units:
                self._units[unit] = _Unit(row)
            kept = self._units[unit]
            kept.times.extend(times)
            kept.rows.append(row, len(times))
        image = self._image_index.setdefault(image_id, len(self.image_ids))
        if image == len(self.image_ids):
            self.image_ids.append(image_id)
        if self.grid is None:
            self.grid = (math.floor(span[0] / BIN_S + 1e-6) * BIN_S, math.ceil(span[1] / BIN_S - 1e-6) * BIN_S)
        self._presentation_image.append(image)
        self._span_start.append(span[0])
        self._span_end.append(span[1])
        self._orders.append(order)  # last: a reader on another thread sees whole presentations

    def psth(self, unit: str, bin_s: float) -> tuple[np.ndarray, np.ndarray]:
        """``unit``'s PSTH over ``grid``: bin centres (s from the onset) and the rate (Hz) over the presentations
        since it was heard of, in bins of ``bin_s`` rounded to whole ms."""
        histogram, width = self._histogram(self._units[unit]), max(1, round(bin_s / BIN_S))
        n_bins = len(histogram) // width
        counts = histogram[:n_bins * width].reshape(n_bins, width).sum(axis=1)
        n = self.n_presentations - self._units[unit].first
        start = self.grid[0] if self.grid is not None else 0.0
        centres = start + (np.arange(n_bins) + 0.5) * width * BIN_S
        return centres, counts / (max(n, 1) * width * BIN_S)

    def population_psth(self, bin_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Bin centres and (units, bins) PSTHs, each unit's divided by its peak (0..1; a silent unit: 0)."""
        rates = [self.psth(unit, bin_s) for unit in self._units]
        if not rates:
            return np.zeros(0), np.zeros((0, 0))
        image = np.stack([rate for _, rate in rates])
        peak = image.max(axis=1, keepdims=True)
        return rates[0][0], np.divide(image, peak, out=np.zeros_like(image), where=peak > 0)

    def raster(self, unit: str, image_order: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``unit``'s spikes as points: times (x, s from the onset) and rows (y), one row per presentation
        of the images of ``image_order``, grouped by image in that order from row 0 (its presentations in
        the order shown); presentations of other images are left out."""
        rank = np.full(len(self.image_ids), -1, dtype=np.int64)
        for position, image_id in enumerate(image_order):
            if image_id in self._image_index:
                rank[self._image_index[image_id]] = position
        kept = self._units[unit]
        rows = kept.rows.view
        times = kept.times.view[:len(rows)]
        presentation_rank = rank[self._presentation_image.view[:self.n_presentations]]
        listed = np.flatnonzero(presentation_rank >= 0)
        ordered = listed[np.argsort(presentation_rank[listed], kind="stable")]
        row_of = np.full(len(presentation_rank), -1, dtype=np.int64)
        row_of[ordered] = np.arange(len(ordered))
        y = row_of[rows]
        shown = y >= 0
        return times[shown], y[shown].astype(np.float32)

    def counts(self, unit: str, window: tuple[float, float]) -> np.ndarray:
        """Per presentation (in the order added): ``unit``'s spikes in ``[start, end)`` (``windows.in_window``)."""
        kept = self._units[unit]
        rows = kept.rows.view
        inside = in_window(kept.times.view[:len(rows)], window)
        return np.bincount(rows[inside], minlength=self.n_presentations)[:self.n_presentations].astype(np.float64)

    def trains(self, unit: str) -> list[np.ndarray]:
        """``unit``'s spike times per presentation since it was heard of (views: do not write)."""
        kept, n = self._units[unit], self.n_presentations  # ``n`` first: ``rows`` then holds all of them
        rows = kept.rows.view
        bounds = np.searchsorted(rows, np.arange(kept.first, n + 1))
        times = kept.times.view
        return [times[bounds[k]:bounds[k + 1]] for k in range(n - kept.first)]

    def latency(self, unit: str) -> Latency:
        """``unit``'s response latency from its trains (``latency.response_latency``, over ``span``): a
        moment's work for a large session, safe off the thread that adds (it reads what was added so far)."""
        return response_latency(self.trains(unit), self.span)

    def _histogram(self, kept: _Unit) -> np.ndarray:
        """``kept``'s 1 ms histogram over ``grid``, brought up to date with the spikes added since."""
        grid = self.grid if self.grid is not None else (0.0, 0.0)
        if kept.histogram is None:
            kept.histogram = np.zeros(int(round((grid[1] - grid[0]) / BIN_S)), dtype=np.float64)
        times = kept.times.view
        if len(times) > kept.histogrammed:
            kept.histogram += binned([times[kept.histogrammed:]], grid)[0]
            kept.histogrammed = len(times)
        return kept.histogram


def from_store(store: TrialStore, units: list[str]) -> SpikeRasters:
    """The rasters of every presentation shown without abort whose spikes ``store`` kept (empty for a
    session counted only), ``units`` in their order."""
    rasters = SpikeRasters(units)
    shown = {p.order: p.image_id for p in store.presentations() if not p.aborted}
    for order, (span, times) in store.spike_times(units).items():
        if order in shown:
            rasters.add(order, shown[order], {u: t for u, t in zip(units, times) if len(t)}, span)
    return rasters
