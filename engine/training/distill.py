"""Distillation of a readout into a compact model of the published architecture, then pruning.

The paper's path to a neuron's compact model: a large, accurate model of the neuron (here the
readout over the bank, ``compactrig.engine.readout.ridge``), distilled into five depthwise-separable
stages, then pruned. Its finding that compact models share their early filters is what makes
this quick on a CPU: the student's stages 0 and 1 and the spatial (depthwise) filters of stage 2
are a bank model's (the *donor*), frozen, so their maps are computed once per image and training
runs only on 28x28 maps: stage 2's channel mixing, stages 3-4 and the dense readout. (Training
through the 56x56 maps instead costs ~12 ms per image per epoch here, ten times too slow for minutes
per neuron.) The maps are kept channels-last: PyTorch's CPU gradient of a depthwise convolution,
most of a training step, is about five times faster in that layout; a whole distillation with
pruning takes ~7% less time here (unit 0 of session 190923: 54-57 s against 57-63 s, the same
model). The donor's filters are the published ones, in the published frame and padding; the student is a
``CompactModel`` and saves in the published layout.

The donor decides most of a student's accuracy (on session 190923, a unit's own published model as
donor gives a student at the published model's r; a fresh head on that same trunk reaches half of it).
The caller offers candidates (``Donor``); with more than one, each student trains ``trial_epochs``
and the one that follows the held-out responses best goes on, the others are dropped.

The student starts as a copy of the donor, batch-norm statistics included (fixed: only the scale
and shift train), so it is evaluated exactly as every published model is. A donor is already a V4
model: on session 190923, fine-tuning it followed held-out natural images far better than a
freshly initialized head trained on the same few thousand labelled images (r 0.64 against 0.49
for one unit).

Two donors can also be one student, side by side (``DistillSettings.side_by_side``): its frozen part holds
both donors' channels (their maps, concatenated), its head starts as the sum of theirs and learns to mix them.

Pruning removes channels of stages 1-4 (a stage-1 channel is dropped from the frozen maps and
from stage 2's input), and of stage 0 while the student is over ``max_parameters`` (the frozen part's output
is then computed again), least important first (importance: the channel's outgoing weights scaled
by its typical activation), fine-tuning after each cut, while the held-out r stays within
``prune_tolerance`` of the unpruned student's. A donor over ``max_parameters`` (of the published
models, 201025:51 with 24,558) needs more cuts: each is tried at every stage and the one that changes
the student's held-out predictions least is kept (cutting later stages first regardless left that
donor's students one channel wide at stage 4; on one unit of 190923 the held-out r fell from 0.68 to
0.53). "Held-out r" is judged twice, because the recorded held-out images are few:
r against their responses (on 120 images its standard error is ~0.05, four times the 0.012 that
2% of an r of 0.6 allows, so alone it lets noise decide the cuts), and r between the pruned and the unpruned
student on those images and their gaudy, texture and shifted versions (no responses needed; on
session 190923 this kept the pruned students 0.01 closer to the recorded test responses).

A student can also be trained further from an earlier stage (``DistillSettings.train_from_stage``): after
its head's epochs, stage 1's channel mixing and stage 2's spatial filters (from stage 1) or every stage
(from stage 0) train too, on the frozen part's output at that depth, and the student is then pruned on
the maps of its own trunk. The same code runs on any device the maps are on (a GPU: ``--device cuda``);
the trained model always comes back on the CPU.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from compactrig.engine.errors import CompactRigError
from compactrig.engine.models.architecture import CompactModel
from compactrig.engine.models.fast_predict import CHUNK, Cancelled, FoldedModel, prepare_input
from compactrig.engine.models.layout import N_STAGES, OUTPUT_SIZE, parameter_count
from compactrig.engine.progress import Progress
from compactrig.engine.stats.correlation import pearson_r

TRUNK_STAGES = 2
"""Stages 0 and 1 come from the donor, frozen (and stage 2's depthwise filters): where the head trains and
pruning runs."""


@dataclass(frozen=True)
class DistillSettings:
    """How a student is trained and pruned."""

    epochs: int = 40
    batch_size: int = 64
    learning_rate: float = 0.01
    """Adam's step for each weight tensor, relative to the tensor's RMS (a donor's readout weights are
    a thousand times smaller than its filters; one absolute step size would wreck one or the other)."""
    weight_decay: float = 1e-4
    """Decoupled (AdamW): Adam's coupled decay would dominate the gradient once the student fits."""
    prune_tolerance: float = 0.02
    """Pruning stops before the held-out r falls more than this fraction below the unpruned student's, or the
    pruned student's predictions of the held-out images correlate less than ``1 - prune_tolerance`` with the
    unpruned student's."""
    prune_fraction: float = 0.25
    """Share of a stage's channels removed at each pruning step."""
    prune_epochs: int = 6
    """Fine-tuning after each pruning step."""
    max_parameters: int = 20_000
    trial_epochs: int = 8
    """With more than one donor, each student trains this many epochs, and the one whose held-out r is highest
    goes on (on 8 units of session 190923 this picked the donor whose pruned student was better on 7)."""
    seed: int = 0
    train_from_stage: int = TRUNK_STAGES
    """The first stage whose channel mixing the student trains. At ``TRUNK_STAGES`` (2) only the head trains, on
    the donor's frozen stages 0-1. Lower, the chosen student goes on, after its head's ``epochs``, for
    ``whole_epochs`` with stages from this one on trained too (1: stage 1's channel mixing and stage 2's spatial
    filters; 0: every stage), on the frozen part's output at that depth (56x56 maps for 1, the images for 0:
    several times the arithmetic of the head), before it is pruned on its own trunk."""
    whole_epochs: int = 8
    """Epochs with the earlier stages trained too (``train_from_stage`` below ``TRUNK_STAGES``), at a quarter of
    the head's step size: a fine-tune of a student that already fits."""
    side_by_side: bool = False
    """With two donors, one student holds both side by side (``side_by_side``: the frozen part has both donors'
    channels) instead of the winner of their trials; it is pruned under ``max_parameters`` by cuts of stage 0 too."""


def channels_last(maps: torch.Tensor) -> torch.Tensor:
    """``maps`` in the layout the student trains fastest on (see the module's docstring)."""
    return maps.contiguous(memory_format=torch.channels_last)


def with_stage1_channels(maps: torch.Tensor, keep: list[int]) -> torch.Tensor:
    """Frozen-part output (``trunk_maps``) with only stage-1 channels ``keep``, channels-last again (indexing
    channels loses the layout)."""
    return channels_last(maps[:, keep])


def check_train_from_stage(stage: int) -> None:
    if not 0 <= stage <= TRUNK_STAGES:
        raise CompactRigError(f"train from stage {stage}: give 0, 1 or {TRUNK_STAGES} (stages that many and on are "
                              f"trained; {TRUNK_STAGES}, the default, trains the head on the donor's frozen stages)")


def trunk_maps(donor: CompactModel, pixels: np.ndarray, first: int = TRUNK_STAGES, device: str | torch.device = "cpu",
               chunk: int = CHUNK) -> torch.Tensor:
    """The frozen part's output for ``(N, 112, 112, 3)`` uint8 images when stages ``first``.. train, float32,
    channels-last, on ``device``: stages before ``first``, then stage ``first``'s depthwise filters
    (``(N, n1, 28, 28)`` for the head, ``first`` 2; ``(N, n0, 56, 56)`` for ``first`` 1); for ``first`` 0 the
    mean-subtracted images. Computed by the fast path (``FoldedModel``, 3-4 times faster here than the model
    itself), then flipped back to the model's frame."""
    check_train_from_stage(first)
    folded = FoldedModel(donor.float().eval()).to(device) if first > 0 else None
    out = []
    for start in range(0, len(pixels), chunk):
        prepared = prepare_input(pixels[start:start + chunk], device)
        out.append((folded.through_depthwise(prepared, first) if folded is not None else prepared).flip(-1, -2))
    return channels_last(torch.cat(out))


def head_output(student: CompactModel, maps: torch.Tensor, first: int = TRUNK_STAGES) -> torch.Tensor:
    """The student's responses ``(N,)`` from its frozen part's output (``trunk_maps`` at ``first``)."""
    if first == 0:
        return student.readout(student.stages_from(0, maps))
    return student.readout(student.stages_from(first + 1, student.pointwise(first, maps)))


def head_parameters(student: CompactModel, first: int = TRUNK_STAGES) -> list[nn.Parameter]:
    """The trained parameters when stages ``first``.. train: their channel mixing, the spatial filters of the
    stages after it, and the readout (a frozen part's weights are its donor's)."""
    frozen = tuple(f"layers.layer{k}_" for k in range(first)) + ((f"layers.layer{first}_conv_depth",) if first else ())
    return [p for name, p in student.named_parameters() if not name.startswith(frozen)]


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


class HeadTraining:
    """Adam with a cosine schedule over ``epochs`` fitting stages 2-4 and the readout to ``targets``
    (standardized), run in parts: a donor's quick trial is the first ``trial_epochs`` of the very training
    its student continues if it wins, so the winner ends exactly as if it had been the only donor."""

    def __init__(self, student: CompactModel, maps: torch.Tensor, targets: torch.Tensor, epochs: int,
                 settings: DistillSettings, first: int = TRUNK_STAGES) -> None:
        self.student, self.maps, self.targets, self.epochs, self.settings = student, maps, targets, epochs, settings
        self.first = first
        self.done = 0
        groups = [{"params": [p], "lr": settings.learning_rate * max(float(p.detach().pow(2).mean().sqrt()), 1e-4)}
                  for p in head_parameters(student, first)]
        self.optimizer = torch.optim.AdamW(groups, weight_decay=settings.weight_decay)
        self.generator = torch.Generator().manual_seed(settings.seed)
        total = max(1, epochs * math.ceil(len(maps) / settings.batch_size))
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / total)))

    def run(self, epochs: int, progress: Progress | None = None, cancelled: Callable[[], bool] | None = None,
            what: str = "training") -> None:
        """The next ``epochs`` epochs (at most those left)."""
        size = self.settings.batch_size
        for _ in range(min(epochs, self.epochs - self.done)):
            order = torch.randperm(len(self.maps), generator=self.generator)
            for start in range(0, len(self.maps), size):
                if cancelled is not None and cancelled():
                    raise Cancelled()
                pick = order[start:start + size].to(self.maps.device)
                loss = torch.mean((head_output(self.student, self.maps[pick], self.first) - self.targets[pick]) ** 2)
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                self.schedule.step()
            self.done += 1
            if progress is not None:
                progress(self.done, self.epochs, what)


