"""A durable, multi-process outbox: events waiting for a sink, kept in a SQLite file (WAL).

Rows are claimed with a lease before delivery and deleted only after the sink accepted them,
so a crash mid-delivery leaves them to be claimed again once the lease expires (at-least-once;
sinks deduplicate on ``event_id``). Several processes may share one file.
"""

from __future__ import annotations as _annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._events import UsageEvent
from ._forksafe import renew_locks_after_fork

__all__ = ["Outbox", "OutboxRow", "default_outbox_dir"]

logger = logging.getLogger("a2a_llm_tracker")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    event_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    next_attempt REAL NOT NULL DEFAULT 0,
    claimed_by TEXT,
    claimed_until REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_sink_next ON outbox (sink, next_attempt);
"""


def default_outbox_dir() -> Path:
    """Where outboxes live unless configured: ``$A2A_TRACKER_OUTBOX_DIR`` or the user cache dir."""
    env = os.environ.get("A2A_TRACKER_OUTBOX_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "a2a-llm-tracker"


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One pending (sink, event) delivery."""

    id: int
    sink: str
    event: UsageEvent
    attempts: int


class Outbox:
    """A SQLite-backed queue of events per sink name.

    Args:
        path: the database file (created with its folder on first use).
        lease: seconds a claimed row stays reserved for the claimer before others may take it.
        fsync: ``synchronous=FULL`` instead of ``NORMAL`` (survives power loss, slower).
    """

    def __init__(self, path: str | Path, *, lease: float = 60.0, fsync: bool = False) -> None:
        self.path = Path(path)
        self.lease = lease
        self._fsync = fsync
        self._lock = threading.Lock()
        renew_locks_after_fork(self, "_lock")
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._owner = f"{os.getpid()}-{id(self):x}"

    # -- connection ------------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        pid = os.getpid()
        if self._conn is not None and self._pid == pid:
            return self._conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if self._fsync else 'NORMAL'}")
        conn.execute("PRAGMA busy_timeout=30000")
        _retry_locked(lambda: conn.executescript(_SCHEMA))
        self._conn, self._pid = conn, pid
        self._owner = f"{pid}-{id(self):x}"
        return conn

    def close(self) -> None:
        """Close the connection (the file and its rows stay)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    # -- operations ------------------------------------------------------------------------------------
    def put(self, sink: str, events: Iterable[UsageEvent], reason: str = "") -> int:
        """Store *events* for *sink*; returns how many were stored. Raises OSError/sqlite3.Error."""
        now = time.time()
        rows = [(sink, e.event_id, e.model_dump_json(), reason[:500], now) for e in events]
        if not rows:
            return 0
        with self._lock:
            conn = self._connect()

            def insert() -> None:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany(
                        "INSERT INTO outbox (sink, event_id, payload, reason, created) VALUES (?, ?, ?, ?, ?)", rows)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise

            _retry_locked(insert)
        return len(rows)

    def claim(self, sinks: Sequence[str], limit: int = 500, *, due_only: bool = True) -> list[OutboxRow]:
        """Reserve up to *limit* rows for any of *sinks* (oldest first) for this process.

        With ``due_only`` (default), rows waiting out a retry backoff are skipped.
        """
        if not sinks or not self.path.exists():
            return []
        now = time.time()
        due = now if due_only else float("inf")
        marks = ",".join("?" * len(sinks))
        with self._lock:
            conn = self._connect()

            def take() -> list[tuple[int, str, str, int]]:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    found = conn.execute(
                        f"SELECT id, sink, payload, attempts FROM outbox WHERE sink IN ({marks}) "
                        "AND next_attempt <= ? AND (claimed_by IS NULL OR claimed_until < ?) ORDER BY id LIMIT ?",
                        (*sinks, due, now, limit)).fetchall()
                    if found:
                        conn.executemany("UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE id = ?",
                                         [(self._owner, now + self.lease, r[0]) for r in found])
                    conn.execute("COMMIT")
                    return found
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise

            found = _retry_locked(take)
        rows: list[OutboxRow] = []
        bad: list[int] = []
        for row_id, sink, payload, attempts in found:
            try:
                rows.append(OutboxRow(row_id, sink, UsageEvent.model_validate(json.loads(payload)), attempts))
            except Exception:  # a corrupt row must not block the others; keep it, out of the way
                logger.error("outbox %s: row %s is unreadable; moved to sink '!corrupt'", self.path, row_id)
                bad.append(row_id)
        if bad:
            with self._lock:
                conn = self._connect()
                _retry_locked(lambda: conn.executemany(
                    "UPDATE outbox SET sink = '!corrupt', claimed_by = NULL WHERE id = ?", [(i,) for i in bad]))
        return rows

    def ack(self, row_ids: Iterable[int]) -> None:
        """Delete delivered rows."""
        ids = [(i,) for i in row_ids]
        if not ids:
            return
        with self._lock:
            conn = self._connect()
            _retry_locked(lambda: conn.executemany("DELETE FROM outbox WHERE id = ?", ids))

    def release(self, row_ids: Iterable[int], *, delay: float = 0.0) -> None:
        """Give claimed rows back after a failed delivery; they are due again after *delay* seconds."""
        ids = list(row_ids)
        if not ids:
            return
        due = time.time() + delay
        with self._lock:
            conn = self._connect()
            _retry_locked(lambda: conn.executemany(
                "UPDATE outbox SET claimed_by = NULL, claimed_until = 0, attempts = attempts + 1, next_attempt = ? "
                "WHERE id = ?", [(due, i) for i in ids]))

    def count(self, sinks: Sequence[str] | None = None) -> int:
        """How many rows wait (for *sinks*, or all)."""
        if not self.path.exists():
            return 0
        with self._lock:
            conn = self._connect()
            if sinks is None:
                return int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])
            marks = ",".join("?" * len(sinks))
            return int(conn.execute(f"SELECT count(*) FROM outbox WHERE sink IN ({marks})", tuple(sinks)).fetchone()[0])

    def sinks(self) -> list[str]:
        """The sink names that have rows waiting."""
        if not self.path.exists():
            return []
        with self._lock:
            conn = self._connect()
            return [r[0] for r in conn.execute("SELECT DISTINCT sink FROM outbox")]


def _retry_locked(fn, attempts: int = 50):  # type: ignore[no-untyped-def]
    """Run *fn*, retrying while SQLite reports the database as locked or busy."""
    delay = 0.005
    for attempt in range(attempts):
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            msg = str(exc).lower()
            if ("locked" not in msg and "busy" not in msg) or attempt == attempts - 1:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
    raise AssertionError("unreachable")
