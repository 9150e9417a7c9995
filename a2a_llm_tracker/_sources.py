"""Where stored events are read back from: a JSONL file, a SQLite file or a PostgreSQL DSN.

One small abstraction shared by reports, re-pricing, ``prices check`` and budget seeding, so
"what is a source" is decided in one place. SQL sources keep the work in the database
(callers build GROUP BY queries with :meth:`Source.sql_*` helpers); JSONL is streamed.
"""

from __future__ import annotations as _annotations

import json
import os
import re
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .exceptions import ConfigurationError
from .sinks._columns import _iso

__all__ = ["Source", "open_source", "parse_ts"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")

#: A progress hook: ``progress(done, total)``; *total* is None when unknown.
Progress = Callable[[int, int | None], None]


def parse_ts(value: str) -> datetime:
    """An ISO timestamp as stored (``...Z`` or with an offset) → aware UTC datetime."""
    dt = datetime.fromisoformat(value)
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


@dataclass(frozen=True)
class Source:
    """A resolved event store.

    Attributes:
        kind: ``jsonl``, ``sqlite`` or ``postgres``.
        location: the file path, or the DSN (as given).
        table: the events table for SQL sources (``usage_events`` unless told).
    """

    kind: str
    location: str
    table: str = "usage_events"

    # -- display ---------------------------------------------------------------------------------------
    @property
    def label(self) -> str:
        """The source for messages, without a password."""
        if self.kind == "postgres":
            from .sinks.postgres import mask_dsn  # no psycopg import for this

            return mask_dsn(self.location)
        return self.location

    @property
    def is_sql(self) -> bool:
        """True for SQLite and PostgreSQL."""
        return self.kind in ("sqlite", "postgres")

    # -- SQL dialect helpers ---------------------------------------------------------------------------
    @property
    def param(self) -> str:
        """The placeholder for one bound parameter."""
        return "%s" if self.kind == "postgres" else "?"

    def quoted_table(self) -> str:
        """The table name, quoted for SQL."""
        return ".".join(f'"{part}"' for part in self.table.split("."))

    def day_expr(self) -> str:
        """SQL for the event's UTC day as ``YYYY-MM-DD``."""
        if self.kind == "postgres":
            return "to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        return "substr(ts, 1, 10)"

    def ts_param(self, value: datetime) -> Any:
        """A datetime as the database compares it (SQLite stores fixed-width UTC text)."""
        return value if self.kind == "postgres" else _iso(value)

    def ts_value(self, value: Any) -> datetime | None:
        """A ``ts`` column value read back → aware UTC datetime."""
        if value is None:
            return None
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return parse_ts(str(value))

    # -- access ----------------------------------------------------------------------------------------
    def connect(self, *, write: bool = False) -> Any:
        """A DB-API connection (SQLite read-only unless *write*; psycopg for PostgreSQL).

        Raises:
            ConfigurationError: the database cannot be opened or has no events table.
        """
        if self.kind == "sqlite":
            mode = "rw" if write else "ro"
            try:
                uri = f"file:{urllib.parse.quote(str(Path(self.location).resolve()))}?mode={mode}"
                conn = sqlite3.connect(uri, uri=True, timeout=30.0,
                                       isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA busy_timeout=30000")
                found = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                                     (self.table,)).fetchone()
            except sqlite3.DatabaseError as exc:
                raise ConfigurationError(f"{self.label} is not a readable SQLite database: {exc}") from None
            if not found:
                conn.close()
                raise ConfigurationError(f"{self.label} has no table {self.table!r} (is it a tracker database?)")
            return conn
        if self.kind == "postgres":
            from .exceptions import AdapterUnavailable
            from .sinks import postgres as pg  # the sink's helpers: one way to connect

            try:
                psycopg = pg._psycopg()
            except AdapterUnavailable:
                raise ConfigurationError("reading PostgreSQL needs psycopg: pip install "
                                         "a2a-llm-tracker[postgres]") from None
            try:  # no statement timeout: a report over a big table may take a while
                pg_conn = pg.connect(self.location, connect_timeout=10, statement_timeout=None, autocommit=not write)
            except psycopg.Error as exc:
                raise ConfigurationError(f"cannot connect to {self.label}: {str(exc).strip().splitlines()[0]}") \
                    from None
            row = pg_conn.execute("SELECT to_regclass(%s)", (self.quoted_table(),)).fetchone()
            if row is None or row[0] is None:
                pg_conn.close()
                raise ConfigurationError(f"{self.label} has no table {self.table!r} (is it a tracker database?)")
            if write:
                pg_conn.rollback()  # leave no transaction open from the check
            return pg_conn
        raise ConfigurationError(f"{self.label} is not a SQL source")

    def iter_jsonl(self, progress: Progress | None = None) -> Iterator[dict[str, Any]]:
        """Stream the raw JSON objects of a JSONL source (blank lines skipped).

        Raises:
            ConfigurationError: a line is not a JSON object (the message names the line).
        """
        path = Path(self.location)
        total = path.stat().st_size
        done = 0
        decode = json.JSONDecoder().decode  # skips json.loads' per-call encoding detection
        with open(path, "rb") as fh:
            for number, line in enumerate(fh, 1):
                done += len(line)
                if progress is not None and number % 65536 == 0:
                    progress(done, total)
                if not line.strip():
                    continue
                try:
                    obj = decode(line.decode("utf-8"))
                except ValueError as exc:  # also UnicodeDecodeError
                    raise ConfigurationError(f"{self.label}:{number}: not a JSON line ({exc})") from None
                if not isinstance(obj, dict):
                    raise ConfigurationError(f"{self.label}:{number}: not a usage event (expected a JSON object)")
                yield obj
        if progress is not None:
            progress(total, total)


def open_source(source: str | os.PathLike[str] | Source, *, table: str | None = None) -> Source:
    """Resolve *source*: a ``postgresql://`` DSN, a ``.db``/``.sqlite`` file or a ``.jsonl`` file.

    A file with another suffix is recognised by its first bytes (SQLite header or JSON).

    Raises:
        ConfigurationError: the file does not exist, the kind cannot be told, or *table* is not a name.
    """
    if isinstance(source, Source):
        return source
    if table is not None and not _IDENT.match(table):
        raise ConfigurationError(f"table must be a name like usage_events or schema.usage_events, got {table!r}")
    text = os.fspath(source)
    if not isinstance(text, str):
        raise ConfigurationError(f"SOURCE must be a path or a DSN, got {type(source).__name__}")
    tbl = table or "usage_events"
    if text.startswith(("postgresql://", "postgres://")):
        return Source("postgres", text, tbl)
    if "://" in text:
        raise ConfigurationError(f"unsupported SOURCE {text!r}: expected a .jsonl or .db file or a postgresql:// DSN")
    path = Path(text)
    if not path.exists():
        raise ConfigurationError(f"SOURCE {text!r} does not exist")
    if path.is_dir():
        raise ConfigurationError(f"SOURCE {text!r} is a directory, expected a .jsonl or .db file")
    suffix = path.suffix.lower()
    if suffix in _SQLITE_SUFFIXES:
        return Source("sqlite", text, tbl)
    if suffix in _JSONL_SUFFIXES:
        return Source("jsonl", text, tbl)
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head.startswith(b"SQLite format 3"):
        return Source("sqlite", text, tbl)
    if head.lstrip()[:1] in (b"{", b""):
        return Source("jsonl", text, tbl)
    raise ConfigurationError(f"cannot tell what {text!r} is: expected a .jsonl or .db file or a postgresql:// DSN")