def train_head(student: CompactModel, maps: torch.Tensor, targets: torch.Tensor, epochs: int,
               settings: DistillSettings, progress: Progress | None = None,
               cancelled: Callable[[], bool] | None = None, what: str = "training", first: int = TRUNK_STAGES) -> None:
    """Fit stages ``first``.. (the head: 2-4) and the readout to ``targets`` (standardized) by Adam with a cosine
    schedule."""
    HeadTraining(student, maps, targets, epochs, settings, first).run(epochs, progress, cancelled, what)


def predict_head(student: CompactModel, maps: torch.Tensor, first: int = TRUNK_STAGES, chunk: int = 256) -> np.ndarray:
    with torch.no_grad():
        return torch.cat([head_output(student, maps[s:s + chunk], first)
                          for s in range(0, len(maps), chunk)]).cpu().numpy()


def channel_importance(student: CompactModel, maps: torch.Tensor, stage: int,
                       pixels: np.ndarray | None = None) -> np.ndarray:
    """Per channel of ``stage``: its typical activation times the size of what reads it (stage 0's activation
    from ``pixels``, the images of ``maps``)."""
    with torch.no_grad():
        if stage == 0:
            if pixels is None:
                raise ValueError("the importance of stage-0 channels needs the images")
            x = student.stage(0, trunk_maps(student, pixels[:64], 0, device_of(student)))
        else:
            x = maps[:256]
        if stage >= TRUNK_STAGES:
            x = student.pointwise(TRUNK_STAGES, x)
        for k in range(TRUNK_STAGES + 1, stage + 1):
            x = student.stage(k, x)
        activity = x.abs().mean(dim=(0, 2, 3))
        if stage == N_STAGES - 1:
            beta = student.layers.Beta.weight.view(OUTPUT_SIZE, OUTPUT_SIZE, -1)
            reads = beta.abs().sum(dim=(0, 1))
        else:
            depth = getattr(student.layers, f"layer{stage + 1}_conv_depth").weight.abs().sum(dim=(1, 2, 3))
            point = getattr(student.layers, f"layer{stage + 1}_conv_point").weight.abs().sum(dim=(0, 2, 3))
            reads = depth * point
    return (activity * reads).cpu().numpy()


