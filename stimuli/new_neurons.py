"""Compact models for the neurons on today's electrode: readout, distillation, pruning, a bank.

The paper's path, run for recorded units that no published model describes:

1. **Readout.** Every unit's responses are regressed on the bank's responses to the same images:
   outputs, and last-stage maps averaged over blocks, so the readout keeps where in the image a
   feature is (``compactrig.engine.readout.features.outputs_and_grid``). One ridge readout per
   spatial scale, their mean the readout (``compactrig.engine.readout.scale``; penalties by nested
   cross-validation, ``compactrig.engine.readout.ridge``; repeats kept per image).
2. **Distillation.** The readout labels many more images than were recorded
   (``compactrig.stimuli.distillation_images``), and a compact model of the published
   architecture learns those labels (``compactrig.engine.training.distill``), starting from a bank model's
   early filters (the paper's finding that early filters are shared).
3. **Pruning** while the held-out r holds, then the models are written as a bank in the
   published layout with their provenance (``compactrig.engine.models.bank_writer``).

A fifth of the recorded images (seeded) is held out of everything that is fitted, so the
readout's and the compact model's held-out r in the provenance are honest.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from compactrig.engine.errors import CompactRigError
from compactrig.engine.models.bank import ModelBank
from compactrig.engine.models.bank_writer import check_session_name, write_model
from compactrig.engine.models.fast_predict import Predictor
from compactrig.engine.models.layout import parameter_count
from compactrig.engine.progress import Progress, named
from compactrig.engine.readout.feature_cache import cached_outputs_and_grid
from compactrig.engine.readout.ridge import within_training_range
from compactrig.engine.readout.scale import FINEST_GRID, SCALES, describe_scales, fit_scale_readout, scale_features
from compactrig.engine.stats.correlation import pearson_r
from compactrig.engine.stats.r2_er import r2_er
from compactrig.engine.stats.response_sums import PerImageSums
from compactrig.engine.training.distill import DistillSettings, Pixels, check_train_from_stage
from compactrig.engine.training.unit_jobs import JobResult, Runner, UnitJob, run_here
from compactrig.stimuli.distillation_images import distillation_images

IMAGE_ID = re.compile(r"^image(\d+)$")
WIDE_HEAD = 10
"""Stage-2 channels of a donor with a wide head. A student keeps its donor's stages 0-1 and retrains stage
2's channel mixing onwards, so a donor from the narrow majority (the published models' median is 3 stage-2
channels) may leave it little to learn with. On 9 units of session 190923 (every 4th; NOTES.md, session 13),
students from the best-matching of the published models with 10 or more stage-2 channels within the cap
beat those from the best-matching donor of any width on 7 units (r +0.027 on average); on session 201025,
where only 12 such models remain once its own are set aside, they were worse (median ratio 0.900x against
0.920x). Hence both are tried per unit (``DistillSettings.trial_epochs``)."""
MAX_RESPONSE = 1e6
"""Largest response (a count or rate, either sign) taken from a file: far above any neuron's, far below where its
square would overflow the sums the readout is fitted on."""
MIN_IMAGES = 50
"""Images with responses below which no compact model is attempted (a fifth is held out)."""


@dataclass(frozen=True)
class NewNeuronSettings:
    validation_fraction: float = 0.2
    distill: DistillSettings = field(default_factory=DistillSettings)
    seed: int = 0


@dataclass(frozen=True)
class Teacher:
    """What labels the distillation images instead of the readout, for diagnostics: given the units' own
    published models (``benchmarks/new_neurons.py --teacher published``), distillation has the best teacher
    there is, so the compact models' r shows how far distillation itself can go."""

    name: str
    predict: Callable[[np.ndarray], np.ndarray]
    """``(units, images)`` responses, units as ``fit_new_neurons``' ``units``, for uint8 ``(N, 112, 112, 3)``."""


@dataclass(frozen=True)
class NewNeuron:
    """One unit's result: its id in the new bank and how well each step predicts held-out images."""

    neuron_id: str
    unit: int
    readout_r: float
    compact_r: float
    n_parameters: int
    filters: tuple[int, ...]
    donor: str
    seconds: float
    readout_r2_er: float = float("nan")
    compact_r2_er: float = float("nan")
    """Noise-corrected R^2 (Pospisil & Bair, the paper's measure) of the readout and of the compact model on the
    held-out images, where the recording has two or more repeats of enough of them (NaN otherwise)."""
    readout_judged: np.ndarray | None = None
    """The readout's predictions of ``judged_pixels`` (``fit_new_neurons``), when given: a benchmark judges the
    readout on the same images as the compact and the published models, so what distillation loses shows."""


