"""SQLiteSink: the embedded default store, safe with many threads and processes writing at once."""

from __future__ import annotations as _annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .._events import UsageEvent
from .._forksafe import renew_locks_after_fork
from .._outbox import _retry_locked
from ..exceptions import ConfigurationError
from ._columns import COLUMNS, SCHEMA_VERSION, column_types, event_row, row_event
from .base import Sink

__all__ = ["SQLiteSink", "read_sqlite"]

TABLE = "usage_events"
_INDEXED = ("ts", "agent_id", "session_id", "model", "user_id")


def _create_sql() -> list[str]:
    types = column_types("sqlite")
    cols = ",\n    ".join(f"{name} {types[name]}" for name in COLUMNS)
    return [f"CREATE TABLE IF NOT EXISTS {TABLE} (\n    {cols}\n)",
            "CREATE TABLE IF NOT EXISTS a2a_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL, "
            "updated TEXT NOT NULL)"]


class SQLiteSink(Sink):
    """Stores events in table ``usage_events`` of a SQLite file (one column per field).

    WAL journal, a 30 s busy timeout and retries on "database is locked", so many threads and
    processes can write the same file; ``INSERT OR IGNORE`` on the ``event_id`` primary key
    makes redelivery idempotent. The schema version is kept in table ``a2a_schema``; a table
    from an older version gets its missing columns added.

    Args:
        path: the database file (its folder is created).
        synchronous: SQLite ``synchronous`` pragma (``NORMAL`` by default; ``FULL`` survives power loss).
    """

    def __init__(self, path: str | os.PathLike[str] = "usage.db", *, synchronous: str = "NORMAL") -> None:
        if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ConfigurationError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, got {synchronous!r}")
        self.path = Path(path)
        self._synchronous = synchronous.upper()
        self._lock = threading.Lock()
        renew_locks_after_fork(self, "_lock")
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        placeholders = ", ".join("?" * len(COLUMNS))
        self._insert = f"INSERT OR IGNORE INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({placeholders})"

    @property
    def name(self) -> str:
        return f"sqlite:{self.path.resolve()}"

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=30000")
        _retry_locked(lambda: conn.execute("PRAGMA journal_mode=WAL"))
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        _retry_locked(lambda: self._migrate(conn))
        self._conn, self._pid = conn, os.getpid()
        return conn

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in _create_sql():
                conn.execute(stmt)
            have = {row[1] for row in conn.execute(f"PRAGMA table_info({TABLE})")}
            types = column_types("sqlite")
            for name in COLUMNS:
                if name not in have:
                    conn.execute(f"ALTER TABLE {TABLE} ADD COLUMN {name} {types[name].replace(' PRIMARY KEY', '')}")
            for column in _INDEXED:  # after the columns exist (an older table may lack some)
                conn.execute(f"CREATE INDEX IF NOT EXISTS idx_{TABLE}_{column} ON {TABLE} ({column})")
            row = conn.execute("SELECT version FROM a2a_schema WHERE component = 'usage_events'").fetchone()
            if row is None or row[0] < SCHEMA_VERSION:
                conn.execute("INSERT OR REPLACE INTO a2a_schema VALUES ('usage_events', ?, ?)",
                             (SCHEMA_VERSION, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def write(self, event: UsageEvent) -> None:
        self.write_many([event])

    def write_many(self, events: Sequence[UsageEvent]) -> None:
        if not events:
            return
        rows = [event_row(e) for e in events]
        with self._lock:
            conn = self._connect()

            def insert() -> None:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany(self._insert, rows)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise

            _retry_locked(insert)

    def schema_version(self) -> int:
        """The schema version recorded in the file."""
        with self._lock:
            row = self._connect().execute(
                "SELECT version FROM a2a_schema WHERE component = 'usage_events'").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


def read_sqlite(path: str | os.PathLike[str], where: str = "", params: Sequence[Any] = ()) -> Iterator[UsageEvent]:
    """Read events back from a SQLite file written by :class:`SQLiteSink` (oldest first)."""
    conn = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True, timeout=30.0)
    conn.row_factory = sqlite3.Row
    try:
        sql = f"SELECT * FROM {TABLE} {('WHERE ' + where) if where else ''} ORDER BY ts"
        for row in conn.execute(sql, tuple(params)):
            yield row_event(dict(row))
    finally:
        conn.close()
