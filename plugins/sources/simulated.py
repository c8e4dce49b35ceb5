"""Simulated neurons: Poisson spikes around the predictions of bank models.

Each virtual unit's expected count in its response (the ``RESPONSE_S`` after its latency) is
``max(0, baseline + gain * prediction)`` (gain, baseline and latency settable per unit), drawn from a
generator seeded with (seed, presentation number), so the whole loop runs with no rig, and a resumed
session carries on the random stream instead of repeating it (presentation numbers are never reused).
The drawn spikes are placed in the response by a transient profile (``RESPONSE_PROFILE``, a beta
density: a sharp rise at the latency, then decay); the rest of the span fires at the spontaneous rate
``baseline / RESPONSE_S``. The counts delivered are the spikes in the counting window, as a recording
system's would be: with the default latency (0.05 s) and window (0.05-0.15 s) they are the drawn counts,
and a unit whose latency the window misses loses part of its response. ``unknown`` adds units that are
random mixtures of the bank's neurons (normal random weights scaled so their absolute values sum to
1; ``mixture_size`` limits each mixture to that many randomly chosen neurons), for closed-loop work
where the neuron is new. A raw mixture of weights summing to 1 in absolute value barely moves (it
averages drives of both signs), so by default each mixture unit is calibrated to fire like the bank-
neuron units: its expected count over fixed reference images (probes and textures) gets their mean
and spread (``mixture_counts``). Only the bank neurons some unit uses are ever evaluated.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

import numpy as np

from compactrig.engine.errors import CompactRigError
from compactrig.engine.models.bank import load_bank
from compactrig.plugins.sources.base import (
    SPIKE_OPTIONS,
    WINDOW_OPTIONS,
    Option,
    Presentation,
    Response,
    ResponseSource,
    split_values,
)

if TYPE_CHECKING:
    from compactrig.engine.models.fast_predict import Predictor


RESPONSE_S = 0.1
"""How long a virtual unit's response to an image lasts after its latency, s."""
RESPONSE_PROFILE = (1.5, 2.5)
"""Beta-density shape of the response over its ``RESPONSE_S`` (rises at once, peaks a third in, decays)."""
MAX_UNKNOWN = 2048
"""Most mixture units (``unknown``): twice the units a spike source takes by default (``MAX_UNITS``)."""
MAX_GAIN = 1000.0
"""Largest gain either way, counts per unit of prediction (negative: a unit suppressed by what drives its model;
synthesized images drive published models to ~55, so counts stay within what a response may hold)."""
MAX_BASELINE = 1000.0
"""Largest baseline, counts per response."""
CALIBRATION_TEXTURES = 18
CALIBRATION_SEED = 20260
"""The reference images that mixture units are calibrated on are the probe family and these textures
(fixed, so a seed names a unit; probes because the demo neurons barely vary over textures)."""


def calibration_images() -> np.ndarray:
    """uint8 ``(48, 112, 112, 3)``: the probe family and 18 seeded pink-noise textures."""
    from compactrig.stimuli.probes import probe_family  # with the stimulus sets' PyTorch: not for `rig check`
    from compactrig.stimuli.textures import pink_noise_images
    return np.concatenate([np.stack([p.pixels for p in probe_family()]),
                           pink_noise_images(CALIBRATION_TEXTURES, seed=CALIBRATION_SEED)])