def without_channels(student: CompactModel, stage: int, keep: list[int]) -> CompactModel:
    """A copy of ``student`` with only channels ``keep`` of ``stage`` (and everything that reads them)."""
    filters = list(student.filters)
    filters[stage] = len(keep)
    smaller = CompactModel(filters).float()
    state = {key: value.clone() for key, value in student.state_dict().items()}
    index = torch.tensor(keep)
    if not 0 <= stage < N_STAGES:
        raise ValueError(f"stage {stage}: the model has stages 0-{N_STAGES - 1}")
    prefix = f"layers.layer{stage}_"
    for key in list(state):  # a separable stage's depthwise filters are its input's: the stage before's channels
        if key.startswith(prefix) and ("conv_depth" not in key):
            if state[key].dim() > 0 and state[key].shape[0] == student.filters[stage]:
                state[key] = state[key][index]
    if stage < N_STAGES - 1:
        nxt = f"layers.layer{stage + 1}_"
        state[nxt + "conv_depth.weight"] = state[nxt + "conv_depth.weight"][index]
        state[nxt + "conv_point.weight"] = state[nxt + "conv_point.weight"][:, index]
    else:
        beta = state["layers.Beta.weight"].view(1, OUTPUT_SIZE, OUTPUT_SIZE, -1)[..., index]
        state["layers.Beta.weight"] = beta.reshape(1, -1)
    smaller.load_state_dict(state)
    smaller.eval()
    return smaller.to(device_of(student))


