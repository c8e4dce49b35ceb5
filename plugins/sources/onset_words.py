"""Onsets matched to the event-code words the recording system stored, by the identity each word carries.

The presenter sends each onset's words at its flip (``plugins/event_codes.py``); a recording system stores
them on its digital inputs in its own clock. A source that sees those stored words (Open Ephys TTL events,
an LSL stream of words) finds each presentation's onset word by identity, not by time, and counts the
window from the word's position in the acquisition's clock: exact whatever the lags between the two
computers. The arrival clock only bounds the search (``tolerance``), so an image index shown twice is told
apart and a lost word is never replaced by the next image's.

Positions are in whatever unit the source counts (sample numbers, seconds), the same for the words, the
estimates and the tolerances. Words are decoded only once nothing earlier can still come (``decode_until``)
and only at a gap between words, so an abort's or a multi-word identity's words are never cut apart.
What cannot be used is named: words that make no event (``StrayWords``), and onset words no presentation
claimed (``extras``), e.g. a word sent twice or one of a presentation the runner never told the source of.
"""

from __future__ import annotations

from dataclasses import dataclass

from compactrig.plugins.event_codes import ONSET, CodeTable
from compactrig.plugins.sources.base import Presentation

MAX_WORDS = 100_000
"""Undecoded words held at most (hours of a session's codes); older ones are dropped first."""


class Identities:
    """The identity each presentation's onset words carry: its order number, or its image's index in the session's
    set, the images numbered in the order the source is told them (``prepare``), as the presenter numbers them."""

    def __init__(self, codes: CodeTable) -> None:
        self.codes = codes
        self._image_index: dict[str, int] = {}

    def learn(self, image_ids: list[str]) -> None:
        for image_id in image_ids:
            self._image_index.setdefault(image_id, len(self._image_index))

    def of(self, shown: Presentation) -> int:
        return self.codes.identity_of(shown.order, self._image_index.get(shown.image_id))

    def words_text(self, shown: Presentation) -> str:
        """The onset words ``shown`` should have left, for a message."""
        return ", ".join(map(str, self.codes.identity_words_of(self.of(shown))))


@dataclass
class _Onset:
    position: float
    identity: int
    claimed: bool = False


class OnsetWords:
    """The recorded words of one acquisition, decoded with the session's code table and claimed by onsets."""

    def __init__(self, codes: CodeTable, group_gap: float) -> None:
        """``group_gap``: words closer than this belong to one group (an abort, an identity of several words)."""
        self.codes, self.group_gap = codes, group_gap
        self._words: list[tuple[float, int]] = []
        self._onsets: list[_Onset] = []
        self._pardoned: list[tuple[int, float, float]] = []
        """(identity, estimate, tolerance) of aborted presentations: their words are not extras."""
        self._through = float("-inf")
        """Every word recorded before this position has been decoded."""
        self.problems: list[str] = []
        """Words that made no event since the last ``take_problems``, one line each."""

    def add(self, position: float, word: int) -> None:
        """A word the recording system stored at ``position`` (in recorded order)."""
        if len(self._words) >= MAX_WORDS:
            del self._words[0]
        self._words.append((position, word))

    def decode_until(self, complete: float) -> None:
        """Decode the words before ``complete`` (nothing earlier can still be recorded), up to a gap."""
        cut = 0
        while cut < len(self._words) and self._words[cut][0] < complete - self.group_gap:
            cut += 1
        while 0 < cut < len(self._words) and self._words[cut][0] - self._words[cut - 1][0] < self.group_gap:
            cut -= 1  # the group goes on past the cut: wait for all of it
        if cut:
            decoded = self.codes.decode(self._words[:cut])
            del self._words[:cut]
            self._onsets += [_Onset(event.time, event.identity) for event in decoded.events
                             if event.event == ONSET and event.identity is not None]
            self.problems += [f"{stray.problem} (words {', '.join(map(str, stray.words))} at {stray.time:g})"
                              for stray in decoded.strays]
        self._through = max(self._through, complete - self.group_gap if not self._words
                            else min(complete - self.group_gap, self._words[0][0]))

    def claim(self, identity: int, near: float, tolerance: float) -> float | None:
        """The position of the earliest unclaimed onset word of ``identity`` within ``tolerance`` of ``near``
        (the arrival clock's estimate), claimed; None while there is none. Later ones decoded with it (the same
        word strobed twice) are named, and claimed so that no other presentation takes them."""
        wanted = identity % self.codes.capacity
        found = [onset for onset in self._onsets
                 if not onset.claimed and onset.identity == wanted and abs(onset.position - near) <= tolerance]
        for onset in found:
            onset.claimed = True
        self.problems += [f"onset word of identity {wanted} at {onset.position:g} repeats the one matched at "
                          f"{found[0].position:g} (a word sent twice): ignored" for onset in found[1:]]
        return found[0].position if found else None

    def past_hope(self, near: float, tolerance: float) -> bool:
        """Whether every word that could belong to an onset estimated at ``near`` has been decoded."""
        return self._through > near + tolerance

    def extras(self, before: float) -> list[str]:
        """Onset words before ``before`` that no presentation claimed, named once and forgotten with the claimed
        ones there (no presentation still waits for them); an aborted presentation's word is not named."""
        named = [f"onset word of identity {onset.identity} at {onset.position:g} belongs to no presentation (a word "
                 "sent twice, or foreign): ignored" for onset in self._onsets
                 if onset.position < before and not onset.claimed and not self._pardon(onset)]
        self._onsets = [onset for onset in self._onsets if onset.position >= before]
        self._pardoned = [p for p in self._pardoned if p[1] + p[2] >= before]
        return named

    def forgive(self, identity: int, near: float, tolerance: float) -> None:
        """An aborted presentation's word is expected, and no extra."""
        if self.claim(identity, near, tolerance) is None:
            self._pardoned.append((identity % self.codes.capacity, near, tolerance))

    def _pardon(self, onset: _Onset) -> bool:
        for k, (identity, near, tolerance) in enumerate(self._pardoned):
            if identity == onset.identity and abs(onset.position - near) <= tolerance:
                del self._pardoned[k]
                return True
        return False

    def take_problems(self) -> list[str]:
        told, self.problems = self.problems, []
        return told
