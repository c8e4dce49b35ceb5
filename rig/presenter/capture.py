"""``--capture``: each image's first frame saved as ``NNNNN.png`` (its presentation order), written atomically.

One home for the frames' names, so the command that checks a capture folder before the run and the presenter
that writes into it agree on which files are a capture's own.
"""

from __future__ import annotations

import re
from pathlib import Path

from compactrig.engine.files.safe_output import write_atomically

CAPTURED_FRAME = re.compile(r"\d{5,}\.png")
"""The name of a captured frame (more digits past presentation 99999)."""


def frame_name(order: int) -> str:
    return f"{order:05d}.png"


def save_frame(folder: Path, order: int, frame) -> None:
    """Write ``frame`` (a PIL image of the back buffer) as the frame of presentation ``order``: beside its name,
    then renamed into place, so a capture cut short never leaves half a PNG under a frame's name."""
    write_atomically(folder / frame_name(order), lambda path: frame.save(path, format="PNG"))
