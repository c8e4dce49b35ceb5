"""CompactRig: the compact V4 models of Cowley et al. (Nature 2026) in closed loop.

The repository root is this package: ``compactrig.engine`` (models), ``compactrig.stimuli`` (images),
``compactrig.plugins`` (sources, gates, markers), ``compactrig.rig`` (presenter, sessions, command line)
and ``compactrig.gui`` (the window). For scripts and notebooks, the few calls below cover the loop::

    import compactrig
    bank = compactrig.load_bank("published")            # or "demo", or a folder
    images = compactrig.read_images("images.zip")       # or a folder of PNG/JPEG files
    responses = compactrig.predict(bank, images.pixels, ["201025:2"])   # (neurons, images)
    designed = compactrig.synthesize(bank, "201025:2", n_images=4)      # a StimulusSet
    designed.save("my_set")
    stimulus_set = compactrig.read_stimulus_set("my_set")
    session = compactrig.read_session("sessions/session-20261123-101500")  # responses (units, images, repeats)

Each call imports what it needs when called, so ``import compactrig`` stays light (no torch, no Qt).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for type checkers only: importing these here would load torch with the package
    from pathlib import Path

    import numpy as np

    from compactrig.engine.files.image_files import ImageCollection
    from compactrig.engine.models.bank import ModelBank
    from compactrig.rig.session.responses import SessionResponses
    from compactrig.stimuli.stimulus_set import StimulusSet
    from compactrig.stimuli.synthesis import Direction

__all__ = ["load_bank", "read_images", "predict", "synthesize", "read_stimulus_set", "read_session", "__version__"]


def __getattr__(name: str):
    if name == "__version__":
        from compactrig.engine import __version__
        return __version__
    raise AttributeError(f"module 'compactrig' has no attribute {name!r}")


def load_bank(spec: str | Path | None = None) -> ModelBank:
    """A bank of compact models: None or ``"demo"`` (embedded), ``"published"`` (after ``compactrig models fetch``)
    or a folder holding ``models_torch/`` and ``nums_filters/``."""
    from compactrig.engine.models.bank import load_bank as load
    return load(spec)


def read_images(path: str | Path) -> ImageCollection:
    """The images of a folder or a ``.zip``, in file-name order, as uint8 ``(n, 112, 112, 3)`` with their ids."""
    from compactrig.engine.files.image_files import read_images as read
    return read(path)


def predict(bank: ModelBank, pixels: np.ndarray, neurons: Sequence[str] | None = None) -> np.ndarray:
    """Predicted responses ``(neurons, images)`` of uint8 images ``(n, 112, 112, 3)`` (every neuron when None)."""
    from compactrig.engine.models.fast_predict import Predictor
    return Predictor(bank).predict(pixels, None if neurons is None else list(neurons))


def synthesize(bank: ModelBank, neuron: str, n_images: int = 4, steps: int = 100, direction: Direction = "max",
               first_seed: int = 0) -> StimulusSet:
    """Images that maximize (or minimize) one neuron's predicted response, by the published method, as a stimulus
    set with full provenance (the same as ``compactrig synth``)."""
    import torch

    from compactrig.engine.models.fast_predict import FoldedModel
    from compactrig.stimuli.design import design_synthesized
    from compactrig.stimuli.stimulus_set import annotate
    from compactrig.stimuli.synthesis import SynthesisSettings
    neuron_id = bank.info(neuron).neuron_id
    model = FoldedModel(bank.model(neuron_id, dtype=torch.float64))
    design = design_synthesized(model, neuron_id, list(range(first_seed, first_seed + n_images)),
                                SynthesisSettings(direction=direction, steps=steps))
    return annotate(bank, design.images, design.records)


def read_stimulus_set(folder: str | Path) -> StimulusSet:
    """A stimulus set written by CompactRig (PNG files and ``manifest.json`` with each image's provenance)."""
    from compactrig.stimuli.stimulus_set import StimulusSet
    return StimulusSet.load(folder)


def read_session(folder: str | Path) -> SessionResponses:
    """A recorded session's responses in the published layout: ``(units, images, repeats)`` NaN-padded, with the
    image ids, units and the mapped units' model predictions."""
    from pathlib import Path

    from compactrig.rig.session.responses import read_responses
    return read_responses(Path(folder))
