"""What ``compactrig loop run`` was asked for, kept in the session folder (``loop.json``) so a resume goes on.

``session resume`` sees ``loop.json`` and resumes the loop with the session: the same strategy,
batches, refit schedule, pool and synthesis. Every value is checked when written and when read
back (a hand-edited file is refused with the field and the fix).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from compactrig.engine.errors import CompactRigError
from compactrig.stimuli.next_images import STRATEGIES, Strategy

if TYPE_CHECKING:
    from compactrig.stimuli.synthesis import Direction

LOOP_FILE = "loop.json"
LOOP_DIR = "loop"
"""Beside ``loop.json``: the rounds' images (``loop/rounds``) and every readout fit (``loop/readouts``)."""


@dataclass(frozen=True)
class LoopPlan:
    """The loop's settings: K rounds, each a batch by ``strategy`` and, if asked, images for ``for_units``."""

    strategy: Strategy = "committee"
    batch: int = 20
    """Pool images per round."""
    batches: int = 1
    """Rounds (K) queued after the session's own images."""
    refit_every: int = 50
    repeats: int = 1
    """Repeats of every queued image."""
    pool: str | None = None
    """Natural candidates (a folder or zip); None: generated 1/f textures. Their gaudy versions join."""
    bank: str | None = None
    """The bank the readouts read (None: the demo bank)."""
    synthesize: Direction | None = None
    """``max`` or ``min``: images designed each round for every unit of ``for_units``; None: none."""
    for_units: list[str] = field(default_factory=list)
    n: int = 4
    """Images synthesized per unit and round."""
    steps: int = 100

    def check(self) -> LoopPlan:
        """Self, when every value is of the right kind and range; else a one-line error naming it."""
        counts = {"batch": (self.batch, 1), "batches": (self.batches, 0), "refit_every": (self.refit_every, 1),
                  "repeats": (self.repeats, 1), "n": (self.n, 1), "steps": (self.steps, 1)}
        for name, (value, least) in counts.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise CompactRigError(f"loop setting {name} = {value!r}: give a whole number of at least {least}")
        if self.strategy not in STRATEGIES:
            raise CompactRigError(f"loop setting strategy = {self.strategy!r}: choose one of {', '.join(STRATEGIES)}")
        if self.synthesize not in (None, "max", "min"):
            raise CompactRigError(f"loop setting synthesize = {self.synthesize!r}: give max or min")
        if not isinstance(self.for_units, list) or not all(isinstance(u, str) and u for u in self.for_units):
            raise CompactRigError(f"loop setting for_units = {self.for_units!r}: give unit names")
        if self.synthesize is not None and not self.for_units:
            raise CompactRigError("--synthesize needs --for-units U,... (the units to design images for)")
        for name in ("pool", "bank"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise CompactRigError(f"loop setting {name} = {value!r}: give a path")
        return self


def loop_plan_text(plan: LoopPlan) -> str:
    """What ``DIR/loop.json`` holds (the session's start writes it with the session's own parts)."""
    return json.dumps(asdict(plan.check()), indent=1)


def read_loop_plan(folder: Path) -> LoopPlan | None:
    """The loop's settings, or None for a session without a loop."""
    path = Path(folder) / LOOP_FILE
    if not path.is_file():
        return None
    try:
        values = json.loads(path.read_text())
        known = {f.name for f in fields(LoopPlan)}
        strangers = sorted(set(values) - known)
        if strangers:
            raise ValueError(f"unknown setting {strangers[0]!r}")
        return LoopPlan(**values).check()
    except CompactRigError as error:
        raise CompactRigError(f"{path}: {error} (fix the file)") from None
    except (ValueError, TypeError, AttributeError) as error:
        raise CompactRigError(f"{path}: unreadable loop settings ({error}); restore the file") from None
