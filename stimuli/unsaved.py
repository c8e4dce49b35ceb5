"""What quitting the window would lose, and the question that says so (no Qt: the window only asks it).

Designed images live in the Design view until they are added to the stimulus set, and the set's
edits (additions, removals, order) until it is saved; both are gone once the window closes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UnsavedWork:
    """``designed``: designed images not handed to the stimulus set; ``set_changed``: the stimulus set
    (``set_images`` images) differs from its folder (``set_folder``, None: never saved)."""

    designed: int = 0
    set_changed: bool = False
    set_images: int = 0
    set_folder: str | None = None

    def __bool__(self) -> bool:
        return self.designed > 0 or (self.set_changed and (self.set_images > 0 or self.set_folder is not None))

    def question(self) -> str:
        """The question before quitting, naming what would be lost and what Save does."""
        lost = []
        if self.designed:
            lost.append(f"{self.designed} designed image(s) not added to the stimulus set")
        if self.set_changed:
            lost.append(f"changes to the stimulus set ({self.set_images} images) not saved"
                        + (f" to {self.set_folder}" if self.set_folder else ""))
        save = ("Save adds the ticked designed images to the stimulus set and saves the set"
                if self.designed else "Save saves the stimulus set")
        return f"Quit and lose {' and '.join(lost)}? {save} first; Discard quits without them."
