"""MemorySink: keeps events in a list (tests, notebooks)."""

from __future__ import annotations as _annotations

import threading
from collections.abc import Sequence

from .._events import UsageEvent
from .._forksafe import renew_locks_after_fork
from .base import Sink

__all__ = ["MemorySink"]


class MemorySink(Sink):
    """Keeps every event it receives in :attr:`events` (deduplicated by ``event_id``).

    Args:
        name: the sink's name (give two memory sinks on one meter distinct names).
    """

    def __init__(self, name: str = "memory") -> None:
        self._name = name
        self._lock = threading.Lock()
        renew_locks_after_fork(self, "_lock")
        self._events: list[UsageEvent] = []
        self._ids: set[str] = set()
        self.writes = 0  #: number of write calls that stored something (batches count once)

    @property
    def name(self) -> str:
        return self._name

    @property
    def events(self) -> list[UsageEvent]:
        """A copy of the events received so far, in arrival order."""
        with self._lock:
            return list(self._events)

    def write(self, event: UsageEvent) -> None:
        self.write_many([event])

    def write_many(self, events: Sequence[UsageEvent]) -> None:
        with self._lock:
            for event in events:
                if event.event_id not in self._ids:  # redelivery is idempotent
                    self._ids.add(event.event_id)
                    self._events.append(event)
            self.writes += 1

    def clear(self) -> None:
        """Forget everything received."""
        with self._lock:
            self._events.clear()
            self._ids.clear()

    def __len__(self) -> int:
        return len(self._events)