class SimulatedSource(ResponseSource):
    name = "simulated"
    description = "virtual neurons: Poisson spikes around bank-model predictions (no rig needed)"
    options = WINDOW_OPTIONS + SPIKE_OPTIONS + (
        Option("bank", str, "demo", "model bank: demo, published or a folder"),
        Option("neurons", str, "", "comma-separated neuron ids to simulate (default: all of the bank; "
               "none: only mixtures)"),
        Option("gain", str, "1.0", "counts per unit of prediction, one value or one per unit"),
        Option("baseline", str, "2.0", "counts added to every response, one value or one per unit"),
        Option("latency_s", str, "0.05", "response latency in s (its response lasts 0.1 s from then), one value "
               "or one per unit"),
        Option("unknown", int, 0, "extra units that are random mixtures of the bank's neurons", 0, MAX_UNKNOWN),
        Option("mixture_size", int, 0, "bank neurons per mixture unit (0: all of the bank)"),
        Option("mixture_counts", str, "auto", "mixture units' expected count over reference probes and textures: "
               "auto (mean and SD as the bank-neuron units'), MEAN,SD, or raw (gain and baseline as given)"),
        Option("seed", int, 0, "random seed (spike counts and mixtures), 0 or more", 0),
    )

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.bank = load_bank(self.settings["bank"])
        chosen = [n.strip() for n in self.settings["neurons"].split(",") if n.strip()] or self.bank.neuron_ids
        self.neurons = [] if chosen == ["none"] else self.bank.resolve(chosen)
        n_units = len(self.neurons) + self.settings["unknown"]
        if n_units == 0:
            raise CompactRigError("the simulated source has no units; name neurons or set unknown > 0")
        self.gain = np.array(split_values(self.settings["gain"], n_units, name="gain", low=-MAX_GAIN, high=MAX_GAIN))
        self.baseline = np.array(split_values(self.settings["baseline"], n_units, name="baseline", low=0.0,
                                              high=MAX_BASELINE))
        self.latency = np.array(split_values(self.settings["latency_s"], n_units, name="latency_s"))
        latest = self.settings["spikes_to_s"] - RESPONSE_S
        if not all(0 <= latency <= latest for latency in self.latency):  # NaN fails too
            raise CompactRigError(f"latency_s = {self.settings['latency_s']}: each from 0 to {latest:g} s (the "
                                  f"response lasts {RESPONSE_S:g} s and must end within spikes_to_s)")
        rng = np.random.default_rng(self.settings["seed"])  # the mixtures; counts are drawn per presentation
        mixing = np.zeros((n_units, len(self.bank)))
        for unit, neuron_id in enumerate(self.neurons):
            mixing[unit, self.bank.neuron_ids.index(neuron_id)] = 1.0
        size = self.settings["mixture_size"] or len(self.bank)
        if not 0 < size <= len(self.bank):
            raise CompactRigError(f"mixture_size {size}: the bank has {len(self.bank)} neurons; use 1..{len(self.bank)}"
                                  " or 0 for all")
        for unit in range(len(self.neurons), n_units):
            members = np.sort(rng.choice(len(self.bank), size, replace=False))
            weights = rng.normal(size=size)
            mixing[unit, members] = weights / np.abs(weights).sum()
        self.mixing = mixing
        self.used = np.flatnonzero(np.abs(mixing).sum(axis=0) > 0)
        """Columns of ``mixing`` (bank neurons) that some unit uses."""
        self.target_counts = self._parse_mixture_counts()
        self._calibrated = not self.settings["unknown"] or self.target_counts == "raw"
        """Mixture units are calibrated on first use, not here: building a source (which the window does to
        check its options) must stay quick even for mixtures of all 219 published neurons."""
        self._units = [f"unit{k}" for k in range(n_units)]
        self._rates: dict[str, np.ndarray] = {}
        self._pending: deque[Presentation] = deque()

    @property
    def units(self) -> list[str]:
        return list(self._units)

    def ground_truth(self) -> dict[str, str]:
        """What each unit really is: a bank neuron id, or ``mixture``."""
        return {unit: (self.neurons[k] if k < len(self.neurons) else "mixture") for k, unit in enumerate(self._units)}

    def _drive(self, images: np.ndarray, predictor: Predictor | None = None) -> np.ndarray:
        """Each unit's mixture of its bank neurons' predictions ``(n_units, n_images)``, before gain and baseline."""
        from compactrig.engine.models.fast_predict import Predictor  # PyTorch only once counts are needed: `rig check`
        predictor = predictor or Predictor(self.bank)
        return self.mixing[:, self.used] @ predictor.predict(images, [self.bank.neuron_ids[i] for i in self.used])

    def true_rates(self, pixels: np.ndarray, predictor: Predictor | None = None) -> np.ndarray:
        """Expected counts ``(n_units, n_images)``: what each unit really does with these images."""
        self.calibrate()
        return np.maximum(0.0, self.baseline[:, None] + self.gain[:, None] * self._drive(pixels, predictor))

    def _parse_mixture_counts(self) -> str | tuple[float, float]:
        setting = self.settings["mixture_counts"].strip().lower()
        if setting in ("auto", "raw"):
            return setting
        try:
            mean, sd = (float(v) for v in setting.split(","))
        except ValueError:
            raise CompactRigError(f"mixture_counts = {setting!r}: give auto, raw or MEAN,SD "
                                  "(for example 8,3)") from None
        if not sd > 0:
            raise CompactRigError(f"mixture_counts = {setting!r}: the SD must be above 0")
        return mean, sd

    def calibrate(self) -> None:
        """Apply ``mixture_counts`` (done on first use otherwise): over the reference images, each mixture unit
        gets the target mean and SD (``auto``: the averages of the bank-neuron units; with no such unit, of the
        bank's neurons at gain 1 and baseline 2)."""
        if self._calibrated:
            return
        images = calibration_images()
        drive = self._drive(images)
        known = len(self.neurons)
        if isinstance(self.target_counts, tuple):  # not "raw": a raw source is calibrated from the start
            mean, sd = self.target_counts
        else:
            from compactrig.engine.models.fast_predict import Predictor
            counts = (np.maximum(0.0, self.baseline[:known, None] + self.gain[:known, None] * drive[:known]) if known
                      else np.maximum(0.0, 2.0 + Predictor(self.bank).predict(images)))
            mean, sd = float(counts.mean()), float(counts.std(axis=1).mean())
        self._scale_mixtures(drive[known:], mean, sd)

    def calibrate_mixtures(self, images: np.ndarray, mean: float, sd: float) -> None:
        """Each mixture unit's expected count over ``images`` gets this mean and SD (benchmarks and tests
        calibrate on the very images they show)."""
        self._scale_mixtures(self._drive(images)[len(self.neurons):], mean, sd)

    def _scale_mixtures(self, drive: np.ndarray, mean: float, sd: float) -> None:
        """Gain and baseline of the mixture units from their ``drive`` over the calibration images."""
        spread = drive.std(axis=1)
        if not sd > 0 or (spread <= 0).any():
            raise CompactRigError("mixture_counts: a mixture unit or the bank units do not vary over the calibration "
                                  "images; give MEAN,SD or raw")
        known = len(self.neurons)
        self.gain[known:] = sd / spread
        self.baseline[known:] = mean - self.gain[known:] * drive.mean(axis=1)
        self._calibrated = True

    def prepare(self, image_ids: list[str], pixels: np.ndarray) -> None:
        rates = self.true_rates(pixels)
        self._rates.update({image_id: rates[:, i] for i, image_id in enumerate(image_ids)})

    def submit(self, presentation: Presentation) -> None:
        self._pending.append(presentation)

    def spikes(self, order: int, rates: np.ndarray) -> list[np.ndarray]:
        """Each unit's spike times (s from the onset, sorted) over the span in presentation ``order`` of an
        image with expected response counts ``rates``."""
        rng = np.random.default_rng([self.settings["seed"], order])
        evoked = rng.poisson(rates)  # first: the counts of the default window are the stream's first draws
        span = self.spike_span
        assert span is not None  # the simulated source always keeps spikes
        trains = []
        for k, count in enumerate(evoked):
            start = float(self.latency[k])
            response = start + RESPONSE_S * rng.beta(*RESPONSE_PROFILE, size=count)
            outside = (span[1] - span[0]) - RESPONSE_S
            spontaneous = span[0] + rng.uniform(0.0, outside, rng.poisson(max(self.baseline[k], 0.0) / RESPONSE_S
                                                                          * outside))
            spontaneous[spontaneous >= start] += RESPONSE_S  # the span outside the response
            times = np.sort(np.concatenate([response, spontaneous]))
            trains.append(times[(times >= span[0]) & (times < span[1])])
        return trains

    def collect(self, now: float) -> list[Response]:
        ready = []
        while self._pending and now >= self._pending[0].onset_time + self.due_s:
            shown = self._pending.popleft()
            rates = self._rates.get(shown.image_id)
            if rates is None:
                ready.append(Response(shown.order, shown.image_id, None, self.window,
                                      f"image {shown.image_id} was not prepared for the simulated source"))
                continue
            trains = self.spikes(shown.order, rates)
            start, end = self.window
            counts = {unit: float(np.count_nonzero((times >= start) & (times < end)))
                      for unit, times in zip(self._units, trains)}
            ready.append(Response(shown.order, shown.image_id, counts, self.window,
                                  spikes=dict(zip(self._units, trains)), span=self.spike_span))
        return ready

