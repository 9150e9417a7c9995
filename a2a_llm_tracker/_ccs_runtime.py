"""The one thread that talks to CCS: the ``mftsccs`` client (import name ``ccs``) and its process-global state.

The client keeps its configuration, bearer token and caches in class attributes and is not
thread-safe (see docs/ccs.md). So every ccs call of the process runs here, on one daemon thread
with its own event loop, one job at a time (an ``asyncio.Lock``). A job first installs its
connection's settings and token into the client's globals (several CCS sinks or sources with
different credentials can coexist), and on exit saves the (possibly refreshed) token and resets
the client's caches to the small set of server-confirmed concepts the connection knows. That
reset is what keeps a long-running process flat (the client's caches otherwise grow without
limit and its lookups are linear scans) and what stops a failed transaction from poisoning later
ones (its ghost concepts never stay in the cache).

The client reports through ``print()``; its modules get a module-level ``print`` that forwards
to the ``a2a_llm_tracker.ccs`` logger at DEBUG level, secrets scrubbed.
"""

from __future__ import annotations as _annotations

import asyncio
import concurrent.futures
import copy
import ipaddress
import logging
import os
import random
import sys
import threading
from collections.abc import AsyncIterator, Coroutine, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ._redact import scrub_secrets
from .exceptions import AdapterUnavailable, ConfigurationError

__all__ = ["CCSAuthError", "CCSSettings", "Connection", "Runtime", "get_runtime", "import_ccs", "normalize_url"]

logger = logging.getLogger("a2a_llm_tracker")
_ccs_logger = logging.getLogger("a2a_llm_tracker.ccs")

T = TypeVar("T")

INSTALL_HINT = "pip install a2a-llm-tracker[ccs]"
_patched = False
_import_lock = threading.Lock()


class CCSAuthError(Exception):
    """The OAuth token request failed (transient: the worker retries with backoff)."""


def _ccs_print(*args: Any, **kwargs: Any) -> None:
    """Stands in for ``print`` inside the ccs package: its chatter goes to a logger, scrubbed."""
    if kwargs.get("file") not in (None, sys.stdout, sys.stderr):
        print(*args, **kwargs)  # noqa: T201 - a real file write by the client, not chatter
        return
    if _ccs_logger.isEnabledFor(logging.DEBUG):
        _ccs_logger.debug("ccs: %s", scrub_secrets(" ".join(str(a) for a in args))[:2000])


def import_ccs() -> Any:
    """Import the ``ccs`` package (mftsccs) once, routing its ``print()`` output to logging.

    Raises:
        AdapterUnavailable: mftsccs is not installed.
    """
    global _patched
    try:
        import ccs
    except ImportError as exc:
        raise AdapterUnavailable(f"the CCS sink needs the mftsccs client: {INSTALL_HINT}") from exc
    if not _patched:
        with _import_lock:
            if not _patched:
                for name, module in list(sys.modules.items()):
                    if (name == "ccs" or name.startswith("ccs.")) and module is not None:
                        # a module global named print shadows the builtin for that module only
                        module.__dict__["print"] = _ccs_print
                _patched = True
    return ccs


def _is_loopback(host: str) -> bool:
    if host.lower() in {"localhost", "localhost.localdomain"} or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_url(url: str, *, name: str, allow_insecure: bool = False) -> str:
    """Check a CCS URL and return it without trailing ``/``.

    HTTPS is required unless the host is loopback (127.0.0.0/8, ::1, localhost) or
    *allow_insecure* is set: the bearer token travels with every request.

    Raises:
        ConfigurationError: not an http(s) URL, no host, or plain HTTP to a remote host.
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(f"{name} must be a non-empty URL such as 'https://ccs.example.com', got {url!r}")
    text = url.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{name} must be an http(s) URL with a host, like 'https://ccs.example.com', "
                                 f"got {scrub_secrets(text)!r}")
    if parts.username or parts.password:
        raise ConfigurationError(f"{name} must not carry credentials in the URL; pass client_id/client_secret")
    if parts.query or parts.fragment:
        raise ConfigurationError(f"{name} must not have a query string or fragment, got {scrub_secrets(text)!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname) and not allow_insecure:
        raise ConfigurationError(
            f"{name} {text!r} uses plain HTTP to a non-loopback host; the client secret and bearer token would "
            "travel unencrypted. Use https://, or pass allow_insecure=True if you really mean it")
    return text


@dataclass(frozen=True)
class CCSSettings:
    """Where and as whom to talk to CCS. The secret never shows in ``repr``.

    Args:
        server_url: CCS base URL (OAuth, getConcept, queries), no trailing ``/``.
        node_url: CCS node URL (concept sync), no trailing ``/``.
        client_id: OAuth client id.
        client_secret: OAuth client secret.
        application_name: sent with the OAuth request; names the tracker concept.
        storage_path: folder for the client's ghost-id counter file.
        auth_timeout: seconds one OAuth request may take.
        request_timeout: seconds one sync or query request may take.
    """

    server_url: str
    node_url: str
    client_id: str
    client_secret: str = field(repr=False)
    application_name: str
    storage_path: Path
    auth_timeout: float = 10.0
    request_timeout: float = 15.0

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Identifies the connection (the secret is not part of it)."""
        return (self.server_url, self.node_url, self.client_id, self.application_name)


