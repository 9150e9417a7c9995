"""The Sink interface: where recorded events go.

A custom sink needs one method, ``write(event)``; ``write_many(events)`` is the batched path
the dispatcher uses (it defaults to calling ``write`` per event). Sinks are called from the
dispatcher's single writer thread, so a sink need not be thread-safe unless you also call it
yourself.
"""

from __future__ import annotations as _annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .._events import UsageEvent

__all__ = ["Sink", "SinkProtocol"]


@runtime_checkable
class SinkProtocol(Protocol):
    """What the dispatcher needs of a sink (duck typing is enough)."""

    def write(self, event: UsageEvent) -> None: ...


class Sink:
    """Base class for sinks.

    Subclasses implement :meth:`write` and may override :meth:`write_many`, :meth:`flush`
    and :meth:`close`. ``name`` identifies the sink in stats, logs and the outbox; it must be
    stable across restarts (so events parked for it are replayed into the same place).

    Example::

        class PrintSink(Sink):
            def write(self, event):
                logging.getLogger("app").info("%s cost %s", event.model, event.cost_usd)
    """

    #: Remote sinks (network stores) are fronted by a durable outbox.
    remote: bool = False

    @property
    def name(self) -> str:
        """A stable name for this sink (class name by default)."""
        return type(self).__name__

    def write(self, event: UsageEvent) -> None:
        """Store one event. Raise on failure: the dispatcher retries and never loses it."""
        raise NotImplementedError(f"{type(self).__name__} must implement write(event)")

    def write_many(self, events: Sequence[UsageEvent]) -> None:
        """Store a batch; the default calls :meth:`write` for each event."""
        for event in events:
            self.write(event)

    def flush(self, timeout: float | None = None) -> bool:
        """Push buffered data to storage; True when done within *timeout* seconds."""
        return True

    def close(self) -> None:
        """Release resources. Called once when the Meter closes."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def sink_name(sink: object) -> str:
    """The stable name of any sink object (duck-typed sinks get their class name)."""
    name = getattr(sink, "name", None)
    return name if isinstance(name, str) and name else type(sink).__name__
