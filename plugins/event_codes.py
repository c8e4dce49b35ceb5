"""Event codes: the one table of the digital words a recording system stores for each event.

Blackrock, Ripple, Plexon, TDT and SpikeGLX systems store strobed parallel words on their digital
inputs. The table, written in the rig file under ``[markers.codes]`` and kept with the session (its
rig in ``session.json``, the NWB export), says which word stands for which event; the outputs that
send words (``code_outputs``) encode with it, and whoever matches recorded words back to onsets
decodes with it (``decode``).

What each event sends, in order on the wire:

- ``trial_start``, ``trial_end``, ``image_offset``, ``fixation_break``: one word, the event's code;
- ``onset``: the presentation's identity as ``identity_words`` words, each ``onset_first`` plus one
  digit of the identity written in base ``onset_count``, the lowest digit first (so with one word,
  the default, the word is ``onset_first + identity % onset_count``). The identity is the
  presentation's order number (``identity = "order"``) or the image's index in the session's
  ``stimulus_ids`` (``"image_index"``), taken modulo ``capacity = onset_count ** identity_words``;
  order numbers wrap around (``CodeTable.unwrap`` restores them), image indices must fit;
- ``abort``: the abort code, the reason's code (``abort_reasons``, by the store's abort kind), then
  the aborted presentation's identity words as for its onset.

Zero is never a code (it is the lines at rest, so every word is a change), and every code is a
whole number below ``2 ** word_bits``; no two events, and no reason, share a code, and none lies in
the onset range. This module imports neither Qt nor PsychoPy: a recording-side tool may use it alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from compactrig.engine.errors import CompactRigError

EVENTS = ("trial_start", "trial_end", "image_offset", "abort", "fixation_break")
"""The events sent as one word of their own (``abort`` is followed by its reason and identity)."""
ONSET = "onset"
IDENTITIES = ("order", "image_index")
DEFAULT_REASONS = {"fixation": 11, "stopped": 12, "dropped_frames": 13, "missing": 14, "markers": 15, "other": 16}
"""Abort reason codes by the trial store's abort kind (``markers``: a marker output failed); ``other``: any
kind not named."""
WORD_BITS = (8, 16)
MAX_IDENTITY_WORDS = 4


@dataclass(frozen=True)
class CodeTable:
    """A validated code table (build it with ``from_table``; the defaults are the table of the README)."""

    word_bits: int = 16
    trial_start: int = 1
    trial_end: int = 2
    image_offset: int = 3
    abort: int = 4
    fixation_break: int = 5
    onset_first: int = 32768
    """The first code of the onset range; the range holds ``onset_count`` codes."""
    onset_count: int = 32768
    identity: str = "order"
    identity_words: int = 1
    abort_reasons: tuple[tuple[str, int], ...] = tuple(DEFAULT_REASONS.items())

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> CodeTable:
        """The table a rig file's ``[markers.codes]`` gives (defaults for what it leaves out); every problem
        is raised as one ``CompactRigError``, one line each."""
        codes, problems = parse_code_table(table)
        if problems:
            raise CompactRigError("\n".join(problems))
        assert codes is not None  # made whenever there is no problem
        return codes

    @property
    def capacity(self) -> int:
        """How many identities the onset words tell apart: ``onset_count ** identity_words``."""
        return self.onset_count ** self.identity_words

    @property
    def reasons(self) -> dict[str, int]:
        return dict(self.abort_reasons)

    def to_table(self) -> dict[str, Any]:
        """The table as ``[markers.codes]`` writes it (what ``from_table`` reads back)."""
        table: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "abort_reasons"}
        return table | {"abort_reasons": self.reasons}

    def in_onset_range(self, word: int) -> bool:
        return self.onset_first <= word < self.onset_first + self.onset_count

    def identity_of(self, order: int, image_index: int | None) -> int:
        """The identity a presentation's words carry (before the modulo): its order or its image's index."""
        if self.identity == "order":
            return order
        if image_index is None:
            raise CompactRigError(f"presentation {order}: its image has no index in the set, which the code table's "
                                  "identity (image_index) needs")
        if not 0 <= image_index < self.capacity:
            raise CompactRigError(f"image index {image_index} does not fit the {self.capacity} identities of the code "
                                  "table (onset_count ** identity_words); raise identity_words in [markers.codes]")
        return image_index

    def identity_words_of(self, identity: int) -> tuple[int, ...]:
        """The onset words of ``identity`` (taken modulo ``capacity``), lowest digit first."""
        digits, rest = [], identity % self.capacity
        for _ in range(self.identity_words):
            rest, digit = divmod(rest, self.onset_count)
            digits.append(self.onset_first + digit)
        return tuple(digits)

    def encode(self, event: str, identity: int | None = None, reason: str | None = None) -> tuple[int, ...]:
        """The words of ``event``: ``onset`` and ``abort`` need the ``identity``, ``abort`` its ``reason``
        (an abort kind: ``fixation``, ``stopped``, ``dropped_frames``, ``missing``, ``markers``, else ``other``)."""
        if event == ONSET:
            if identity is None:
                raise ValueError("an onset's words carry its identity")
            return self.identity_words_of(identity)
        if event == "abort":
            if identity is None:
                raise ValueError("an abort's words carry the aborted presentation's identity")
            reasons = self.reasons
            return (self.abort, reasons.get(reason or "other", reasons["other"])) + self.identity_words_of(identity)
        if event not in EVENTS:
            raise ValueError(f"no event {event!r} in the code table (events: {', '.join((ONSET,) + EVENTS)})")
        return (getattr(self, event),)

    def unwrap(self, identity: int, near: int) -> int:
        """The order number whose identity (modulo ``capacity``) is ``identity`` and that lies nearest ``near``
        (e.g. the order expected next): order numbers grow without end, their words wrap around."""
        base = near - (near - identity) % self.capacity
        return base if near - base <= base + self.capacity - near else base + self.capacity

    def decode(self, words: Iterable[tuple[float, int]]) -> Decoded:
        """See the module function ``decode``."""
        return decode(self, words)


@dataclass(frozen=True)
class SentWord:
    """One word an output sent: for which event (and presentation or trial), and when (``pylsl.local_clock``,
    just before the word was handed to the device)."""

    event: str
    word: int
    time: float
    order: int | None = None
    trial: int | None = None


@dataclass(frozen=True)
class CodedEvent:
    """An event read back from words: ``time`` is its first word's (in whatever clock the words came in)."""

    event: str
    """``onset`` or one of ``EVENTS``."""
    time: float
    words: tuple[int, ...]
    identity: int | None = None
    """``onset`` and ``abort``: the presentation's identity modulo the table's ``capacity`` (an order number
    wraps around: ``CodeTable.unwrap`` gives it back; an image index is the index itself)."""
    reason: str | None = None
    """``abort``: the abort kind its reason code stands for."""