class Connection:
    """Per-settings state, touched only on the runtime thread: token and server-confirmed concepts."""

    def __init__(self, settings: CCSSettings) -> None:
        self.settings = settings
        self._token = ""
        #: server-confirmed (positive id) type, provider, model ... concepts, keyed by (characterValue, typeId)
        self.known: dict[tuple[str, int], Any] = {}
        self.max_known = 5000
        self.auth_failures = 0
        self.users = 0  #: sinks holding it (see Runtime.connection / Runtime.release)

    @property
    def token(self) -> str:
        """The bearer token (in memory only)."""
        return self._token

    @token.setter
    def token(self, value: str) -> None:
        self._token = value or ""

    def remember(self, concepts: Iterable[Any], *, is_type: Any) -> None:
        """Add confirmed concepts; when over ``max_known``, keep only type concepts (bounded memory)."""
        for concept in concepts:
            self.known[(concept.characterValue, concept.typeId)] = concept
        if len(self.known) > self.max_known:
            self.known = {k: c for k, c in self.known.items() if is_type(c)}

    def forget(self) -> None:
        """Drop every cached concept (e.g. after the server lost its data)."""
        self.known.clear()

    def __repr__(self) -> str:
        return f"<CCS connection {self.settings.server_url} client {self.settings.client_id}>"


class Runtime:
    """One daemon thread running an event loop; all ccs calls of the process run there, serialized."""

    def __init__(self) -> None:
        self._pid = os.getpid()
        self._ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._connections: dict[tuple[str, str, str, str], Connection] = {}
        self._conn_lock = threading.Lock()
        self._thread = threading.Thread(target=self._main, name="a2a-llm-tracker-ccs", daemon=True)
        self._thread.start()
        self._ready.wait(5.0)
        if self.loop is None:
            raise RuntimeError("the CCS worker thread did not start")

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        self._lock = asyncio.Lock()
        self._ready.set()
        try:
            loop.run_forever()
        finally:  # pragma: no cover - the daemon thread normally dies with the process
            loop.close()

    @property
    def thread(self) -> threading.Thread:
        """The worker thread."""
        return self._thread

    def connection(self, settings: CCSSettings) -> Connection:
        """The shared connection state for *settings* (one per server, client and application).

        Each call counts as one user; give it back with :meth:`release`. The state lives only while
        someone holds it: its cached real ids are only valid for the server that issued them, and a
        later server at the same URL (restarted empty, or another one on a reused port) must not
        inherit them.
        """
        with self._conn_lock:
            conn = self._connections.get(settings.key)
            if conn is None or conn.settings.client_secret != settings.client_secret:
                conn = Connection(settings)
                self._connections[settings.key] = conn
            conn.users += 1
            return conn

    def release(self, conn: Connection) -> None:
        """Give back a connection from :meth:`connection`; the last release forgets its state."""
        with self._conn_lock:
            conn.users = max(0, conn.users - 1)
            if conn.users == 0 and self._connections.get(conn.settings.key) is conn:
                del self._connections[conn.settings.key]

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule *coro* on the worker loop."""
        assert self.loop is not None
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("Runtime.submit() called from the CCS worker thread itself")
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run *coro* on the worker loop and wait for its result (from any other thread)."""
        return self.submit(coro).result(timeout)

    @asynccontextmanager
    async def exclusive(self, conn: Connection, *, authenticate: bool = True) -> AsyncIterator[Any]:
        """Own the ccs client for one job: install *conn*'s settings and token, reset caches on exit."""
        assert self._lock is not None
        async with self._lock:
            ccs = import_ccs()
            _install(ccs, conn)
            reset_client_state(ccs, conn.known.values())  # another connection's cache must not leak in
            try:
                if authenticate and not conn.token:
                    await _authenticate(ccs, conn)
                yield ccs
            finally:
                token = ccs.TokenStorage.BearerAccessToken
                conn.token = token if _plausible_token(token) else ""
                reset_client_state(ccs, conn.known.values())


