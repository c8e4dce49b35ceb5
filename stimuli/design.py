"""Designed images with their provenance records: the one place the CLI and the window make them.

Each function runs one method for one neuron (or one target unit inside it) and returns
the images as shown (uint8), the target's response to each, and a ``StimulusRecord`` per
image whose id and method settings say exactly how it was made, ready to be annotated
and added to a stimulus set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from compactrig.engine.models.fast_predict import FoldedModel
from compactrig.engine.progress import Progress
from compactrig.stimuli.adversarial import Push, adversarial
from compactrig.stimuli.gaudy import GaudyMode, gaudy
from compactrig.stimuli.stimulus_set import StimulusRecord
from compactrig.stimuli.synthesis import SynthesisPartial, SynthesisSettings, synthesize
from compactrig.stimuli.targets import OUTPUT, UnitTarget


@dataclass
class Design:
    """New images (uint8 ``(n, 112, 112, 3)``), their target responses and their records."""

    images: np.ndarray
    responses: np.ndarray
    records: list[StimulusRecord]
    cancelled: bool = False
    source_responses: np.ndarray | None = None
    """The target's response to each image's source image, for images made from one (adversarial); None
    otherwise."""

    def response_texts(self) -> list[str]:
        """What each result says of the target's predicted response: the value, or for an image made from a
        source image the source's response then the new one, ``source → new`` (the change is the point of an
        adversarial image, and the new value alone does not show it); "" where there is no target (gaudy)."""
        before = self.source_responses if self.source_responses is not None else np.full(len(self.responses),
                                                                                          np.nan)
        return ["" if not np.isfinite(after) else f"{after:.3f}" if not np.isfinite(source)
                else f"{source:.3f} → {after:.3f}" for source, after in zip(before, self.responses)]


def _tag(neuron_id: str, target: UnitTarget) -> str:
    unit = "" if target.stage is None else "_u" + target.describe().replace(":", "-")
    return neuron_id.replace(":", "-") + unit


def design_synthesized(model: FoldedModel, neuron_id: str, seeds: list[int],
                       settings: SynthesisSettings = SynthesisSettings(), target: UnitTarget = OUTPUT,
                       progress: Progress | None = None, cancelled: Callable[[], bool] | None = None,
                       partial: Callable[[SynthesisPartial], None] | None = None) -> Design:
    """Maximizing or minimizing images, one per seed (cancelled: the best so far); ``partial`` as
    ``synthesize``'s, for a live preview."""
    result = synthesize(model, seeds, settings, target, progress=progress, cancelled=cancelled, partial=partial)
    method = {"method": "gradient", "target": target.describe(), **settings.as_dict()}
    if result.cancelled:
        method["stopped_after_steps"] = result.steps_done
    records = [StimulusRecord(image_id=f"{settings.direction}_{_tag(neuron_id, target)}_seed{seed}",
                              kind=settings.direction, target_neuron=neuron_id, method=method, seed=seed)
               for seed in seeds]
    return Design(result.images, result.responses, records, result.cancelled)


def design_adversarial(model: FoldedModel, neuron_id: str, natural_ids: list[str], natural: np.ndarray,
                       direction: Push, eps: float = 8.0, steps: int = 20, target: UnitTarget = OUTPUT,
                       progress: Progress | None = None,
                       cancelled: Callable[[], bool] | None = None) -> Design:
    """Natural images nudged (at most ``eps`` per channel value) to raise or lower the target."""
    result = adversarial(model, natural, direction, eps, steps, target, progress=progress, cancelled=cancelled)
    method = {"method": "projected-gradient", "direction": direction, "eps": eps, "steps": steps,
              "target": target.describe()}
    records = [StimulusRecord(image_id=f"adv{direction}_{_tag(neuron_id, target)}_{source}", kind="adversarial",
                              target_neuron=neuron_id, source_image=source,
                              method={**method, "response_before": float(b), "response_after": float(a),
                                      "max_abs_change": float(m), "rms_change": float(r)})
               for source, b, a, m, r in zip(natural_ids, result.before, result.after, result.max_abs, result.rms)]
    return Design(result.images, result.after, records, source_responses=result.before)


def design_gaudy(natural_ids: list[str], natural: np.ndarray, mode: GaudyMode = "channel",
                 sigma: float = 0.0) -> Design:
    """Gaudy versions of natural images (no target: responses are filled in by annotation)."""
    images = gaudy(natural, mode, sigma)
    method = {"method": "gaudy", "mode": mode, "sigma": sigma}
    records = [StimulusRecord(image_id=f"gaudy_{source}", kind="gaudy", source_image=source, method=method)
               for source in natural_ids]
    return Design(images, np.full(len(images), np.nan), records)
