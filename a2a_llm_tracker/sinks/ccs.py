"""CCSSink: usage events to mftsccs (CCS) as concepts and connections; never blocks, never loses.

``write()`` only appends to a durable local outbox (SQLite, under ``storage_path``). A delivery
task on the single CCS worker thread (``a2a_llm_tracker._ccs_runtime``) claims rows in batches,
turns each batch into one sync request (several events per request), and deletes the rows only
after the server answered 200. Failures (5xx, timeouts, connection errors, auth) are retried with
exponential backoff, re-sending the *same* concepts with the same ghost ids; a batch the server
rejects (4xx, ``{"error": ...}``) is split until the bad event is found, and that event is moved
aside after ``max_rejects`` tries (kept under the sink name ``<name>!rejected``, never deleted).
Rows a crashed process left claimed are released on the next start.

What each event becomes (README "What Gets Tracked")::

    entity(client_id) --the_entity_s_llm_tracker--> the_llm_tracker(application_name)
    the_llm_tracker --the_llm_tracker_s_usage--> the_llm_usage(event fields as JSON)
    the_llm_usage --the_llm_usage_s_provider--> the_llm_provider      --..._s_model--> the_llm_model
                  --the_llm_usage_s_cost--> the_cost                  --..._s_token_count--> the_token_count
                  --the_llm_usage_s_agent / _session / _trace--> the_llm_agent / the_llm_session / the_llm_trace
"""

from __future__ import annotations as _annotations

import asyncio
import copy
import json
import logging
import os
import random
import re
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .._ccs_runtime import CCSSettings, get_runtime, import_ccs, normalize_url
from .._dotenv import load_env_file
from .._outbox import Outbox, default_outbox_dir
from .._redact import redact_mapping, scrub_secrets
from ..exceptions import ConfigurationError
from .base import Sink

if TYPE_CHECKING:
    from .._events import UsageEvent

__all__ = ["DEFAULT_SERVER_URL", "CCSSink", "CCSSinkStats", "resolve_ccs_settings"]

logger = logging.getLogger("a2a_llm_tracker")

#: Used when neither ``server_url`` nor ``$CCS_SERVER_URL`` (or ``$CLIENT_SERVER``) is set.
DEFAULT_SERVER_URL = "https://a2aorchestra.com"

TRACKER_TYPE = "the_llm_tracker"
USAGE_TYPE = "the_llm_usage"
ENTITY_LINK = "the_entity_s_llm_tracker"
USAGE_LINK = "the_llm_tracker_s_usage"
#: (event field, concept type, connection type from the usage concept)
PARTS = (
    ("provider", "the_llm_provider", "the_llm_usage_s_provider"),
    ("model", "the_llm_model", "the_llm_usage_s_model"),
    ("cost_usd", "the_cost", "the_llm_usage_s_cost"),
    ("total_tokens", "the_token_count", "the_llm_usage_s_token_count"),
    ("agent_id", "the_llm_agent", "the_llm_usage_s_agent"),
    ("session_id", "the_llm_session", "the_llm_usage_s_session"),
    ("trace_id", "the_llm_trace", "the_llm_usage_s_trace"),
)
#: instance concepts worth keeping cached between batches (few distinct values)
_REUSED_TYPES = frozenset({TRACKER_TYPE, "the_llm_provider", "the_llm_model", "the_llm_agent"})
_INSTANCE_CATEGORY = 4
_RETRYABLE_4XX = frozenset({401, 403, 408, 409, 425, 429})


@dataclass(frozen=True, slots=True)
class CCSSinkStats:
    """Counters of a CCS sink (a snapshot)."""

    delivered: int  #: events the server confirmed
    requests: int  #: sync requests sent
    failures: int  #: failed attempts (each retried)
    consecutive_failures: int  #: failures since the last success
    rejected: int  #: events moved aside after the server rejected them repeatedly
    duplicates_skipped: int  #: outbox rows skipped because their event_id was already delivered
    in_outbox: int  #: events waiting for delivery
    last_error: str | None  #: the last failure, secrets scrubbed


class _Rejected(Exception):
    """The server refused this batch (a client error): retrying it unchanged will not help."""


