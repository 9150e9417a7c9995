"""PostgresSink: one shared store for many agents on many hosts (psycopg 3, extra ``postgres``).

The table has the same name and columns as the SQLite store (``usage_events``, one column per
:class:`UsageEvent` field, see ``_columns.py``); the sink creates and migrates it under an
advisory lock, so many processes starting at once do not race, and records the schema version
in table ``a2a_schema``. A batch goes in with one ``COPY`` straight into the table; when it
holds an ``event_id`` already stored (a redelivery), the COPY fails as a whole and the batch is
copied into a session temp table and merged with ``INSERT ... SELECT ... ON CONFLICT (event_id)
DO NOTHING``, so a redelivered event is stored once.

A durable outbox (SQLite, :class:`a2a_llm_tracker._outbox.Outbox`) sits in front of the
database: when the server cannot be reached, ``write_many`` parks the batch there and returns
at once (the connect timeout is bounded and, after a failure, the sink does not try again for
``retry_interval`` seconds), and a background thread or the next successful write delivers the
backlog. A database outage loses nothing and does not stall the writer thread.

The module also holds the helpers other readers of the table reuse: :func:`connect`,
:func:`ensure_schema`, :func:`qualified_table`, :func:`mask_dsn`, :func:`dsn_identity` and
:func:`read_postgres`. psycopg is imported only inside them.
"""

from __future__ import annotations as _annotations

import hashlib
import logging
import math
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._events import UsageEvent
from .._outbox import Outbox, default_outbox_dir
from .._redact import scrub_secrets
from ..exceptions import AdapterUnavailable, ConfigurationError, ExportError, SinkError
from ._columns import (
    COLUMNS,
    SCHEMA_VERSION,
    column_types,
    event_row,
    row_event,
)
from .base import Sink

if TYPE_CHECKING:  # pragma: no cover
    import psycopg

__all__ = [
    "TABLE",
    "PostgresSink",
    "connect",
    "dsn_identity",
    "ensure_schema",
    "is_connection_error",
    "mask_dsn",
    "pg_row",
    "qualified_table",
    "read_postgres",
]

logger = logging.getLogger("a2a_llm_tracker")

#: The default table name (the same as SQLite's).
TABLE = "usage_events"
_INDEXED = ("ts", "agent_id", "session_id", "model", "user_id")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# One advisory lock key for every migration the tracker runs in a database (stable across releases).
_MIGRATE_LOCK = int.from_bytes(hashlib.sha1(b"a2a_llm_tracker:migrate").digest()[:8], "big", signed=True)
_INSTALL_HINT = "PostgresSink needs psycopg 3: pip install a2a-llm-tracker[postgres]"


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise AdapterUnavailable(_INSTALL_HINT) from exc
    return psycopg


# -- DSN helpers -----------------------------------------------------------------------------------------
_KV_SECRET = re.compile(r"(?i)\b((?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")