def _install(ccs: Any, conn: Connection) -> None:
    s = conn.settings
    base = ccs.BaseUrl
    base.BASE_URL = s.server_url
    base.NODE_URL = s.node_url
    base.NODE_CACHE_URL = ""
    base.BASE_APPLICATION = s.application_name
    base.CLIENT_ID = s.client_id
    base.CLIENT_SECRET = s.client_secret
    _seed_ghost_ids(ccs, s.storage_path)
    ccs.LocalId._storage_path = s.storage_path / "local_ids.json"  # only ever written, never read back
    ccs.TokenStorage.BearerAccessToken = conn.token


_ids_pid = 0


def _seed_ghost_ids(ccs: Any, storage: Path) -> None:
    """Give this process its own random block of ghost ids (once per process).

    The client counts ghost ids down from a value kept in ``local_ids.json``; two processes (or two
    storage paths) of the same client then hand out the same ids, and a server that maps ghost ids per
    client confuses them. A random start in [-2**31, -10**6] per process makes that unlikely, and the
    file is never read back (it is still written, under *storage*, not in the working directory).
    Reserving 1000 ids at a time also spares the client a file write every 10 ids.
    """
    global _ids_pid
    if _ids_pid == os.getpid():
        return
    local_id = ccs.LocalId
    storage.mkdir(parents=True, exist_ok=True)
    rng = random.SystemRandom()
    with local_id._lock:
        local_id._storage_path = storage / "local_ids.json"
        local_id._concept_counter = -rng.randrange(10**6, 2**31 - 2**24)
        local_id._connection_counter = -rng.randrange(10**6, 2**31 - 2**24)
        local_id._reserved_concept_ids.clear()
        local_id._reserved_connection_ids.clear()
        local_id._reserve_batch_size = 1000
        local_id._initialized = True  # never load a counter another process may share
    _ids_pid = os.getpid()


def _plausible_token(token: str) -> bool:
    # The client adopts the raw body of a non-JSON 200 as the token (a proxy's HTML page, say): refuse it.
    return bool(token) and len(token) <= 8192 and not any(ch.isspace() for ch in token) and "<" not in token


async def _authenticate(ccs: Any, conn: Connection) -> None:
    s = conn.settings
    from ccs.api.oauth import getOAuthToken

    try:
        response = await asyncio.wait_for(
            getOAuthToken(client_id=s.client_id, client_secret=s.client_secret,
                          application_name=s.application_name, auto_set_token=True), s.auth_timeout)
    except TimeoutError:
        ccs.TokenStorage.BearerAccessToken = ""
        raise CCSAuthError(f"OAuth token request to {s.server_url} timed out after {s.auth_timeout:g} s") from None
    token = ccs.TokenStorage.BearerAccessToken
    if not response.success or not _plausible_token(token):
        ccs.TokenStorage.BearerAccessToken = ""
        conn.auth_failures += 1
        detail = response.error if not response.success else "the server did not return a usable access token"
        # the error text may quote the server's body: scrub it and keep it short
        text = scrub_secrets(str(detail))
        if s.client_secret:
            text = text.replace(s.client_secret, "[REDACTED]")
        raise CCSAuthError(f"OAuth token request to {s.server_url} failed: {text[:300]}")
    conn.auth_failures = 0
    conn.token = token


def reset_client_state(ccs: Any, known: Iterable[Any]) -> None:
    """Empty the client's caches and queues, then re-add *known* (server-confirmed) concepts."""
    from ccs.services.get import get_the_concept

    ccs.LocalConceptsData.ClearData()
    ccs.LocalConnectionData.ClearData()
    sync = ccs.LocalSyncData
    sync.conceptsSyncArray = []
    sync.connectionSyncArray = []
    sync.ghostIdMap.clear()
    sync.transactionCollections = []
    get_the_concept._concept_cache.clear()
    for concept in known:
        ccs.LocalConceptsData.AddConcept(copy.copy(concept))


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def get_runtime() -> Runtime:
    """The process's CCS runtime (started on first use, restarted in a forked child)."""
    global _runtime
    with _runtime_lock:
        if _runtime is None or _runtime._pid != os.getpid() or not _runtime.thread.is_alive():
            _runtime = Runtime()
        return _runtime