def response_sums(image_ids: list[str], responses: np.ndarray, units: list[int]) -> PerImageSums:
    """Per image (rows, in ``image_ids`` order) and unit (named by its row number): counts, sums, sums of
    squares of the recorded responses. ``responses`` is ``(neurons, images)`` repeat-averaged or ``(neurons,
    images, repeats)`` NaN-padded (a NaN is no response); image ``imageNNNN`` is column ``NNNN - 1`` (as the
    replay source reads them)."""
    if np.asarray(responses).dtype.kind not in "iuf":
        raise CompactRigError(f"responses are {np.asarray(responses).dtype} values, not numbers; save the spike "
                              "counts or rates as a numeric array (NaN where a repeat is missing)")
    data = np.asarray(responses, dtype=np.float64)
    given = data[np.isfinite(data)]
    if np.isinf(data).any() or (given.size and np.abs(given).max() > MAX_RESPONSE):
        raise CompactRigError(f"responses hold {'infinite values' if np.isinf(data).any() else 'values beyond 1e6'}; "
                              "give spike counts or rates, NaN where a repeat is missing")
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim != 3:
        raise CompactRigError(f"responses have shape {data.shape}; expected (neurons, images) or "
                              "(neurons, images, repeats)")
    bad = [u for u in units if not 0 <= u < data.shape[0]]
    if bad:
        raise CompactRigError(f"units {bad} are not rows of the responses (it has {data.shape[0]} neurons)")
    columns = []
    for image_id in image_ids:
        match = IMAGE_ID.match(image_id)
        column = int(match.group(1)) - 1 if match else -1
        if not 0 <= column < data.shape[1]:
            raise CompactRigError(f"image {image_id} has no column in the responses (images image0001.."
                                  f"image{data.shape[1]:04d}); give the images the responses were recorded to")
        columns.append(column)
    trials = data[units][:, columns].transpose(1, 0, 2)  # (images, units, repeats)
    seen = np.isfinite(trials)
    values = np.where(seen, trials, 0.0)
    if len(set(image_ids)) != len(image_ids):
        raise CompactRigError("an image is named twice in the images the responses belong to; give each once")
    return PerImageSums.from_counts([str(u) for u in units], image_ids, seen.sum(axis=2), values.sum(axis=2),
                                    (values**2).sum(axis=2))


def not_recorded(library: np.ndarray, recorded: np.ndarray) -> np.ndarray:
    """The images of ``library`` that are not, pixel for pixel, one of ``recorded`` (a lab's library often holds
    the images it drew a session's from)."""
    seen = {image.tobytes() for image in np.asarray(recorded, dtype=np.uint8)}
    library = np.asarray(library, dtype=np.uint8)
    return library[[image.tobytes() not in seen for image in library]]


def flat_units(trials: PerImageSums) -> list[int]:
    """Columns of ``trials`` whose mean response is the same on every image all units answered (a channel that
    never fired): a model of one would predict a constant, so none is made."""
    means = trials.means()[trials.answered_by_all()]
    return [k for k in range(means.shape[1]) if len(means) and np.ptp(means[:, k]) == 0]


