"""Names in the order people count them: ``unit2`` before ``unit10``, ``201025:9`` before ``201025:10``.

Units, channels and neurons are numbered without zero padding; sorted as text, ``n10`` would come
between ``n1`` and ``n2`` in every table and export.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> list:
    """Text runs compare case-insensitively, digit runs as numbers (``re.split`` alternates them)."""
    return [int(part) if k % 2 else part.casefold() for k, part in enumerate(_DIGITS.split(name))]


def natural_sorted(names: Iterable[str]) -> list[str]:
    return sorted(names, key=natural_key)