def side_by_side(first: CompactModel, second: CompactModel, weights: tuple[float, float] = (1.0, 1.0)) -> CompactModel:
    """One compact model computing both: each stage has ``first``'s channels then ``second``'s, the channel mixing
    block-diagonal (zero between the two), the readout both readouts, so its output is the sum of theirs (times
    ``weights``). Its frozen part's output is the two models' concatenated; in the published layout the zero blocks
    count as parameters."""
    both = CompactModel([a + b for a, b in zip(first.filters, second.filters)]).to(device_of(first))
    a, b = first.state_dict(), second.state_dict()
    state = {}
    for key, value in both.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = a[key]
        elif "conv_point.weight" in key:
            mixed = torch.zeros_like(value, dtype=a[key].dtype)
            rows, columns = a[key].shape[:2]
            mixed[:rows, :columns], mixed[rows:, columns:] = a[key], b[key]
            state[key] = mixed
        elif key == "layers.Beta.weight":
            state[key] = torch.cat([weights[0] * a[key].view(OUTPUT_SIZE, OUTPUT_SIZE, -1),
                                    weights[1] * b[key].view(OUTPUT_SIZE, OUTPUT_SIZE, -1)], dim=2).reshape(1, -1)
        elif key == "layers.Beta.bias":
            state[key] = weights[0] * a[key] + weights[1] * b[key]
        else:
            state[key] = torch.cat([a[key], b[key]])
    both.load_state_dict(state)
    return both.to(a["layers.Beta.weight"].dtype).eval()


@dataclass(frozen=True)
class HeldOut:
    """What pruning is judged on, all from images nothing was trained on: the frozen part's output
    (``trunk_maps``) of the held-out recorded images and their recorded responses, and of more held-out
    images without responses (``probe_maps``: the recorded ones and versions of them)."""

    maps: torch.Tensor
    responses: np.ndarray
    probe_maps: torch.Tensor

    def with_stage1_channels(self, keep: list[int]) -> HeldOut:
        return HeldOut(with_stage1_channels(self.maps, keep), self.responses,
                       with_stage1_channels(self.probe_maps, keep))


@dataclass(frozen=True)
class Donor:
    """A bank model a student may start from, with its frozen part's output (``trunk_maps``) of the training
    images and the held-out images its student is judged on."""

    neuron_id: str
    model: CompactModel
    maps: torch.Tensor
    held_out: HeldOut


