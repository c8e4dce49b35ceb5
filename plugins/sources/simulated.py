"""Simulated neurons: Poisson spike counts around the predictions of bank models.

Each virtual unit's expected count per window is ``max(0, baseline + gain * prediction)``
(gain, baseline and latency settable per unit), drawn with a seeded generator, so the
whole loop runs with no rig. ``unknown`` adds units that are random mixtures of the bank's
neurons (normalised random weights), for closed-loop work where the neuron is new.
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
        Option("neurons", str, "", "comma-separated neuron ids to simulate (default: all of the bank)"),
        Option("gain", str, "1.0", "counts per unit of prediction, one value or one per unit"),
        Option("baseline", str, "2.0", "counts added to every response, one value or one per unit"),
        Option("latency_s", str, "0.05", "response latency in s, one value or one per unit"),
        Option("unknown", int, 0, "extra units that are random mixtures of the bank's neurons"),
        Option("seed", int, 0, "random seed (spike counts and mixtures)"),
    )

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.bank = load_bank(self.settings["bank"])
        chosen = [n.strip() for n in self.settings["neurons"].split(",") if n.strip()] or self.bank.neuron_ids
        self.neurons = self.bank.resolve(chosen)
        n_units = len(self.neurons) + self.settings["unknown"]
        if n_units == 0:
            raise CompactRigError("the simulated source has no units; name neurons or set unknown > 0")
        self.gain = np.array(split_values(self.settings["gain"], n_units))
        self.baseline = np.array(split_values(self.settings["baseline"], n_units))
        self.latency = np.array(split_values(self.settings["latency_s"], n_units))
        self.rng = np.random.default_rng(self.settings["seed"])
        mixing = np.zeros((n_units, len(self.bank)))
        for unit, neuron_id in enumerate(self.neurons):
            mixing[unit, self.bank.neuron_ids.index(neuron_id)] = 1.0
        for unit in range(len(self.neurons), n_units):
            weights = self.rng.normal(size=len(self.bank))
            mixing[unit] = weights / np.abs(weights).sum()
        self.mixing = mixing
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
        """Expected count per unit (rows) for bank predictions ``(n_bank, n_images)``."""
        return np.maximum(0.0, self.baseline[:, None] + self.gain[:, None] * (self.mixing @ predictions))

    def prepare(self, image_ids: list[str], pixels: np.ndarray) -> None:
        predictions = Predictor(self.bank).predict(pixels)
        rates = self.expected_counts(predictions)
        self._rates = {image_id: rates[:, i] for i, image_id in enumerate(image_ids)}

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
