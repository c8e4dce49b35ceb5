"""What a synthesis drives: the model's output, or one internal unit.

Internal units are addressed in the published (unflipped) frame as
``STAGE:CHANNEL`` (the channel's mean over its map) or ``STAGE:CHANNEL:ROW:COL``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from compactrig.engine.errors import CompactRigError
from compactrig.engine.models.fast_predict import FoldedModel
from compactrig.engine.models.layout import N_STAGES, stage_sizes


@dataclass(frozen=True)
class UnitTarget:
    """The model output (``stage is None``) or a unit of stage ``stage``."""

    stage: int | None = None
    channel: int = 0
    row: int | None = None
    col: int | None = None

    @classmethod
    def parse(cls, text: str | None) -> UnitTarget:
        """``None``/``'output'``, ``'STAGE:CHANNEL'`` or ``'STAGE:CHANNEL:ROW:COL'``."""
        if text is None or text == "output":
            return cls()
        parts = text.split(":")
        if len(parts) not in (2, 4) or not all(p.strip().isdigit() for p in parts):
            raise CompactRigError(f"target {text!r}: use 'output', STAGE:CHANNEL or STAGE:CHANNEL:ROW:COL")
        numbers = [int(p) for p in parts]
        return cls(*numbers) if len(numbers) == 4 else cls(numbers[0], numbers[1])

    def describe(self) -> str:
        if self.stage is None:
            return "output"
        where = "" if self.row is None else f":{self.row}:{self.col}"
        return f"{self.stage}:{self.channel}{where}"

    def check(self, filters: tuple[int, ...]) -> None:
        """Raise a clear error if this unit does not exist in a model with ``filters``."""
        if self.stage is None:
            return
        if not 0 <= self.stage < N_STAGES:
            raise CompactRigError(f"target {self.describe()}: stage must be 0..{N_STAGES - 1}")
        if not 0 <= self.channel < filters[self.stage]:
            raise CompactRigError(f"target {self.describe()}: stage {self.stage} has channels "
                                  f"0..{filters[self.stage] - 1}")
        if (self.row is None) != (self.col is None):
            raise CompactRigError(f"target {self.describe()}: give both row and col, or neither")
        size = stage_sizes()[self.stage]
        if self.row is not None and self.col is not None and not (0 <= self.row < size and 0 <= self.col < size):
            raise CompactRigError(f"target {self.describe()}: stage {self.stage} positions are 0..{size - 1}")

    def score(self, model: FoldedModel, prepared: torch.Tensor) -> torch.Tensor:
        """The target's value ``(N,)`` for input prepared by ``prepare_input``; differentiable."""
        if self.stage is None:
            return model(prepared)
        return model.stage_unit(prepared, self.stage, self.channel,
                                None if self.row is None or self.col is None else (self.row, self.col))


OUTPUT = UnitTarget()
"""The model's output: the default target."""