def mask_dsn(dsn: str) -> str:
    """*dsn* with any password replaced by ``***`` (URL or ``key=value`` form); safe to log."""
    if "://" in dsn:
        try:
            parts = urllib.parse.urlsplit(dsn)
        except ValueError:
            return "postgresql://***"
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hosts = netloc.rpartition("@")
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:***@{hosts}" if ":" in userinfo else f"{user}@{hosts}"
        query = "&".join(
            f"{k}=***" if k.lower() in ("password", "sslpassword") else f"{k}={urllib.parse.quote(v, safe='')}"
            for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    return _KV_SECRET.sub(lambda m: m.group(1) + "***", dsn)


def dsn_identity(dsn: str) -> str:
    """A stable, password-free ``user@host:port/dbname`` for *dsn* (for sink names and logs)."""
    try:
        info = _psycopg().conninfo.conninfo_to_dict(dsn)
    except AdapterUnavailable:
        raise
    except Exception as exc:
        raise ConfigurationError(f"not a valid PostgreSQL DSN: {mask_dsn(dsn)!r} ({type(exc).__name__})") from None
    user = info.get("user") or os.environ.get("PGUSER") or ""
    host = info.get("host") or info.get("hostaddr") or os.environ.get("PGHOST") or "local"
    port = info.get("port") or os.environ.get("PGPORT") or "5432"
    dbname = info.get("dbname") or os.environ.get("PGDATABASE") or user
    return f"{user}@{host}:{port}/{dbname}"


def _secret_of(dsn: str) -> str | None:
    try:
        password = _psycopg().conninfo.conninfo_to_dict(dsn).get("password")
    except Exception:
        return None
    return str(password) if password else None


def _check_ident(kind: str, value: str) -> str:
    if not isinstance(value, str) or not _IDENT.match(value):
        raise ConfigurationError(f"PostgreSQL {kind} name must be a plain identifier (letters, digits, _; "
                                 f"at most 63 characters, not starting with a digit), got {value!r}")
    return value


def qualified_table(table: str = TABLE, schema: str | None = None) -> str:
    """The quoted ``"schema"."table"`` (or ``"table"``) after checking both are plain identifiers."""
    _check_ident("table", table)
    if schema is None:
        return f'"{table}"'
    return f'"{_check_ident("schema", schema)}"."{table}"'


def is_connection_error(exc: BaseException) -> bool:
    """True for errors that mean "the server cannot be reached now" (park and retry later)."""
    psycopg = _psycopg()
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


def connect(dsn: str, *, connect_timeout: float = 3.0, statement_timeout: float | None = 30.0,
            autocommit: bool = False) -> psycopg.Connection[Any]:
    """Open a psycopg connection with a bounded connect timeout (libpq's minimum is 2 s).

    Raises:
        AdapterUnavailable: psycopg is not installed.
        psycopg.OperationalError: the server cannot be reached (the message has no password).
    """
    psycopg = _psycopg()
    conn = psycopg.connect(dsn, connect_timeout=max(2, math.ceil(connect_timeout)), autocommit=autocommit,
                           application_name="a2a-llm-tracker")
    if statement_timeout:
        with conn.cursor() as cur:
            cur.execute(f"SET statement_timeout = {int(statement_timeout * 1000)}")
        if not autocommit:
            conn.commit()
    return conn


def _create_statements(table: str, schema: str | None) -> list[str]:
    qname = qualified_table(table, schema)
    types = column_types("postgres")
    cols = ",\n    ".join(f"{name} {types[name]}" for name in COLUMNS)
    stmts = [f"CREATE SCHEMA IF NOT EXISTS \"{schema}\""] if schema else []
    stmts.append(f"CREATE TABLE IF NOT EXISTS {qname} (\n    {cols}\n)")
    return stmts


def ensure_schema(conn: psycopg.Connection[Any], table: str = TABLE, schema: str | None = None) -> int:
    """Create or migrate the events table and ``a2a_schema``; returns the recorded schema version.

    Runs in one transaction under a database-wide advisory lock, so many processes starting
    at once neither race on ``CREATE`` nor add a column twice. Missing columns of a table from
    an older version are added. Commits.
    """
    qname = qualified_table(table, schema)
    meta = qualified_table("a2a_schema", schema)
    types = column_types("postgres")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
            for stmt in _create_statements(table, schema):
                cur.execute(stmt)
            cur.execute("SELECT column_name FROM information_schema.columns "
                        "WHERE table_schema = COALESCE(%s, current_schema()) AND table_name = %s", (schema, table))
            have = {row[0] for row in cur.fetchall()}
            for name in COLUMNS:
                if name not in have:
                    cur.execute(f"ALTER TABLE {qname} ADD COLUMN IF NOT EXISTS {name} "
                                f"{types[name].replace(' PRIMARY KEY', '')}")
            for col in _INDEXED:
                cur.execute(f'CREATE INDEX IF NOT EXISTS "{table}_{col}_idx" ON {qname} ({col})')
            cur.execute(f"CREATE TABLE IF NOT EXISTS {meta} (component TEXT PRIMARY KEY, "
                        "version INTEGER NOT NULL, updated TEXT NOT NULL)")
            cur.execute(f"INSERT INTO {meta} AS m (component, version, updated) VALUES (%s, %s, %s) "
                        "ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version, updated = EXCLUDED.updated "
                        "WHERE m.version < EXCLUDED.version",
                        (table, SCHEMA_VERSION, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())))
            cur.execute(f"SELECT version FROM {meta} WHERE component = %s", (table,))
            row = cur.fetchone()
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return int(row[0]) if row else 0


