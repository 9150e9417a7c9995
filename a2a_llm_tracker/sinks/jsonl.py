"""JSONLSink: one JSON object per line, safe with many threads and processes appending at once."""

from __future__ import annotations as _annotations

import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from .._events import UsageEvent
from .._forksafe import renew_locks_after_fork
from .base import Sink

try:  # POSIX advisory locks keep writers of other processes from interleaving
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["JSONLSink", "read_jsonl"]

_CHUNK = 4 << 20


class JSONLSink(Sink):
    """Appends events as JSON lines to *path*.

    Each batch is written with ``O_APPEND`` under an exclusive ``flock`` in as few ``write``
    calls as possible, so lines from concurrent threads and processes never tear or interleave.

    Args:
        path: the file (its folder is created).
        fsync: ``os.fsync`` after every batch (durable against power loss, slower).
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.path = Path(path)
        self._fsync = fsync
        self._lock = threading.Lock()
        renew_locks_after_fork(self, "_lock")
        self._fd: int | None = None
        self._pid = 0

    @property
    def name(self) -> str:
        return f"jsonl:{self.path.resolve()}"

    def _open(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._pid = os.getpid()
        return self._fd

    def write(self, event: UsageEvent) -> None:
        self.write_many([event])

    def write_many(self, events: Sequence[UsageEvent]) -> None:
        if not events:
            return
        data = b"".join([e.model_dump_json().encode() + b"\n" for e in events])
        with self._lock:
            fd = self._open()
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view[:_CHUNK])
                    view = view[written:]
                if self._fsync:
                    os.fsync(fd)
            finally:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[UsageEvent]:
    """Read events back from a JSONL file (skips blank lines; raises on a malformed line)."""
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield UsageEvent.model_validate_json(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: not a usage event: {exc}") from exc
