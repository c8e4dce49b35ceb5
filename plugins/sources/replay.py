"""Replay of a recording in the published layout, as if live.

Responses are ``(neurons, images, repeats)`` spike counts with NaN padding (a 2-D
repeat-averaged array counts as one repeat). Image ``imageNNNN`` is row ``NNNN-1``; each
presentation of an image returns the next unused repeat of that row, in the recording's order;
a resumed session carries on after the repeats its store already holds (``resume_from``). Running
out of repeats is reported as a missing response, never invented.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from compactrig.engine.errors import CompactRigError
from compactrig.plugins.sources.base import WINDOW_OPTIONS, Option, Presentation, Response, ResponseSource

IMAGE_ID = re.compile(r"^image(\d+)$")


class ReplaySource(ResponseSource):
    name = "replay"
    description = "replays recorded responses (published .npy layout) as if live"
    options = WINDOW_OPTIONS + (
        Option("responses", str, "", "recorded responses .npy: (neurons, images, repeats), NaN-padded"),
    )

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        path = Path(self.settings["responses"])
        if not self.settings["responses"] or not path.is_file():
            raise CompactRigError(f"replay: responses file {str(path)!r} not found; set responses=PATH.npy")
        try:
            data = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as error:
            raise CompactRigError(f"{path}: not a readable .npy file ({error})") from None
        if data.dtype.kind not in "iuf":
            raise CompactRigError(f"{path}: holds {data.dtype} values, not spike counts; save the counts as numbers "
                                  "(NaN where a repeat is missing)")
        if data.ndim == 2:  # repeat-averaged: one repeat per image
            data = data[:, :, None]
        if data.ndim != 3:
            raise CompactRigError(f"{path}: shape {data.shape}; expected (neurons, images, repeats)")
        self.responses = data
        self._units = [f"n{k}" for k in range(data.shape[0])]
        self._used = np.zeros(data.shape[1], dtype=int)
        self._pending: deque[Presentation] = deque()

    @property
    def units(self) -> list[str]:
        return list(self._units)

    def resume_from(self, stored: Mapping[str, int]) -> None:
        """Each image's next repeat is the first one after those the store already holds."""
        for image_id, count in stored.items():
            row = self._row(image_id)
            if row is not None:
                self._used[row] = count

    def submit(self, presentation: Presentation) -> None:
        self._pending.append(presentation)

    def _row(self, image_id: str) -> int | None:
        """The recording's row of ``imageNNNN``, or None when the recording has no such image."""
        match = IMAGE_ID.match(image_id)
        row = int(match.group(1)) - 1 if match else -1
        return row if 0 <= row < self.responses.shape[1] else None

    def _lookup(self, image_id: str) -> tuple[dict[str, float] | None, str | None]:
        row = self._row(image_id)
        if row is None:
            return None, (f"image {image_id} is not in the recording "
                          f"(images image0001..image{self.responses.shape[1]:04d})")
        recorded = self.responses[:, row, :]
        available = np.flatnonzero(~np.isnan(recorded).all(axis=0))
        if self._used[row] >= len(available):
            return None, f"no recorded repeats left for {image_id} (it has {len(available)})"
        values = recorded[:, available[self._used[row]]]
        self._used[row] += 1
        return {u: float(v) for u, v in zip(self._units, values)}, None

    def collect(self, now: float) -> list[Response]:
        ready = []
        while self._pending and now >= self._pending[0].onset_time + self.window[1]:
            shown = self._pending.popleft()
            counts, missing = self._lookup(shown.image_id)
            ready.append(Response(shown.order, shown.image_id, counts, self.window, missing))
        return ready
