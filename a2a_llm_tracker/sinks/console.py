"""ConsoleSink: one short line per event on a stream (stderr by default)."""

from __future__ import annotations as _annotations

import sys
import threading
from collections.abc import Sequence
from typing import IO

from .._events import UsageEvent
from .._forksafe import renew_locks_after_fork
from .base import Sink

__all__ = ["ConsoleSink"]


def _fmt_cost(cost: float | None) -> str:
    return "unpriced" if cost is None else f"${cost:.6f}"


class ConsoleSink(Sink):
    """Writes ``model in/out tokens cost agent session`` lines, or full JSON with ``json=True``."""

    def __init__(self, stream: IO[str] | None = None, *, json: bool = False) -> None:
        self._stream = stream
        self._json = json
        self._lock = threading.Lock()
        renew_locks_after_fork(self, "_lock")

    @property
    def name(self) -> str:
        return "console"

    def write_many(self, events: Sequence[UsageEvent]) -> None:
        stream = self._stream or sys.stderr
        if self._json:
            text = "".join(e.model_dump_json() + "\n" for e in events)
        else:
            text = "".join(
                f"[a2a-llm-tracker] {e.status} {e.provider or '?'}/{e.model or '?'} "
                f"in={e.input_tokens} out={e.output_tokens} cached={e.cached_input_tokens} "
                f"reasoning={e.reasoning_tokens} cost={_fmt_cost(e.cost_usd)} accuracy={e.accuracy} "
                f"agent={e.agent_id} session={e.session_id}\n" for e in events)
        with self._lock:
            stream.write(text)
            stream.flush()

    def write(self, event: UsageEvent) -> None:
        self.write_many([event])