@dataclass(frozen=True)
class StrayWords:
    """Words that make no event (lost, repeated or foreign words): named, never shifted onto the next event."""

    time: float
    words: tuple[int, ...]
    problem: str


@dataclass(frozen=True)
class Decoded:
    events: list[CodedEvent]
    strays: list[StrayWords]


def decode(table: CodeTable, words: Iterable[tuple[float, int]]) -> Decoded:
    """Events from ``(time, word)`` pairs in the order they were recorded, with ``table`` (the session's).

    The counterpart of ``CodeTable.encode``: every well-formed group of words becomes a ``CodedEvent``
    (its time the time of its first word, e.g. the onset word sent at the flip); words that make no event
    become ``StrayWords`` saying why: a word not in the table, a reason without its abort, an identity cut
    short by another event's word (a word lost), or a word too wide for the table. Zeros (the lines back at
    rest, which some systems record as a word) are skipped. Nothing is guessed: a damaged group is reported
    whole and decoding goes on at the word that broke it.
    """
    pairs = [(float(t), w) for t, w in words]
    reasons = {code: kind for kind, code in table.abort_reasons}
    singles = {getattr(table, event): event for event in EVENTS if event != "abort"}
    limit = 2 ** table.word_bits
    events: list[CodedEvent] = []
    strays: list[StrayWords] = []
    k, n = 0, len(pairs)

    def identity_at(start: int) -> tuple[int | None, int]:
        """The identity of the onset words from ``start`` and where they end (None: cut short)."""
        end = start
        while end < n and end - start < table.identity_words and _is_word(pairs[end][1], limit) \
                and table.in_onset_range(pairs[end][1]):
            end += 1
        if end - start < table.identity_words:
            return None, end
        digits = [pairs[j][1] - table.onset_first for j in range(start, end)]
        return sum(d * table.onset_count ** j for j, d in enumerate(digits)), end

    while k < n:
        time, word = pairs[k]
        if _is_int(word) and word == 0:
            k += 1
            continue
        if not _is_word(word, limit):
            strays.append(StrayWords(time, (word,), f"{word!r} is not a {table.word_bits}-bit word"))
            k += 1
        elif table.in_onset_range(word):
            identity, end = identity_at(k)
            group = tuple(w for _, w in pairs[k:end])
            if identity is None:
                strays.append(StrayWords(time, group, f"onset identity cut short: {len(group)} of "
                                                      f"{table.identity_words} words"))
            else:
                events.append(CodedEvent(ONSET, time, group, identity=identity))
            k = end
        elif word == table.abort:
            if k + 1 >= n or not _is_word(pairs[k + 1][1], limit) or pairs[k + 1][1] not in reasons:
                strays.append(StrayWords(time, (word,), "abort word not followed by a reason code"))
                k += 1
                continue
            identity, end = identity_at(k + 2)
            group = tuple(w for _, w in pairs[k:end])
            if identity is None:
                strays.append(StrayWords(time, group, f"abort identity cut short: {len(group) - 2} of "
                                                      f"{table.identity_words} words"))
            else:
                events.append(CodedEvent("abort", time, group, identity=identity, reason=reasons[pairs[k + 1][1]]))
            k = end
        elif word in singles:
            events.append(CodedEvent(singles[word], time, (word,)))
            k += 1
        elif word in reasons:
            strays.append(StrayWords(time, (word,), f"abort reason code {word} without its abort word"))
            k += 1
        else:
            strays.append(StrayWords(time, (word,), f"word {word} is not in the code table"))
            k += 1
    return Decoded(events, strays)


