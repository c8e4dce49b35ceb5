"""The one progress protocol of long work: ``progress(done, total, phase)``.

Every long computation (reading images, predicting, fetching, distilling, synthesizing, the
closed loop's jobs) reports through it, and every consumer (the window's job, the terminal's
bar, the loop's lines) accepts it. Work made of several phases (a donor tried, then trained,
then pruned stage by stage) starts each phase again from 0 and names it, so a bar that goes
back to the start says why. Results reported along the way (synthesis's best images for a live
preview) are not progress: they have callbacks of their own.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """``done`` of ``total`` steps of the phase named (``total`` None when unknown, e.g. a download whose
    server gives no length; ``phase`` empty for work with one phase)."""

    def __call__(self, done: int, total: int | None, phase: str = "") -> None: ...


def named(progress: Progress, phase: str) -> Progress:
    """``progress`` with its reports under ``phase``: a step of larger work, named so its bar says what it does."""
    return lambda done, total, _phase="": progress(done, total, phase)


class ForwardOnly:
    """``progress`` as a bar should show it: within a phase (the same name and total) it only moves forward; a
    report that would take it back is dropped, while a new phase starts again from its own beginning."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._last: tuple[str, int | None, int] | None = None

    def __call__(self, done: int, total: int | None, phase: str = "") -> None:
        last = self._last
        if last is not None and last[:2] == (phase, total) and done < last[2]:
            return
        self._last = (phase, total, done)
        self._progress(done, total, phase)
