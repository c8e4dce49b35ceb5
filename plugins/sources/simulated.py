"""Simulated neurons: Poisson spike counts around the predictions of bank models.

Each virtual unit's expected count per window is ``max(0, baseline + gain * prediction)``
(gain, baseline and latency settable per unit), drawn with a seeded generator, so the
whole loop runs with no rig. ``unknown`` adds units that are random mixtures of the bank's
neurons (normal random weights scaled so their absolute values sum to 1; ``mixture_size``
limits each mixture to that many randomly chosen neurons), for closed-loop work where the
neuron is new. Only the bank neurons some unit uses are ever evaluated.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from engine.bank import load_bank
from engine.fast_predict import Predictor
from engine.errors import CompactRigError
from plugins.sources.base import WINDOW_OPTIONS, Option, Presentation, Response, ResponseSource, split_values


class SimulatedSource(ResponseSource):
    name = "simulated"
    description = "virtual neurons: Poisson counts around bank-model predictions (no rig needed)"
    options = WINDOW_OPTIONS + (
        Option("bank", str, "demo", "model bank: demo, published or a folder"),
        Option("neurons", str, "", "comma-separated neuron ids to simulate (default: all of the bank; none: only mixtures)"),
        Option("gain", str, "1.0", "counts per unit of prediction, one value or one per unit"),
        Option("baseline", str, "2.0", "counts added to every response, one value or one per unit"),
        Option("latency_s", str, "0.05", "response latency in s, one value or one per unit"),
        Option("unknown", int, 0, "extra units that are random mixtures of the bank's neurons"),
        Option("mixture_size", int, 0, "bank neurons per mixture unit (0: all of the bank)"),
        Option("seed", int, 0, "random seed (spike counts and mixtures)"),
    )

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.bank = load_bank(self.settings["bank"])
        chosen = [n.strip() for n in self.settings["neurons"].split(",") if n.strip()] or self.bank.neuron_ids
        self.neurons = [] if chosen == ["none"] else self.bank.resolve(chosen)
        n_units = len(self.neurons) + self.settings["unknown"]
        if n_units == 0:
            raise CompactRigError("the simulated source has no units; name neurons or set unknown > 0")
        self.gain = np.array(split_values(self.settings["gain"], n_units, name="gain"))
        self.baseline = np.array(split_values(self.settings["baseline"], n_units, name="baseline"))
        self.latency = np.array(split_values(self.settings["latency_s"], n_units, name="latency_s"))
        self.rng = np.random.default_rng(self.settings["seed"])
        mixing = np.zeros((n_units, len(self.bank)))
        for unit, neuron_id in enumerate(self.neurons):
            mixing[unit, self.bank.neuron_ids.index(neuron_id)] = 1.0
        size = self.settings["mixture_size"] or len(self.bank)
        if not 0 < size <= len(self.bank):
            raise CompactRigError(f"mixture_size {size}: the bank has {len(self.bank)} neurons; use 1..{len(self.bank)}"
                                  " or 0 for all")
        for unit in range(len(self.neurons), n_units):
            members = np.sort(self.rng.choice(len(self.bank), size, replace=False))
            weights = self.rng.normal(size=size)
            mixing[unit, members] = weights / np.abs(weights).sum()
        self.mixing = mixing
        self.used = np.flatnonzero(np.abs(mixing).sum(axis=0) > 0)
        """Columns of ``mixing`` (bank neurons) that some unit uses."""
        self._units = [f"unit{k}" for k in range(n_units)]
        self._rates: dict[str, np.ndarray] = {}
        self._pending: deque[Presentation] = deque()

    @property
    def units(self) -> list[str]:
        return list(self._units)

    def ground_truth(self) -> dict[str, str]:
        """What each unit really is: a bank neuron id, or ``mixture``."""
        return {unit: (self.neurons[k] if k < len(self.neurons) else "mixture") for k, unit in enumerate(self._units)}

    def expected_counts(self, predictions: np.ndarray) -> np.ndarray:
        """Expected count per unit (rows) for predictions ``(n_used, n_images)`` of the ``used`` bank neurons."""
        return np.maximum(0.0, self.baseline[:, None] + self.gain[:, None] * (self.mixing[:, self.used] @ predictions))

    def true_rates(self, pixels: np.ndarray, predictor: Predictor | None = None) -> np.ndarray:
        """Expected counts ``(n_units, n_images)``: what each unit really does with these images."""
        predictor = predictor or Predictor(self.bank)
        return self.expected_counts(predictor.predict(pixels, [self.bank.neuron_ids[i] for i in self.used]))

    def prepare(self, image_ids: list[str], pixels: np.ndarray) -> None:
        rates = self.true_rates(pixels)
        self._rates.update({image_id: rates[:, i] for i, image_id in enumerate(image_ids)})

    def submit(self, presentation: Presentation) -> None:
        self._pending.append(presentation)

    def collect(self, now: float) -> list[Response]:
        ready = []
        last_latency = float(self.latency.max())
        while self._pending and now >= self._pending[0].onset_time + last_latency + self.window[1]:
            shown = self._pending.popleft()
            rates = self._rates.get(shown.image_id)
            if rates is None:
                ready.append(Response(shown.order, shown.image_id, None, self.window,
                                      f"image {shown.image_id} was not prepared for the simulated source"))
                continue
            counts = self.rng.poisson(rates)
            ready.append(Response(shown.order, shown.image_id,
                                  {u: float(c) for u, c in zip(self._units, counts)}, self.window))
        return ready


def calibrated_options(options: dict[str, Any], images: np.ndarray, mean_rate: float, sd: float) -> dict[str, Any]:
    """``options`` with per-unit gain and baseline set so each unit's expected count over ``images``
    has mean ``mean_rate`` and standard deviation ``sd`` (mixtures otherwise differ wildly in scale)."""
    probe = SimulatedSource(**{**options, "gain": "1", "baseline": "0"})
    raw = probe.mixing[:, probe.used] @ Predictor(probe.bank).predict(
        images, [probe.bank.neuron_ids[i] for i in probe.used])
    spread = raw.std(axis=1)
    if (spread <= 0).any():
        raise CompactRigError("a simulated unit does not vary over these images; use more varied images")
    gain = sd / spread
    baseline = mean_rate - gain * raw.mean(axis=1)
    return {**options, "gain": ",".join(f"{g:.9g}" for g in gain), "baseline": ",".join(f"{b:.9g}" for b in baseline)}
