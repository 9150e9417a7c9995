"""Fixtures for the PostgreSQL sink tests: the real server at 127.0.0.1:5432, one schema per test,
and a TCP proxy in front of it that can be switched off and on to simulate an outage."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator

import pytest

psycopg = pytest.importorskip("psycopg", reason="psycopg 3 is not installed (pip install a2a-llm-tracker[postgres])")

PG_HOST, PG_PORT, PG_DB = "127.0.0.1", 5432, "test"


def _find_server() -> str | None:
    for user in ("postgres", "root"):
        dsn = f"host={PG_HOST} port={PG_PORT} dbname={PG_DB} user={user}"
        try:
            with psycopg.connect(dsn, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return dsn
        except psycopg.Error:
            continue
    return None


_DSN = _find_server()


@pytest.fixture(name="pg_dsn", scope="session")
def _pg_dsn() -> str:
    if _DSN is None:
        pytest.skip(f"no PostgreSQL server answers at {PG_HOST}:{PG_PORT} (database {PG_DB!r}, user postgres or "
                    "root, trust auth); these tests need a real server")
    return _DSN


@pytest.fixture(name="pg_user", scope="session")
def _pg_user(pg_dsn: str) -> str:
    return pg_dsn.rsplit("user=", 1)[1]


@pytest.fixture(name="pg_schema")
def _pg_schema(pg_dsn: str) -> Iterator[str]:
    """A fresh schema name for one test (the sink creates it); dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield schema
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(name="pg")
def _pg(pg_dsn: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection for assertions."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        yield conn


class TcpProxy:
    """Forwards 127.0.0.1:<port> to the PostgreSQL server; ``stop()`` is an outage (the port is
    closed and every forwarded connection dropped), ``start()`` brings it back on the same port."""

    def __init__(self, target: tuple[str, int] = (PG_HOST, PG_PORT)) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stop = threading.Event()
        threading.Thread(target=self._accept, args=(listener, self._stop), daemon=True).start()

    def _accept(self, listener: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
        listener.close()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


@pytest.fixture(name="proxy")
def _proxy(pg_dsn: str) -> Iterator[TcpProxy]:
    proxy = TcpProxy()
    proxy.start()
    yield proxy
    proxy.stop()