@dataclass
class _Pending:
    """A built, not yet confirmed sync request: retried unchanged (same ghost ids) until confirmed."""

    event_ids: tuple[str, ...]
    payload: Any  # ccs InnerActions
    tracker: Any  # the tracker concept (ghost or confirmed)


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value.strip() if value and value.strip() else None


def resolve_ccs_settings(*, client_id: str | None, client_secret: str | None, application_name: str | None,
                         server_url: str | None, node_url: str | None, storage_path: str | Path | None,
                         allow_insecure: bool, request_timeout: float, auth_timeout: float) -> CCSSettings:
    """Fill CCS settings from arguments, then ``$CLIENT_ID`` / ``$CLIENT_SECRET`` / ``$CCS_SERVER_URL`` /
    ``$CCS_NODE_URL`` (a ``.env`` file in the current directory counts, real variables win).

    Raises:
        ConfigurationError: credentials missing, or a URL is malformed or insecure.
    """
    load_env_file()
    client_id = str(client_id).strip() if client_id not in (None, "") else _env("CLIENT_ID")
    client_secret = client_secret if client_secret else _env("CLIENT_SECRET")
    if not client_id:
        raise ConfigurationError("CCS needs a client id: pass client_id=... or set CLIENT_ID "
                                 "(in the environment or a .env file)")
    if not client_secret:
        raise ConfigurationError("CCS needs a client secret: pass client_secret=... or set CLIENT_SECRET "
                                 "(in the environment or a .env file)")
    if not isinstance(client_secret, str):
        raise ConfigurationError(f"client_secret must be a str, got {type(client_secret).__name__}")
    app = application_name or _env("CCS_APPLICATION_NAME") or "a2a-llm-tracker"
    if not isinstance(app, str):
        raise ConfigurationError(f"application_name must be a str, got {type(app).__name__}")
    server = normalize_url(server_url or _env("CCS_SERVER_URL") or _env("CLIENT_SERVER") or DEFAULT_SERVER_URL,
                           name="server_url", allow_insecure=allow_insecure)
    node = normalize_url(node_url or _env("CCS_NODE_URL") or server, name="node_url",
                         allow_insecure=allow_insecure)
    for label, value in (("request_timeout", request_timeout), ("auth_timeout", auth_timeout)):
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 600:
            raise ConfigurationError(f"{label} must be a number of seconds in (0, 600], got {value!r}")
    if storage_path is None:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{urlsplit(server).hostname}-{app}")[:100]
        storage = default_outbox_dir() / "ccs" / slug
    else:
        storage = Path(storage_path)
    return CCSSettings(server_url=server, node_url=node, client_id=client_id, client_secret=client_secret,
                       application_name=app, storage_path=storage, auth_timeout=float(auth_timeout),
                       request_timeout=float(request_timeout))