def _is_int(value: Any) -> bool:
    """A whole number (TOML integer); true and false are not numbers."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_word(value: Any, limit: int) -> bool:
    return _is_int(value) and 0 <= value < limit


def parse_code_table(table: Any) -> tuple[CodeTable | None, list[str]]:
    """A ``CodeTable`` from a ``[markers.codes]`` table and every problem, one line each (then no table)."""
    if not isinstance(table, Mapping):
        return None, ["must be a table of event codes ([markers.codes])"]
    problems: list[str] = []
    known = [f.name for f in fields(CodeTable)]
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            problems.append(f"unknown key {key}; known: {', '.join(known)}")
        elif key == "identity":
            if value in IDENTITIES:
                values[key] = value
            else:
                problems.append(f"identity = {value!r}: expected one of {', '.join(repr(i) for i in IDENTITIES)}")
        elif key == "abort_reasons":
            values[key] = _reasons(value, problems)
        elif not _is_int(value):
            problems.append(f"{key} = {value!r}: expected a whole number")
        else:
            values[key] = value
    if problems:
        return None, problems
    codes = CodeTable(**values)
    problems += _consistency(codes)
    return (codes, []) if not problems else (None, problems)


def _reasons(value: Any, problems: list[str]) -> tuple[tuple[str, int], ...] | None:
    if not isinstance(value, Mapping):
        problems.append("abort_reasons must be a table of abort kind = code")
        return None
    unknown = sorted(set(value) - set(DEFAULT_REASONS))
    if unknown:
        problems.append(f"abort_reasons.{unknown[0]}: not an abort kind; known: {', '.join(DEFAULT_REASONS)}")
    wrong = [kind for kind, code in value.items() if kind in DEFAULT_REASONS and not _is_int(code)]
    for kind in wrong:
        problems.append(f"abort_reasons.{kind} = {value[kind]!r}: expected a whole number")
    return None if unknown or wrong else tuple({**DEFAULT_REASONS, **value}.items())


def _consistency(codes: CodeTable) -> list[str]:
    """What makes a table of well-typed values unusable: widths, ranges, shared codes."""
    if codes.word_bits not in WORD_BITS:
        return [f"word_bits = {codes.word_bits}: expected 8 or 16"]
    problems = []
    top = 2 ** codes.word_bits - 1
    if codes.onset_count < 2:
        problems.append(f"onset_count = {codes.onset_count}: give at least 2 codes to the onset range")
    if not 1 <= codes.onset_first or codes.onset_first + codes.onset_count - 1 > top:
        problems.append(f"the onset range {codes.onset_first}..{codes.onset_first + codes.onset_count - 1} must lie "
                        f"within 1..{top} ({codes.word_bits}-bit words; 0 is the lines at rest)")
    if not 1 <= codes.identity_words <= MAX_IDENTITY_WORDS:
        problems.append(f"identity_words = {codes.identity_words}: expected 1-{MAX_IDENTITY_WORDS}")
    named = [(event, getattr(codes, event)) for event in EVENTS]
    named += [(f"abort_reasons.{kind}", code) for kind, code in codes.abort_reasons]
    seen: dict[int, str] = {}
    for name, code in named:
        if not 1 <= code <= top:
            problems.append(f"{name} = {code}: expected a code 1-{top} ({codes.word_bits}-bit words; 0 is the lines "
                            "at rest)")
        elif codes.in_onset_range(code):
            problems.append(f"{name} = {code} lies in the onset range {codes.onset_first}.."
                            f"{codes.onset_first + codes.onset_count - 1}; give it a code outside it")
        elif code in seen:
            problems.append(f"{name} = {code} is also {seen[code]}: every event and reason needs its own code")
        else:
            seen[code] = name
    return problems