def read_postgres(dsn: str, where: str = "", params: Sequence[Any] = (), *, table: str = TABLE,
                  schema: str | None = None, batch_size: int = 5000) -> Iterator[UsageEvent]:
    """Read events back from a table written by :class:`PostgresSink` (oldest first).

    Uses a server-side cursor, so a million rows stream in constant memory. *where* is a SQL
    condition with ``%s`` placeholders for *params*.
    """
    qname = qualified_table(table, schema)
    conn = connect(dsn, statement_timeout=None)
    try:
        from psycopg.rows import dict_row

        sql = f"SELECT {', '.join(COLUMNS)} FROM {qname} {('WHERE ' + where) if where else ''} ORDER BY ts"
        with conn.cursor(name="a2a_read", row_factory=dict_row) as cur:
            cur.itersize = batch_size
            cur.execute(sql, tuple(params))
            for row in cur:
                yield row_event(row)
    finally:
        conn.close()


def pg_row(event: UsageEvent) -> tuple[Any, ...]:
    """The event as a PostgreSQL row: :func:`event_row` with native datetimes and bools."""
    return event_row(event, native_time=True, native_bool=True)


# -- the sink -------------------------------------------------------------------------------------------
class _Unavailable(Exception):
    """The database could not be reached (internal: the batch is parked)."""