def paired(first: Donor, second: Donor, targets: torch.Tensor) -> Donor:
    """The donor ``side_by_side`` of two, its output the least-squares combination of theirs that follows
    ``targets``; its frozen part's output is theirs concatenated, nothing computed again."""
    def both(one: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        return channels_last(torch.cat([one, other], dim=1))

    outputs = np.stack([predict_head(copy.deepcopy(donor.model).float().to(donor.maps.device), donor.maps)
                        for donor in (first, second)], axis=1)
    design = np.column_stack([outputs, np.ones(len(outputs))]).astype(np.float64)
    weights = np.linalg.lstsq(design, targets.cpu().numpy().astype(np.float64), rcond=None)[0][:2]
    return Donor(f"{first.neuron_id}+{second.neuron_id}",
                 side_by_side(first.model, second.model, (float(weights[0]), float(weights[1]))),
                 both(first.maps, second.maps),
                 HeldOut(both(first.held_out.maps, second.held_out.maps), first.held_out.responses,
                         both(first.held_out.probe_maps, second.held_out.probe_maps)))


@dataclass(frozen=True)
class Pixels:
    """uint8 ``(N, 112, 112, 3)`` images a unit's student learns and is judged on: the labelled training
    images, the held-out recorded images and the probe images (``HeldOut``), in the order of their maps."""

    training: np.ndarray
    held_out: np.ndarray
    probe: np.ndarray


@dataclass(frozen=True)
class DistilledUnit:
    """A unit's compact model and how it was judged."""

    model: CompactModel
    validation_r_unpruned: float
    validation_r: float
    n_parameters: int
    donor: str
    trials: dict[str, float]
    """Each donor tried and its student's held-out r after the trial (empty when there was one donor)."""
    validation_predictions: np.ndarray
    """The model's predictions of the held-out images (``Donor.held_out``), in the targets' units."""


def distill_unit(donors: list[Donor], targets: np.ndarray, settings: DistillSettings = DistillSettings(),
                 progress: Progress | None = None, cancelled: Callable[[], bool] | None = None,
                 pixels: Pixels | None = None) -> DistilledUnit:
    """Train a student on ``targets`` (the readout's predictions of the training images) from the donor whose
    quick trial follows the held-out responses best (the only one if there is one), then prune it while it
    holds on the held-out images. The donors' maps are on the device the student trains on; ``pixels`` (the
    images of those maps) are needed when ``settings.train_from_stage`` trains more than the head.

    The returned model is on the CPU and predicts in the targets' units (the standardization is folded into its
    readout).
    """
    check_train_from_stage(settings.train_from_stage)
    if settings.train_from_stage < TRUNK_STAGES and pixels is None:
        raise ValueError("training from an earlier stage needs the pixels of the training and held-out images")
    targets = np.asarray(targets, dtype=np.float64)
    mean, sd = float(targets.mean()), float(targets.std()) or 1.0
    device = donors[0].maps.device
    standardized = torch.from_numpy(((targets - mean) / sd).astype(np.float32)).to(device)
    if settings.side_by_side and len(donors) == 2:
        donors = [paired(donors[0], donors[1], standardized)]
    trainings = [_started(donor, standardized, settings) for donor in donors]
    trials: dict[str, float] = {}
    best = 0
    if len(donors) > 1:
        for donor, training in zip(donors, trainings):
            training.run(settings.trial_epochs, progress, cancelled, what=f"trying donor {donor.neuron_id}")
            trials[donor.neuron_id] = float(pearson_r(predict_head(training.student, donor.held_out.maps),
                                                      donor.held_out.responses))
        best = int(np.argmax(np.nan_to_num(list(trials.values()), nan=-np.inf)))
    chosen, training = donors[best], trainings[best]
    training.run(settings.epochs, progress, cancelled)
    student, maps, held_out = training.student, chosen.maps, chosen.held_out
    if settings.train_from_stage < TRUNK_STAGES and pixels is not None and settings.whole_epochs > 0:
        first = settings.train_from_stage
        deeper = trunk_maps(student, pixels.training, first, device)
        train_head(student, deeper, standardized, settings.whole_epochs,
                   replace(settings, learning_rate=settings.learning_rate / 4), progress, cancelled,
                   what=f"training from stage {first}", first=first)
        del deeper
        maps, held_out = _own_trunk(student, pixels, held_out.responses)
    unpruned_r = float(pearson_r(predict_head(student, held_out.maps), held_out.responses))
    unpruned_probe = predict_head(student, held_out.probe_maps)
    floor = unpruned_r * (1 - settings.prune_tolerance) if np.isfinite(unpruned_r) else -np.inf

    def cut(state: _Pruned, stage: int) -> _Pruned:
        """``state`` with the least important ``prune_fraction`` of ``stage``'s channels removed, fine-tuned."""
        if cancelled is not None and cancelled():
            raise Cancelled()
        importance = channel_importance(state.model, state.maps, stage, None if pixels is None else pixels.training)
        n_cut = max(1, int(round(settings.prune_fraction * len(importance))))
        keep = sorted(np.argsort(importance)[n_cut:].tolist())
        trial = without_channels(state.model, stage, keep)
        if stage == 0 and pixels is not None:  # the frozen part changes: its output is computed again
            maps, trial_held_out = _own_trunk(trial, pixels, state.held_out.responses)
        elif stage == TRUNK_STAGES - 1:
            maps, trial_held_out = with_stage1_channels(state.maps, keep), state.held_out.with_stage1_channels(keep)
        else:
            maps, trial_held_out = state.maps, state.held_out
        train_head(trial, maps, standardized, settings.prune_epochs,
                   replace(settings, learning_rate=settings.learning_rate / 4),
                   progress, cancelled, what=f"pruning stage {stage}")
        r = float(pearson_r(predict_head(trial, trial_held_out.maps), held_out.responses))
        agreement = float(pearson_r(predict_head(trial, trial_held_out.probe_maps), unpruned_probe))
        return _Pruned(trial, maps, trial_held_out, r, agreement)

    def over_cap(state: _Pruned) -> bool:
        return parameter_count(state.model.filters) > settings.max_parameters

    state = _Pruned(student, maps, held_out, unpruned_r, 1.0)
    lowest = 0 if pixels is not None else 1  # stage 0 is cut only over the cap: each cut recomputes the maps
    for stage in range(N_STAGES - 1, lowest - 1, -1):  # later stages first: they are cheapest to retrain
        while state.model.filters[stage] > 1 and (stage > 0 or over_cap(state)):
            trial = cut(state, stage)
            if not (trial.r >= floor and trial.agreement >= 1 - settings.prune_tolerance):
                break
            state = trial
    while over_cap(state):
        # A donor over the cap: every cut that holds is made; the rest go where the student changes least.
        cuts = [cut(state, stage) for stage in range(lowest, N_STAGES) if state.model.filters[stage] > 1]
        if not cuts:  # one channel left in every prunable stage: stage 0 alone is over the cap
            break
        state = max(cuts, key=lambda trial: trial.agreement)
    final = _in_target_units(state.model, mean, sd)
    predictions = predict_head(final, state.held_out.maps).astype(np.float64)
    return DistilledUnit(final.cpu(), unpruned_r, state.r, parameter_count(final.filters), chosen.neuron_id, trials,
                         predictions)


def _started(donor: Donor, targets: torch.Tensor, settings: DistillSettings) -> HeadTraining:
    """A student copied from ``donor``, its output scaled to ``targets``, ready to train."""
    student = copy.deepcopy(donor.model).float().eval().to(donor.maps.device)
    _fit_output_scale(student, donor.maps, targets)
    return HeadTraining(student, donor.maps, targets, settings.epochs, settings)


@dataclass(frozen=True)
class _Pruned:
    """A pruning step's student, the frozen-part output it reads, and how it holds on the held-out images."""

    model: CompactModel
    maps: torch.Tensor
    held_out: HeldOut
    r: float
    agreement: float


def _own_trunk(student: CompactModel, pixels: Pixels, responses: np.ndarray) -> tuple[torch.Tensor, HeldOut]:
    """The frozen-part output of ``student`` itself for the training images, and its ``HeldOut``."""
    device = device_of(student)
    return (trunk_maps(student, pixels.training, TRUNK_STAGES, device),
            HeldOut(trunk_maps(student, pixels.held_out, TRUNK_STAGES, device), responses,
                    trunk_maps(student, pixels.probe, TRUNK_STAGES, device)))


def _fit_output_scale(student: CompactModel, maps: torch.Tensor, targets: torch.Tensor) -> None:
    """Fold the least-squares affine map from the student's output to ``targets`` into its readout, so
    training starts from the donor's own prediction in the targets' scale."""
    output = predict_head(student, maps).astype(np.float64)
    wanted = targets.cpu().numpy().astype(np.float64)
    spread = output.std()
    if spread == 0:
        return
    slope = float(np.cov(output, wanted)[0, 1] / spread**2)
    shift = float(wanted.mean() - slope * output.mean())
    with torch.no_grad():
        student.layers.Beta.weight.mul_(slope)
        student.layers.Beta.bias.mul_(slope).add_(shift)


def _in_target_units(student: CompactModel, mean: float, sd: float) -> CompactModel:
    model = copy.deepcopy(student)
    with torch.no_grad():
        model.layers.Beta.weight.mul_(sd)
        model.layers.Beta.bias.mul_(sd).add_(mean)
    return model