class CCSSink(Sink):
    """Send usage events to CCS (mftsccs) through a durable outbox.

    Args:
        application_name: names the ``the_llm_tracker`` concept (default ``$CCS_APPLICATION_NAME``).
        entity_id: the CCS entity the tracker hangs off (default: ``client_id`` when it is a number).
        client_id: OAuth client id (default ``$CLIENT_ID``).
        client_secret: OAuth client secret (default ``$CLIENT_SECRET``); kept in memory only.
        server_url: CCS base URL (default ``$CCS_SERVER_URL``, ``$CLIENT_SERVER``, then
            :data:`DEFAULT_SERVER_URL`). HTTPS unless loopback or ``allow_insecure``.
        node_url: CCS node URL for concept sync (default ``$CCS_NODE_URL``, then ``server_url``).
        storage_path: folder for the outbox, the client's id counters and the tracker id
            (default ``<outbox dir>/ccs/<host>-<application>``).
        user_id: ``userId`` stamped on the concepts (default ``entity_id``, else 999).
        batch_size: events per sync request.
        request_timeout: seconds one sync request may take (the client alone waits up to 300 s).
        auth_timeout: seconds one OAuth request may take.
        max_backoff: longest wait between retries, in seconds.
        poll_interval: seconds between outbox checks when idle.
        max_rejects: rejections of a single event before it is moved aside.
        allow_insecure: allow plain HTTP to a non-loopback host.
        name: the sink's stable name (default ``ccs:<host>:<application>``).

    Raises:
        AdapterUnavailable: mftsccs is not installed (``pip install a2a-llm-tracker[ccs]``).
        ConfigurationError: missing credentials, bad URL, bad numbers.
    """

    remote = True

    def __init__(self, application_name: str | None = None, entity_id: int | str | None = None,
                 client_id: str | None = None, client_secret: str | None = None, server_url: str | None = None,
                 node_url: str | None = None, storage_path: str | Path | None = None, *,
                 user_id: int | None = None, batch_size: int = 100, request_timeout: float = 15.0,
                 auth_timeout: float = 10.0, max_backoff: float = 30.0, poll_interval: float = 0.5,
                 max_rejects: int = 3, allow_insecure: bool = False, name: str | None = None) -> None:
        import_ccs()  # fail early with the install hint
        self.settings = resolve_ccs_settings(
            client_id=client_id, client_secret=client_secret, application_name=application_name,
            server_url=server_url, node_url=node_url, storage_path=storage_path, allow_insecure=allow_insecure,
            request_timeout=request_timeout, auth_timeout=auth_timeout)
        for label, value in (("batch_size", batch_size), ("max_rejects", max_rejects)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigurationError(f"{label} must be a positive integer, got {value!r}")
        for label, num in (("max_backoff", max_backoff), ("poll_interval", poll_interval)):
            if not isinstance(num, int | float) or isinstance(num, bool) or num <= 0:
                raise ConfigurationError(f"{label} must be a positive number of seconds, got {num!r}")
        self.entity_id = self._entity(entity_id, self.settings.client_id)
        self.user_id = int(user_id) if user_id is not None else (self.entity_id or 999)
        self.batch_size = batch_size
        self.max_backoff = float(max_backoff)
        self.poll_interval = float(poll_interval)
        self.max_rejects = max_rejects
        host = urlsplit(self.settings.server_url).netloc
        self._name = name or f"ccs:{host}:{self.settings.application_name}"
        storage = self.settings.storage_path
        storage.mkdir(parents=True, exist_ok=True)
        lease = max(120.0, 4 * self.settings.request_timeout + 2 * self.settings.auth_timeout)
        self._outbox = Outbox(storage / "ccs-outbox.db", lease=lease)
        self._delivered_db = storage / "ccs-delivered.db"
        self._state_file = storage / "ccs-state.json"
        self._tracker_key = "|".join((self.settings.server_url, self.settings.client_id,
                                      self.settings.application_name, str(self.entity_id)))
        self._tracker_id = self._load_tracker_id()
        # state shared with other threads
        self._cond = threading.Condition()
        self._counts = {"delivered": 0, "requests": 0, "failures": 0, "rejected": 0, "duplicates": 0}
        self._consecutive_failures = 0
        self._failure_seq = 0
        self._last_error: str | None = None
        self._closed = False
        self._stopping = False
        # state of the delivery task (worker thread only)
        self._pending: _Pending | None = None
        self._batch_limit = batch_size
        self._recent: deque[str] = deque(maxlen=20_000)
        self._recent_set: set[str] = set()
        self._wake: asyncio.Event | None = None
        self._release_dead_claims()
        self._runtime = get_runtime()
        self._conn = self._runtime.connection(self.settings)
        self._task = self._runtime.submit(self._run())

    # -- Sink API --------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """Stable across restarts: ``ccs:<host>:<application>`` unless given."""
        return self._name

    def write(self, event: UsageEvent) -> None:
        """Append *event* to the outbox (local SQLite only; delivery happens on the CCS worker)."""
        self.write_many([event])

    def write_many(self, events: Sequence[UsageEvent]) -> None:
        """Append *events* to the outbox in one local transaction. Raises if the outbox cannot be written."""
        if not events:
            return
        self._outbox.put(self._name, events, "queued")
        self._poke()

    def flush(self, timeout: float | None = None, *, patience: int = 3) -> bool:
        """Wait until the outbox is empty (all confirmed by the server); True if so within *timeout*.

        Gives up early (returns False) after *patience* failed attempts during the wait, so a
        dead server does not hold up a shutdown; the events stay in the outbox for later.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            start_failures = self._counts["failures"]
        self._poke()
        while True:
            if self.pending() == 0:
                return True
            with self._cond:
                if self._counts["failures"] - start_failures >= patience or self._task.done():
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(0.05 if remaining is None else min(remaining, 0.05))

    def close(self, timeout: float = 2.0) -> None:
        """Stop the delivery task (undelivered events stay in the outbox for the next start)."""
        if self._closed:
            return
        self._closed = True
        self._stopping = True
        self._poke()
        try:
            self._task.result(timeout)
        except Exception:  # timeout, cancellation, or an error already logged
            self._task.cancel()
            try:
                self._task.result(1.0)
            except BaseException:
                pass
        self._runtime.release(self._conn)
        self._outbox.close()

    # -- introspection ---------------------------------------------------------------------------------
    def pending(self) -> int:
        """Events waiting in the outbox for this sink."""
        return self._outbox.count([self._name])

    def rejected(self) -> int:
        """Events the server refused repeatedly, kept aside under ``<name>!rejected``."""
        return self._outbox.count([self._name + "!rejected"])

    def requeue_rejected(self) -> int:
        """Give the rejected events another chance; returns how many were requeued."""
        rows = self._outbox.claim([self._name + "!rejected"], limit=100_000)
        if rows:
            self._outbox.put(self._name, [r.event for r in rows], "requeued")
            self._outbox.ack(r.id for r in rows)
            self._poke()
        return len(rows)

    def stats(self) -> CCSSinkStats:
        """A snapshot of the delivery counters."""
        with self._cond:
            counts = dict(self._counts)
            consecutive, last_error = self._consecutive_failures, self._last_error
        return CCSSinkStats(delivered=counts["delivered"], requests=counts["requests"], failures=counts["failures"],
                            consecutive_failures=consecutive, rejected=counts["rejected"],
                            duplicates_skipped=counts["duplicates"], in_outbox=self.pending(), last_error=last_error)

    def __repr__(self) -> str:
        return f"<CCSSink {self._name} -> {self.settings.node_url}>"

    # -- delivery task (runs on the CCS worker loop) ---------------------------------------------------
    def _poke(self) -> None:
        loop, wake = self._runtime.loop, self._wake
        if loop is not None and wake is not None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # loop closed at interpreter exit
                pass

    async def _run(self) -> None:
        self._wake = asyncio.Event()
        delay = 0.0
        while not self._stopping:
            if delay > 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), delay)
                except TimeoutError:
                    pass
                self._wake.clear()
                if self._stopping:
                    break
            try:
                delay = await self._cycle()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep delivering whatever happens
                self._note_failure(exc)
                delay = self._backoff()

    async def _cycle(self) -> float:
        """One delivery attempt; returns the seconds to wait before the next."""
        rows = self._outbox.claim([self._name], limit=self._batch_limit)
        if not rows:
            return self.poll_interval
        settled: set[int] = set()
        try:
            rows = self._drop_duplicates(rows, settled)
            if not rows:
                return 0.0
            if self._pending is not None:
                wanted = set(self._pending.event_ids)
                chosen = [r for r in rows if r.event.event_id in wanted]
                if len(chosen) == len(wanted):  # retry the very same request: same ghost ids
                    extra = [r for r in rows if r.event.event_id not in wanted]
                    self._outbox.release(r.id for r in extra)
                    settled.update(r.id for r in extra)
                    rows = chosen
                else:
                    self._pending = None
            try:
                await self._deliver(rows)
            except _Rejected as exc:
                self._pending = None
                self._note_failure(exc)
                if len(rows) > 1:  # find the bad event: halve the batch
                    self._batch_limit = max(1, len(rows) // 2)
                    return 0.0
                row = rows[0]
                if row.attempts + 1 >= self.max_rejects:
                    self._outbox.put(self._name + "!rejected", [row.event], scrub_secrets(str(exc))[:400])
                    self._outbox.ack([row.id])
                    settled.add(row.id)
                    with self._cond:
                        self._counts["rejected"] += 1
                    logger.error("a2a_llm_tracker: CCS rejected event %s %d times; kept aside under sink %r "
                                 "(CCSSink.requeue_rejected() retries it): %s", row.event.event_id,
                                 row.attempts + 1, self._name + "!rejected", scrub_secrets(str(exc))[:300])
                    return 0.0
                delay = self._backoff()
                self._outbox.release([row.id], delay=delay)
                settled.add(row.id)
                return delay
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # transient: keep the request, retry it after a backoff
                self._note_failure(exc)  # the pending request is kept even on auth errors: it may have landed
                delay = self._backoff()
                self._outbox.release((r.id for r in rows if r.id not in settled), delay=delay)
                settled.update(r.id for r in rows)
                return delay
            self._mark_delivered([r.event.event_id for r in rows])
            self._outbox.ack(r.id for r in rows)
            settled.update(r.id for r in rows)
            self._remember([r.event.event_id for r in rows])
            self._batch_limit = min(self.batch_size, self._batch_limit * 2)
            with self._cond:
                self._counts["delivered"] += len(rows)
                self._consecutive_failures = 0
                self._cond.notify_all()
            return 0.0
        finally:
            left = [r.id for r in rows if r.id not in settled]
            if left:  # cancelled or crashed mid-way: hand the rows back at once
                try:
                    self._outbox.release(left)
                except Exception:
                    logger.warning("a2a_llm_tracker: could not release %d CCS outbox rows", len(left))

    async def _deliver(self, rows: list[Any]) -> None:
        settings = self.settings
        async with self._runtime.exclusive(self._conn) as ccs:
            if self._pending is None:
                try:
                    self._pending = await self._build(ccs, [r.event for r in rows])
                except Exception as exc:  # deterministic for these events: isolate them
                    raise _Rejected(f"could not turn the events into concepts: {type(exc).__name__}: {exc}") from None
            pending = self._pending
            with self._cond:
                self._counts["requests"] += 1
            try:
                await asyncio.wait_for(ccs.LocalSyncData.SyncDataOnline(actions=pending.payload),
                                       settings.request_timeout)
            except TimeoutError:
                raise TimeoutError(f"CCS sync to {settings.node_url} timed out after "
                                   f"{settings.request_timeout:g} s") from None
            except Exception as exc:
                if _is_rejection(exc):
                    raise _Rejected(str(exc)) from None
                if "401" in str(exc) or type(exc).__name__ == "TokenRefreshError":
                    self._conn.token = ""  # authenticate afresh next time
                raise
            self._confirm(ccs, pending, dict(ccs.LocalSyncData.ghostIdMap))
            self._pending = None

    async def _build(self, ccs: Any, events: list[UsageEvent]) -> _Pending:
        from ccs.services.local.create_the_connection_local import CreateConnection
        from ccs.services.local.make_the_instance_concept_local import MakeTheInstanceConceptLocal

        actions = ccs.InnerActions()
        uid = self.user_id
        if self._tracker_id is not None:
            tracker = ccs.Concept(id=self._tracker_id, userId=uid, typeId=0, categoryId=_INSTANCE_CATEGORY,
                                  referentId=0, characterValue=self.settings.application_name, accessId=4,
                                  typeCharacter=TRACKER_TYPE)
            tracker.isSynced, tracker.isComposition = True, True
        else:
            tracker = await MakeTheInstanceConceptLocal(TRACKER_TYPE, self.settings.application_name, True, uid,
                                                        actions=actions)
            if self.entity_id is not None:
                entity = ccs.Concept(id=self.entity_id, userId=uid, typeId=0, categoryId=0, referentId=0,
                                     characterValue="", accessId=4)
                await CreateConnection(entity, tracker, ENTITY_LINK, actions)
        for event in events:
            usage = await MakeTheInstanceConceptLocal(USAGE_TYPE, self._usage_json(event), False, uid,
                                                      actions=actions)
            await CreateConnection(tracker, usage, USAGE_LINK, actions)
            for field_name, concept_type, link in PARTS:
                value = getattr(event, field_name)
                if value is None or value == "":
                    continue
                part = await MakeTheInstanceConceptLocal(concept_type, _text(value), False, uid, actions=actions)
                await CreateConnection(usage, part, link, actions)
        # concepts the server already has (positive ids) are referenced, not sent again
        payload = ccs.InnerActions(concepts=[c for c in actions.concepts if c.id < 0],
                                   connections=[c for c in actions.connections if c.id != 0])
        return _Pending(tuple(e.event_id for e in events), payload, tracker)

    def _confirm(self, ccs: Any, pending: _Pending, ghost_map: dict[int, int]) -> None:
        """Learn the real ids of reusable concepts (types, tracker, provider, model, agent)."""
        def real(ref: Any) -> Any:
            if isinstance(ref, int) and ref < 0:
                return ghost_map.get(ref)
            return ref

        confirmed = []
        for concept in pending.payload.concepts:
            is_instance = concept.categoryId == _INSTANCE_CATEGORY
            if is_instance and concept.typeCharacter not in _REUSED_TYPES:
                continue
            new_id, type_id, category_id = real(concept.id), real(concept.typeId), real(concept.categoryId)
            if not new_id or new_id < 0 or type_id is None or category_id is None:
                continue
            if concept is pending.tracker or (is_instance and concept.typeCharacter == TRACKER_TYPE):
                if concept is pending.tracker:
                    self._save_tracker_id(new_id)
                continue
            known = copy.copy(concept)
            known.id = known.ghostId = new_id
            known.typeId, known.categoryId = type_id, category_id
            known.isTemp, known.isSynced, known.isNew = False, True, False
            known.type = known.referent = None
            confirmed.append(known)
        self._conn.remember(confirmed, is_type=lambda c: c.categoryId != _INSTANCE_CATEGORY)

    # -- helpers ---------------------------------------------------------------------------------------
    def _usage_json(self, event: UsageEvent) -> str:
        data = event.model_dump(mode="json", exclude_none=True)
        if data.get("metadata"):
            data["metadata"] = redact_mapping(data["metadata"])
        if data.get("raw_usage"):
            data["raw_usage"] = redact_mapping(data["raw_usage"])
        data["application"] = self.settings.application_name
        return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)

    @staticmethod
    def _entity(entity_id: int | str | None, client_id: str) -> int | None:
        if entity_id is None:
            entity_id = _env("CCS_ENTITY_ID") or (client_id if client_id.isdigit() else None)
            if entity_id is None:
                logger.info("a2a_llm_tracker: CCS client id is not numeric and no entity_id was given; "
                            "the tracker concept is not linked to an entity")
                return None
        try:
            value = int(entity_id)
        except (TypeError, ValueError):
            raise ConfigurationError(f"entity_id must be an integer CCS concept id, got {entity_id!r}") from None
        if value <= 0:
            raise ConfigurationError(f"entity_id must be a positive CCS concept id, got {value}")
        return value

    def _backoff(self) -> float:
        with self._cond:
            n = max(self._consecutive_failures, 1)
        return min(self.max_backoff, 0.25 * 2 ** min(n - 1, 20)) * (0.8 + 0.4 * random.random())

    def _note_failure(self, exc: BaseException) -> None:
        message = scrub_secrets(f"{type(exc).__name__}: {exc}")
        secret = self.settings.client_secret
        if secret:
            message = message.replace(secret, "[REDACTED]")
        token = self._conn.token
        if token:
            message = message.replace(token, "[REDACTED]")
        with self._cond:
            self._counts["failures"] += 1
            self._consecutive_failures += 1
            n = self._consecutive_failures
            self._last_error = message[:500]
            self._failure_seq += 1
            self._cond.notify_all()
        # first failure, then every 10th: a dead server must not flood the log
        if n == 1 or n % 10 == 0:
            logger.warning("a2a_llm_tracker: CCS delivery failed (attempt %d, events kept in the outbox): %s",
                           n, message[:300])

    def _drop_duplicates(self, rows: list[Any], settled: set[int]) -> list[Any]:
        """Ack rows whose event_id is already delivered (or repeated in the batch); return the rest."""
        seen: dict[str, Any] = {}
        dupes = []
        for row in rows:
            eid = row.event.event_id
            if eid in seen or eid in self._recent_set:
                dupes.append(row)
            else:
                seen[eid] = row
        done = self._already_delivered(list(seen))
        if done:
            dupes += [seen.pop(eid) for eid in done]
        if dupes:
            self._outbox.ack(r.id for r in dupes)
            settled.update(r.id for r in dupes)
            with self._cond:
                self._counts["duplicates"] += len(dupes)
        return list(seen.values())

    def _remember(self, event_ids: list[str]) -> None:
        for eid in event_ids:
            if len(self._recent) == self._recent.maxlen:
                self._recent_set.discard(self._recent[0])
            self._recent.append(eid)
            self._recent_set.add(eid)

    # durable record of delivered event ids (dedupe across restarts; pruned after 30 days)
    def _delivered_conn(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._delivered_db, timeout=30.0, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("CREATE TABLE IF NOT EXISTS delivered (sink TEXT NOT NULL, event_id TEXT NOT NULL, "
                     "ts REAL NOT NULL, PRIMARY KEY (sink, event_id))")
        return conn

    def _already_delivered(self, event_ids: list[str]) -> set[str]:
        if not event_ids or not self._delivered_db.exists():
            return set()
        conn = self._delivered_conn()
        try:
            found: set[str] = set()
            for i in range(0, len(event_ids), 500):
                chunk = event_ids[i:i + 500]
                marks = ",".join("?" * len(chunk))
                found.update(r[0] for r in conn.execute(
                    f"SELECT event_id FROM delivered WHERE sink = ? AND event_id IN ({marks})", (self._name, *chunk)))
            return found
        finally:
            conn.close()

    def _mark_delivered(self, event_ids: list[str]) -> None:
        try:
            conn = self._delivered_conn()
            try:
                now = time.time()
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("INSERT OR IGNORE INTO delivered (sink, event_id, ts) VALUES (?, ?, ?)",
                                 [(self._name, eid, now) for eid in event_ids])
                if random.random() < 0.01:
                    conn.execute("DELETE FROM delivered WHERE ts < ?", (now - 30 * 86400,))
                conn.execute("COMMIT")
            finally:
                conn.close()
        except sqlite3.Error:  # only a dedupe aid: delivery itself succeeded
            logger.warning("a2a_llm_tracker: could not record delivered CCS event ids in %s", self._delivered_db)

    def _release_dead_claims(self) -> None:
        """Rows claimed by a process that no longer exists (killed mid-delivery) become due at once."""
        path = self._outbox.path
        if not path.exists():
            return
        try:
            conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
            try:
                owners = [r[0] for r in conn.execute(
                    "SELECT DISTINCT claimed_by FROM outbox WHERE sink = ? AND claimed_by IS NOT NULL", (self._name,))]
                dead = [o for o in owners if not _owner_alive(o)]
                for owner in dead:
                    conn.execute("UPDATE outbox SET claimed_by = NULL, claimed_until = 0 WHERE sink = ? AND "
                                 "claimed_by = ?", (self._name, owner))
            finally:
                conn.close()
        except sqlite3.Error:
            logger.warning("a2a_llm_tracker: could not inspect CCS outbox %s for stale claims", path)

    def _load_tracker_id(self) -> int | None:
        try:
            data = json.loads(self._state_file.read_text(encoding="utf-8"))
            value = data.get("trackers", {}).get(self._tracker_key)
            return int(value) if isinstance(value, int) and value > 0 else None
        except (OSError, ValueError, AttributeError):
            return None

    def _save_tracker_id(self, tracker_id: int) -> None:
        self._tracker_id = tracker_id
        try:
            try:
                data = json.loads(self._state_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = {}
            data.setdefault("trackers", {})[self._tracker_key] = tracker_id
            tmp = self._state_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
            os.replace(tmp, self._state_file)
        except OSError:
            logger.warning("a2a_llm_tracker: could not save the CCS tracker id to %s", self._state_file)


def _text(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _is_rejection(exc: BaseException) -> bool:
    text = str(exc)
    match = re.search(r"Sync failed with status (\d{3})", text)
    if match:
        code = int(match.group(1))
        return 400 <= code < 500 and code not in _RETRYABLE_4XX
    return text.startswith("Sync failed:")


def _owner_alive(owner: str) -> bool:
    pid_text = owner.split("-", 1)[0]
    if not pid_text.isdigit():
        return True
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    return True