def fit_new_neurons(bank: ModelBank, image_ids: list[str], pixels: np.ndarray, trials: PerImageSums,
                    units: list[int], session: str, out: Path, settings: NewNeuronSettings = NewNeuronSettings(),
                    progress: Progress | None = None, cancelled: Callable[[], bool] | None = None,
                    feature_neurons: list[str] | None = None, unit_names: list[str] | None = None,
                    judged_pixels: np.ndarray | None = None, teacher: Teacher | None = None,
                    device: str = "cpu", runner: Runner | None = None,
                    library: np.ndarray | None = None) -> list[NewNeuron]:
    """Fit, distill, prune and write a compact model for each unit: ``trials`` holds the responses per image
    (rows, as ``image_ids``) and unit (columns), of which the images every unit answered are used; ``units``
    are the units' numbers in the new ids ``SESSION:UNIT`` (a recording's rows, ``response_sums``; a live
    session's unit numbers), and ``unit_names`` what the recording called them (kept in the provenance). The
    readout also predicts ``judged_pixels`` (images nothing is fitted on) when given
    (``NewNeuron.readout_judged``). A ``teacher``, when given, labels the distillation images in the readout's
    place (the readout is still fitted and judged). ``library`` (uint8 ``(M, 112, 112, 3)``, no responses) are more
    natural images the students learn the readout's answers to (``distillation_images``); those equal to a
    recorded image are left out, so the held-out images stay unseen.

    The bank's features of the recorded and distillation images are read from the feature cache when an
    earlier run computed them (``compactrig.engine.readout.feature_cache``). The bank features and the
    students are computed on ``device``; the students run as jobs (``compactrig.engine.training.unit_jobs``)
    side by side here, or where ``runner`` runs them (a Dask cluster), the same models either way; each is
    written here as it comes."""
    check_session_name(session)
    check_train_from_stage(settings.distill.train_from_stage)
    progress = progress or (lambda done, total, phase="": None)
    started = time.monotonic()
    if list(trials.image_ids) != list(image_ids) or len(trials.units) != len(units):
        raise ValueError("trials must hold a row per image of image_ids, in order, and a column per unit")
    answered = np.flatnonzero(trials.answered_by_all())
    if len(answered) < MIN_IMAGES:
        per_unit = trials.answered().sum(axis=0)
        fewest = [k for k in np.argsort(per_unit, kind="stable")[:3] if per_unit[k] < MIN_IMAGES]
        short = ", ".join(f"unit {units[k]} answered {per_unit[k]}" for k in fewest)
        raise CompactRigError(f"only {len(answered)} images have responses from every chosen unit; a compact model "
                              f"needs {MIN_IMAGES} at the very least, a few hundred for a good one"
                              + (f" ({short}: leave it out of the units)" if short else ""))
    flat = flat_units(trials)
    if flat:
        raise CompactRigError(f"unit {units[flat[0]]}'s responses are the same for every image "
                              f"({trials.means()[answered[0], flat[0]]:g}); no model can follow them: leave it out "
                              "of the units")
    rng = np.random.default_rng(settings.seed)
    order = rng.permutation(answered)
    n_validation = max(10, int(round(settings.validation_fraction * len(order))))
    validation, fitting = np.sort(order[:n_validation]), np.sort(order[n_validation:])
    neuron_ids = bank.resolve(feature_neurons)
    predictor = Predictor(bank, device)

    def features(images: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
        """(outputs, every scale's features) of the feature neurons."""
        outputs, blocks = cached_outputs_and_grid(predictor, images, neuron_ids, FINEST_GRID,
                                                  named(progress, what), cancelled)
        return outputs, scale_features(outputs, blocks)

    outputs, natural = features(pixels, "bank features of the recorded images")
    readout = fit_scale_readout(natural[fitting], trials.take(fitting), len(neuron_ids), seed=settings.seed)
    extra_pixels, kinds = distillation_images(pixels[fitting], seed=settings.seed,
                                              library=None if library is None else not_recorded(library, pixels))
    probe_pixels, _ = distillation_images(pixels[validation], seed=settings.seed + 1)  # pruning's held-out images
    if teacher is None:
        _, extra = features(extra_pixels[len(fitting):], "bank features of the distillation images")
        targets = readout.predict(within_training_range(natural[fitting], np.concatenate([natural[fitting], extra])))
    else:
        targets = np.asarray(teacher.predict(extra_pixels), dtype=np.float64)
        if targets.shape != (len(units), len(extra_pixels)):
            raise CompactRigError(f"teacher {teacher.name} answered shape {targets.shape} for {len(extra_pixels)} "
                                  f"images; expected ({len(units)} units, {len(extra_pixels)} images)")
    held_out_readout = readout.predict(within_training_range(natural[fitting], natural[validation]))
    means = trials.means()  # finite on the fitting and validation images: every unit answered them
    shared_seconds = time.monotonic() - started
    judged_readout = None  # not part of making the models, so not in their time
    if judged_pixels is not None:
        _, judged = features(judged_pixels, "bank features of the judged images")
        judged_readout = readout.predict(within_training_range(natural[fitting], judged))
    wide = _wide_heads(bank, neuron_ids, settings.distill.max_parameters)
    candidates = [_donors(outputs[fitting], means[fitting, k], neuron_ids, wide, settings.distill.side_by_side)
                  for k in range(len(units))]
    jobs = [UnitJob(k, units[k], candidates[k], targets[k], means[validation, k])
            for k in sorted(range(len(units)), key=lambda k: candidates[k])]  # units sharing donors share their maps
    results: dict[int, NewNeuron] = {}

    def write(result: JobResult) -> None:
        k, distilled = result.index, result.distilled
        unit = units[k]
        readout_r = float(pearson_r(held_out_readout[k], means[validation, k]))
        held_out_trials = (trials.sums[validation, k], trials.sumsq[validation, k], trials.counts[validation, k])
        readout_r2_er = r2_er(held_out_readout[k], *held_out_trials)
        compact_r2_er = r2_er(distilled.validation_predictions, *held_out_trials)
        seconds = result.seconds + shared_seconds / len(units)
        provenance = {
            "made_by": "compactrig neurons fit",
            "unit": unit,
            "recorded_unit": unit_names[k] if unit_names is not None else unit,
            "readout": {"features": describe_scales(len(neuron_ids)), "feature_neurons": neuron_ids,
                        "bank": bank.identity(), "scales": list(SCALES),
                        "penalty_alpha": [float(a) for a in readout.alphas[k]],
                        "held_out_r": readout_r, "held_out_r2_er": readout_r2_er,
                        "cross_validated_r": float(readout.held_out_r[k])},
            "images": {"fitted": [image_ids[i] for i in fitting], "held_out": [image_ids[i] for i in validation],
                       "distillation": {kind: kinds.count(kind) for kind in dict.fromkeys(kinds)}},
            "responses": {"repeats_per_image_mean": float(trials.counts[fitting, k].mean())},
            "compact": {"held_out_r": distilled.validation_r, "held_out_r2_er": compact_r2_er,
                        "held_out_r_unpruned": distilled.validation_r_unpruned,
                        "parameters": distilled.n_parameters, "filters": list(distilled.model.filters),
                        "donor_of_stages_0_1": distilled.donor, "donors_tried": distilled.trials,
                        "teacher": "readout" if teacher is None else teacher.name,
                        "settings": asdict(settings.distill)},
            "seconds": seconds,
        }
        neuron_id = write_model(Path(out), session, unit, distilled.model, provenance)
        results[k] = NewNeuron(neuron_id, unit, readout_r, distilled.validation_r, distilled.n_parameters,
                               distilled.model.filters, distilled.donor, seconds, readout_r2_er, compact_r2_er,
                               None if judged_readout is None else judged_readout[k])

    run = runner or run_here(device)
    student_pixels = Pixels(extra_pixels, pixels[validation], probe_pixels)
    run(bank, student_pixels, jobs, settings.distill, write, progress, cancelled)
    return [results[k] for k in range(len(units))]


def _wide_heads(bank: ModelBank, neuron_ids: list[str], max_parameters: int) -> list[int]:
    """Indices (into ``neuron_ids``) of the bank neurons with a wide head (``WIDE_HEAD`` stage-2 channels or
    more) within the parameter cap."""
    return [k for k, neuron_id in enumerate(neuron_ids) if bank.info(neuron_id).filters[2] >= WIDE_HEAD
            and parameter_count(bank.info(neuron_id).filters) <= max_parameters]


def _donors(outputs: np.ndarray, responses: np.ndarray, neuron_ids: list[str], wide: list[int],
            two: bool = False) -> tuple[str, ...]:
    """The donors a unit's student may start from: the bank neuron whose output follows the unit best on the
    fitted images, and the best of the ``wide`` ones if that is another (``two``: the best of the other wide ones
    when it is one of them)."""
    r = np.nan_to_num(np.abs(pearson_r(outputs, np.asarray(responses)[:, None], axis=0)), nan=-1.0)
    best = [int(np.argmax(r))]
    others = [k for k in wide if k != best[0]] if two else wide
    if others:
        best_wide = others[int(np.argmax(r[others]))]
        if best_wide != best[0]:
            best.append(best_wide)
    return tuple(neuron_ids[k] for k in best)