class PostgresSink(Sink):
    """Stores events in a PostgreSQL table, with a durable outbox in front.

    Args:
        dsn: a libpq connection string or URL (``postgresql://user@host:5432/db``). Its password
            never appears in ``name``, logs, errors or the outbox.
        table: the table name (default ``usage_events``).
        schema: the PostgreSQL schema (created if missing); None uses the connection's search_path.
        outbox_path: the outbox file; default ``<outbox dir>/postgres-outbox.db`` (shared by every
            PostgresSink in the process tree, keyed by ``name``).
        connect_timeout: seconds to wait for a connection (libpq rounds up, minimum 2).
        statement_timeout: seconds a batch may take on the server (None: server default).
        retry_interval: after a failed connection, seconds during which batches go straight to
            the outbox (no connect attempt), and the interval of the background retry.
        method: ``"copy"`` (COPY into the table; on a duplicate, COPY into a temp table and
            ``INSERT ... ON CONFLICT DO NOTHING``; default) or ``"insert"`` (pipelined
            ``INSERT ... ON CONFLICT DO NOTHING`` per row; slower, measured in benchmarks/).

    Raises:
        AdapterUnavailable: psycopg is not installed (``pip install a2a-llm-tracker[postgres]``).
        ConfigurationError: the DSN, table or schema name is invalid.

    Example::

        meter = Meter(pricing=pricing, sinks=[PostgresSink("postgresql://tracker@db:5432/usage")])

    .. versionadded:: 0.1
    """

    remote = True

    def __init__(self, dsn: str, *, table: str = TABLE, schema: str | None = None,
                 outbox_path: str | os.PathLike[str] | None = None, connect_timeout: float = 3.0,
                 statement_timeout: float | None = 30.0, retry_interval: float = 5.0, method: str = "copy",
                 drain_batch: int = 1000) -> None:
        _psycopg()
        if not isinstance(dsn, str) or not dsn.strip():
            raise ConfigurationError("PostgresSink needs a DSN string, e.g. 'postgresql://user@host:5432/db'")
        if method not in ("copy", "insert"):
            raise ConfigurationError(f"PostgresSink method must be 'copy' or 'insert', got {method!r}")
        for label, value in (("connect_timeout", connect_timeout), ("retry_interval", retry_interval)):
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ConfigurationError(f"PostgresSink {label} must be a non-negative number of seconds, "
                                         f"got {value!r}")
        self._qname = qualified_table(table, schema)
        self._dsn = dsn
        self._secret = _secret_of(dsn)
        self.table = table
        self.schema = schema
        self._identity = dsn_identity(dsn)
        self._name = f"postgres:{self._identity}/{schema or '-'}.{table}"
        self.connect_timeout = float(connect_timeout)
        self.statement_timeout = statement_timeout
        self.retry_interval = float(retry_interval)
        self.method = method
        self._drain_batch = int(drain_batch)
        self._outbox = Outbox(Path(outbox_path) if outbox_path else default_outbox_dir() / "postgres-outbox.db")
        self._lock = threading.RLock()
        self._conn: Any = None
        self._pid = 0
        self._stage_ready = False
        self._down_until = 0.0
        self._maybe_pending = True  # rows parked by an earlier run or another process may be waiting
        self._closed = False
        self._stop = threading.Event()
        self._retry_thread: threading.Thread | None = None
        self._last_warning = 0.0
        self.counts: dict[str, int] = {"written": 0, "parked": 0, "drained": 0, "reconnects": 0}
        cols = ", ".join(COLUMNS)
        self._stage = f"a2a_stage_{hashlib.sha1(self._qname.encode()).hexdigest()[:12]}"
        self._copy_sql = f"COPY {self._stage} ({cols}) FROM STDIN"
        self._direct_copy_sql = f"COPY {self._qname} ({cols}) FROM STDIN"
        self._merge_sql = (f"INSERT INTO {self._qname} ({cols}) SELECT {cols} FROM {self._stage} "
                           "ON CONFLICT (event_id) DO NOTHING")
        self._insert_sql = (f"INSERT INTO {self._qname} ({cols}) VALUES ({', '.join(['%s'] * len(COLUMNS))}) "
                            "ON CONFLICT (event_id) DO NOTHING")

    # -- identity --------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """``postgres:user@host:port/db/schema.table``: stable, and never contains the password."""
        return self._name

    @property
    def outbox(self) -> Outbox:
        """The outbox holding batches the database has not taken yet."""
        return self._outbox

    def pending(self) -> int:
        """Events parked in the outbox for this sink (all processes sharing the outbox file)."""
        return self._outbox.count([self._name])

    # -- connection ------------------------------------------------------------------------------------
    def _connection(self) -> Any:
        if self._pid != os.getpid():  # forked: the parent's connection is not ours
            self._conn, self._retry_thread, self._stop = None, None, threading.Event()
            self._pid = os.getpid()
        conn = self._conn
        if conn is not None and not conn.closed and not getattr(conn, "broken", False):
            return conn
        self._drop_connection()
        try:
            conn = connect(self._dsn, connect_timeout=self.connect_timeout,
                           statement_timeout=self.statement_timeout)
            ensure_schema(conn, self.table, self.schema)
        except Exception as exc:
            if conn is not None and not conn.closed:
                conn.close()
            if is_connection_error(exc):
                raise _Unavailable(self._clean(exc)) from None
            raise ExportError(f"{self._name}: could not prepare the table: {self._clean(exc)}") from None
        self._conn, self._stage_ready = conn, False
        return conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        self._stage_ready = False
        if conn is not None and self._pid == os.getpid():
            try:
                conn.close()
            except Exception:
                pass

    def _clean(self, exc: BaseException) -> str:
        text = f"{type(exc).__name__}: {str(exc).strip()}"
        if self._secret:
            text = text.replace(self._secret, "***")
        return scrub_secrets(text)[:500]

    # -- writing ---------------------------------------------------------------------------------------
    def write(self, event: UsageEvent) -> None:
        """Store one event (see :meth:`write_many`)."""
        self.write_many([event])

    def write_many(self, events: Sequence[UsageEvent]) -> None:
        """Store *events*; when the database cannot be reached, park them in the outbox and return.

        Raises:
            ExportError: the database refused the batch for another reason (the dispatcher
                retries and isolates the bad event).
        """
        if not events:
            return
        with self._lock:
            if self._closed:
                raise SinkError(f"{self._name} is closed")
            if time.monotonic() < self._down_until:
                self._park(events, "database unavailable (waiting to retry)")
                return
            try:
                self._insert(events)
            except _Unavailable as exc:
                self._down_until = time.monotonic() + self.retry_interval
                self._park(events, str(exc))
                return
            if self._maybe_pending:
                self._drain_locked(deadline=time.monotonic() + 1.0)

    def _insert(self, events: Sequence[UsageEvent]) -> None:
        """Insert on the current connection; after a dead connection, reconnect once and retry."""
        rows = [pg_row(e) for e in events]
        had_connection = self._conn is not None
        for attempt in (1, 2):
            conn = self._connection()
            try:
                self._insert_rows(conn, rows)
                self.counts["written"] += len(rows)
                return
            except Exception as exc:
                try:
                    conn.rollback()
                except Exception:
                    pass
                if not is_connection_error(exc):
                    raise ExportError(f"{self._name}: insert failed: {self._clean(exc)}") from None
                self._drop_connection()
                if attempt == 2 or not had_connection:
                    raise _Unavailable(self._clean(exc)) from None
                self.counts["reconnects"] += 1  # the server restarted or killed us: one fresh try

    def _insert_rows(self, conn: Any, rows: list[tuple[Any, ...]]) -> None:
        if self.method == "insert":
            with conn.cursor() as cur:
                cur.executemany(self._insert_sql, rows)
            conn.commit()
            return
        # Optimistic: COPY straight into the table (fresh events, the normal case). A redelivered
        # event_id makes it fail as a whole; then stage the batch and merge with ON CONFLICT.
        unique_violation = _psycopg().errors.UniqueViolation
        try:
            with conn.cursor() as cur, cur.copy(self._direct_copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
            conn.commit()
            return
        except unique_violation:
            conn.rollback()
        with conn.cursor() as cur:
            if not self._stage_ready:
                cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {self._stage} "
                            f"(LIKE {self._qname} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
                self._stage_ready = True
            with cur.copy(self._copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(self._merge_sql)
        conn.commit()

    # -- outbox ----------------------------------------------------------------------------------------
    def _park(self, events: Sequence[UsageEvent], reason: str) -> None:
        self._outbox.put(self._name, events, reason)  # raises only if the outbox itself fails
        self.counts["parked"] += len(events)
        self._maybe_pending = True
        now = time.monotonic()
        if now - self._last_warning > 30.0:  # a long outage must not flood the log
            self._last_warning = now
            logger.warning("a2a_llm_tracker: %s unavailable (%s); %d event(s) parked in the outbox %s, "
                           "retrying every %.0f s", self._name, reason, len(events), self._outbox.path,
                           self.retry_interval)
        self._ensure_retry_thread()

    def _drain_locked(self, deadline: float) -> bool:
        """Deliver parked rows until none are left or *deadline*; True when none are left."""
        while time.monotonic() < deadline:
            rows = self._outbox.claim([self._name], limit=self._drain_batch)
            if not rows:
                self._maybe_pending = False
                return True
            try:
                self._insert([r.event for r in rows])
            except _Unavailable as exc:
                self._down_until = time.monotonic() + self.retry_interval
                self._outbox.release((r.id for r in rows), delay=0.0)
                logger.debug("a2a_llm_tracker: %s still unavailable: %s", self._name, exc)
                return False
            except ExportError:
                # A bad row in the batch: deliver one by one, keep the ones the database refuses.
                ok, bad = [], []
                for r in rows:
                    try:
                        self._insert([r.event])
                        ok.append(r.id)
                    except Exception:
                        bad.append(r.id)
                self._outbox.ack(ok)
                self._outbox.release(bad, delay=60.0)
                self.counts["drained"] += len(ok)
                if bad:
                    logger.error("a2a_llm_tracker: %s refused %d parked event(s); kept in the outbox",
                                 self._name, len(bad))
                    return False
                continue
            self._outbox.ack(r.id for r in rows)
            self.counts["drained"] += len(rows)
        return False

    def drain(self, timeout: float | None = None) -> bool:
        """Deliver what waits in the outbox now; True when nothing is left for this sink."""
        with self._lock:
            if time.monotonic() < self._down_until:
                return self.pending() == 0
            return self._drain_locked(time.monotonic() + (3600.0 if timeout is None else timeout))

    def _ensure_retry_thread(self) -> None:
        if self._closed or (self._retry_thread is not None and self._retry_thread.is_alive()):
            return
        thread = threading.Thread(target=self._retry_loop, name="a2a-llm-tracker-postgres-retry", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # interpreter shutting down: the rows stay in the outbox
            return
        self._retry_thread = thread

    def _retry_loop(self) -> None:
        while not self._stop.wait(max(self.retry_interval, 0.05)):
            try:
                with self._lock:
                    if self._closed:
                        return
                    if time.monotonic() < self._down_until:
                        continue
                    if self._drain_locked(time.monotonic() + 10.0):
                        return  # nothing left; the next parked batch starts a new thread
            except Exception:  # keep trying; never let the thread die with rows waiting
                logger.warning("a2a_llm_tracker: %s retry failed", self._name, exc_info=True)

    # -- lifecycle -------------------------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> bool:
        """Try to deliver the backlog; True when nothing waits for this sink."""
        if not self._maybe_pending:
            return True
        try:
            return self.drain(timeout)
        except Exception:
            logger.warning("a2a_llm_tracker: %s flush failed", self._name, exc_info=True)
            return False

    def schema_version(self) -> int:
        """The schema version recorded in the database (connects if needed)."""
        with self._lock:
            try:
                conn = self._connection()
            except _Unavailable as exc:
                raise ExportError(f"{self._name}: {exc}") from None
            return ensure_schema(conn, self.table, self.schema)

    def close(self) -> None:
        """Stop the retry thread and close the connection; parked events stay in the outbox."""
        self._stop.set()
        with self._lock:
            self._closed = True
            self._drop_connection()
            self._outbox.close()
