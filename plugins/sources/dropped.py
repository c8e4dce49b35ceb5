"""What a source threw away from its peer, counted by reason, and told to the user sparingly.

A peer that sends garbage must neither stop a session nor flood the user: each reason is told
on its 1st, 10th, 100th and every 1000th occurrence (or only once), and the totals stay readable.
"""

from __future__ import annotations


class DropCounter:
    """Counts dropped input per reason and queues the one-line notices the source hands on."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._notices: list[str] = []

    def drop(self, reason: str, detail: str = "", once: bool = False) -> None:
        """One more input dropped for ``reason`` (a stable phrase); ``detail`` names this one."""
        seen = self.counts[reason] = self.counts.get(reason, 0) + 1
        if seen == 1 or (not once and (seen in (10, 100) or seen % 1000 == 0)):
            what = f": {detail}" if detail else ""
            self._notices.append(f"{reason} ({seen} so far, dropped){what}")

    def notices(self) -> list[str]:
        told, self._notices = self._notices, []
        return told
