"""A guard around any response source: a fault never takes the session down.

A source that raises, disconnects or stalls gets the affected presentations marked
missing (with the reason), is reconnected with exponential backoff, and the user is
told through ``messages()``. Responses already delivered are never touched.
"""

from __future__ import annotations

from typing import Any

from compactrig.plugins.sources.base import Presentation, Response, ResponseSource

FIRST_RETRY_S = 0.5
MAX_RETRY_S = 10.0


class GuardedSource:
    """Wraps ``source``; ``now`` is always the LSL clock, passed in by the caller."""

    def __init__(self, source: ResponseSource) -> None:
        self.source = source
        self.connected = False
        self._pending: dict[int, Presentation] = {}
        self._messages: list[str] = []
        self._retry_in = FIRST_RETRY_S
        self._next_attempt = 0.0
        self._prepared: list[tuple[Any, Any]] = []
        """Every (ids, pixels) the source was told, told again after a reconnect."""

    @property
    def units(self) -> list[str]:
        return self.source.units

    def messages(self) -> list[str]:
        """What the user should be told since the last call (one line each)."""
        drained, self._messages = self._messages, []
        return drained

    def _fault(self, what: str, error: Exception, now: float) -> list[Response]:
        self.connected = False
        self._next_attempt = now + self._retry_in
        self._messages.append(f"source {self.source.name!r} {what} failed ({type(error).__name__}: {error}); "
                              f"retrying in {self._retry_in:g} s")
        self._retry_in = min(self._retry_in * 2, MAX_RETRY_S)
        try:
            self.source.close()
        except Exception:  # noqa: BLE001 - already failing; closing is best effort
            pass
        lost = [Response(p.order, p.image_id, None, self.source.window, f"source failed: {error}")
                for p in self._pending.values()]
        self._pending.clear()
        return lost

    def connect(self, now: float) -> list[Response]:
        """Try to (re)connect; returns presentations given up because of a failure."""
        try:
            self.source.connect()
            for image_ids, pixels in self._prepared:
                self.source.prepare(image_ids, pixels)
        except Exception as error:  # noqa: BLE001 - any plugin fault
            return self._fault("connect", error, now)
        if not self.connected and self._retry_in > FIRST_RETRY_S:
            self._messages.append(f"source {self.source.name!r} reconnected")
        self.connected, self._retry_in = True, FIRST_RETRY_S
        return []

    def prepare(self, image_ids: list[str], pixels: Any, now: float) -> list[Response]:
        self._prepared.append((image_ids, pixels))
        try:
            self.source.prepare(image_ids, pixels)
        except Exception as error:  # noqa: BLE001
            return self._fault("prepare", error, now)
        return []

    def submit(self, presentation: Presentation, now: float) -> list[Response]:
        """Register a shown image; a disconnected source gets it marked missing at once."""
        if not self.connected:
            return [Response(presentation.order, presentation.image_id, None, self.source.window,
                             "source disconnected")]
        self._pending[presentation.order] = presentation
        try:
            self.source.submit(presentation)
        except Exception as error:  # noqa: BLE001
            return self._fault("submit", error, now)
        return []

    def cancel(self, order: int) -> None:
        """Presentation ``order`` was aborted: no response is expected for it any more."""
        if self._pending.pop(order, None) is not None:
            try:
                self.source.cancel(order)
            except Exception:  # noqa: BLE001 - the next collect reports a broken source
                pass

    def collect(self, now: float) -> list[Response]:
        """Delivered responses, plus presentations given up (fault or timeout)."""
        if not self.connected:
            return self.connect(now) if now >= self._next_attempt else []
        try:
            got = self.source.collect(now)
            self._messages += [f"source {self.source.name!r}: {line}" for line in self.source.notices()]
        except Exception as error:  # noqa: BLE001
            return self._fault("collect", error, now)
        delivered = [r for r in got if self._pending.pop(r.order, None) is not None]
        limit = self.source.due_s + self.source.settings["timeout_s"]
        late = [p for p in self._pending.values() if now > p.onset_time + limit]
        for p in late:
            del self._pending[p.order]
            delivered.append(Response(p.order, p.image_id, None, self.source.window,
                                      f"no response within {self.source.settings['timeout_s']:g} s"))
        if late:
            self._messages.append(f"source {self.source.name!r}: {len(late)} presentation(s) got no response in time")
        return delivered

    def close(self) -> None:
        try:
            self.source.close()
        except Exception:  # noqa: BLE001
            pass
