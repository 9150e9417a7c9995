"""The background writer: a bounded queue, one worker thread, batches to every sink; it never drops.

Compared with OpenTelemetry's BatchProcessor (which drops the oldest item when full and
abandons what is left at shutdown), this dispatcher:

1. blocks the caller briefly when the queue is full (never on an event-loop thread), then spills
   the event to a durable outbox in the caller's thread;
2. retries a failing sink with jittered exponential backoff, isolates a poison event by writing
   the batch one by one, and parks what still fails in the outbox for that sink;
3. replays the outbox, oldest first, while the sinks are healthy (also after a restart);
4. counts everything (``stats()``); ``lost`` grows only if the outbox itself fails;
5. honours one deadline in ``flush``/``shutdown`` and moves leftovers to the outbox;
6. flushes at exit (atexit) and restarts lazily in a forked child with an empty queue.
"""

from __future__ import annotations as _annotations

import asyncio
import atexit
import collections
import enum
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._context import _SUPPRESS, suppress_tracking
from ._events import UsageEvent
from ._outbox import Outbox, default_outbox_dir
from ._redact import scrub_secrets
from .sinks.base import sink_name

__all__ = ["DispatchConfig", "DispatchStats", "Dispatcher", "DispatcherState"]

logger = logging.getLogger("a2a_llm_tracker")


class DispatcherState(enum.Enum):
    """Lifecycle of a dispatcher."""

    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    """How the background writer batches, retries and spills.

    Args:
        max_queue: events held in memory before ``record()`` blocks briefly, then spills.
        max_batch: events handed to a sink at once.
        schedule_delay: seconds the worker waits for a batch to fill.
        block_timeout: seconds ``record()`` may block on a full queue (never on an event loop).
        max_retries: attempts per batch and sink before it goes to the outbox.
        retry_backoff: first retry delay in seconds (doubles, with jitter).
        outbox_path: the outbox file; default ``<cache dir>/a2a-llm-tracker/dispatch-outbox.db``.
        shutdown_timeout: seconds ``close()`` waits for the queue to drain.
        replay_interval: seconds between outbox replays while sinks are healthy.
    """

    max_queue: int = 10_000
    max_batch: int = 512
    schedule_delay: float = 0.2
    block_timeout: float = 0.05
    max_retries: int = 3
    retry_backoff: float = 0.05
    outbox_path: str | Path | None = None
    shutdown_timeout: float = 10.0
    replay_interval: float = 2.0

    def __post_init__(self) -> None:
        for name in ("max_queue", "max_batch", "max_retries"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"DispatchConfig.{name} must be a positive integer, got {value!r}")
        for name in ("schedule_delay", "block_timeout", "retry_backoff", "shutdown_timeout", "replay_interval"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ValueError(f"DispatchConfig.{name} must be a non-negative number of seconds, got {value!r}")


@dataclass(frozen=True, slots=True)
class DispatchStats:
    """Counters of a dispatcher (a snapshot)."""

    submitted: int = 0  #: events handed to record()
    written: int = 0  #: events that every sink accepted on the first pass
    queued: int = 0  #: events waiting in memory now
    in_flight: int = 0  #: events being exported now
    blocked: int = 0  #: record() calls that waited for queue space
    blocked_ms: float = 0.0  #: total time they waited
    spilled: int = 0  #: events written straight to the outbox (queue full)
    late: int = 0  #: events recorded after close (kept in the outbox)
    retried: int = 0  #: sink write retries
    export_failed: int = 0  #: (event, sink) deliveries parked in the outbox after retries
    replayed: int = 0  #: (event, sink) deliveries made from the outbox
    lost: int = 0  #: events that could not even be stored in the outbox (should stay 0)
    invalid: int = 0  #: adapter calls whose usage could not form a valid event (each one logged)
    in_outbox: int = 0  #: (event, sink) deliveries waiting in the outbox
    sink_errors: dict[str, int] = field(default_factory=dict)  #: failures per sink name


class Deferred:
    """An event to be built on the writer thread: ``build(deferred)`` makes it.

    The Meter queues one of these for an adapter's call (see ``Meter._record_later``): the caller's
    thread only captures the fields, the attribution in force and, optionally, a ``complete``
    step that reads the rest of the fields (usage from the response) later; the writer then
    validates, attributes and prices them in batches, where that work is cheapest.
    """

    __slots__ = ("build", "complete", "context", "fields")

    def __init__(self, build: Any, fields: dict[str, Any], context: Any, complete: Any = None) -> None:
        self.build = build
        self.fields = fields
        self.context = context
        self.complete = complete

    @property
    def event_id(self) -> str:
        return str(self.fields.get("event_id", "(not built yet)"))


_RUNNING = DispatcherState.RUNNING


class Dispatcher:
    """Batches events to sinks from one daemon thread (or inline when ``background=False``)."""

    def __init__(self, sinks: Sequence[Any], config: DispatchConfig | None = None, *, background: bool = True,
                 strict: bool = False) -> None:
        self.config = config or DispatchConfig()
        self._sinks = tuple(sinks)
        self._names = tuple(sink_name(s) for s in self._sinks)
        if len(set(self._names)) != len(self._names):
            dupes = sorted({n for n in self._names if self._names.count(n) > 1})
            raise ValueError(f"two sinks share the name {dupes[0]!r}; give each a distinct path or name")
        self._background = background
        self._strict = strict
        self._max_queue = self.config.max_queue
        self._max_batch = self.config.max_batch
        self._queue: collections.deque[UsageEvent] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._export_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._state = DispatcherState.NEW
        self._in_flight = 0
        self._counts: collections.Counter[str] = collections.Counter()
        self._submitted = 0  # a plain int: counted on the recording fast path
        self._blocked_ms = 0.0
        self._sink_errors: collections.Counter[str] = collections.Counter()
        self._outbox: Outbox | None = None
        self._last_replay = 0.0
        self._last_warning = 0.0
        self._atexit_registered = False
        if hasattr(os, "register_at_fork"):
            # Hold the export lock across fork(): the writer thread is then never inside a sink (or
            # pydantic-core's serializer, whose internal locks would stay held in the child).
            child = weakref.WeakMethod(self._after_fork)
            before = weakref.WeakMethod(self._before_fork)
            parent = weakref.WeakMethod(self._after_fork_in_parent)
            os.register_at_fork(before=lambda: (m := before()) is not None and m(),
                                after_in_parent=lambda: (m := parent()) is not None and m(),
                                after_in_child=lambda: (m := child()) is not None and m())

    # -- public ----------------------------------------------------------------------------------------
    @property
    def state(self) -> DispatcherState:
        """Lifecycle state."""
        return self._state

    @property
    def sinks(self) -> tuple[Any, ...]:
        """The sinks events go to."""
        return self._sinks

    @property
    def background(self) -> bool:
        """True when a writer thread does the writing (False: inline, in ``submit``)."""
        return self._background

    def submit(self, event: UsageEvent) -> None:
        """Queue *event* for the sinks. Never raises and never drops it."""
        try:
            if self._state is _RUNNING and self._background:
                # The fast path (a running writer, room in the queue): one lock, no allocation.
                cond = self._cond
                with cond:
                    queue = self._queue
                    if self._state is _RUNNING and len(queue) < self._max_queue:
                        self._submitted += 1
                        queue.append(event)
                        if len(queue) >= self._max_batch:
                            cond.notify_all()
                        return
            self._submit(event)
        except Exception:  # the recording path must not raise into user code
            if self._strict:
                raise
            logger.exception("a2a_llm_tracker: could not queue event %s", event.event_id)
            self._spill([event], "submit failed")

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued event was handed to the sinks; True if done in time."""
        if not self._background or self._pid != os.getpid():
            return self._flush_sinks(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            if self._thread is None and self._queue:
                self._start_locked()
            self._cond.notify_all()
            while self._queue or self._in_flight:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(0.05 if remaining is None else min(remaining, 0.05))
                self._cond.notify_all()
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        return self._flush_sinks(remaining)

    async def aflush(self, timeout: float | None = None) -> bool:
        """:meth:`flush` without blocking the event loop."""
        return await asyncio.to_thread(self.flush, timeout)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Drain the queue, stop the worker and close the sinks; idempotent. True if all was written."""
        with self._cond:
            if self._state in (DispatcherState.STOPPING, DispatcherState.CLOSED):
                return True
            self._state = DispatcherState.STOPPING
            thread = self._thread
            self._cond.notify_all()
        timeout = self.config.shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        drained = True
        if thread is not None and thread.is_alive():
            thread.join(max(deadline - time.monotonic(), 0.0))
            drained = not thread.is_alive()
        with self._cond:
            leftovers = list(self._queue)
            self._queue.clear()
            self._state = DispatcherState.CLOSED
            self._cond.notify_all()
        if leftovers:  # after the deadline: into the outbox, never abandoned
            self._spill(leftovers, "shutdown deadline")
            drained = False
        elif self._background and thread is None:
            pass
        for sink in self._sinks:
            try:
                flush = getattr(sink, "flush", None)
                if flush is not None:
                    flush(max(deadline - time.monotonic(), 0.0))
                close = getattr(sink, "close", None)
                if close is not None:
                    close()
            except Exception:
                logger.warning("a2a_llm_tracker: sink %s failed to close", sink_name(sink), exc_info=True)
        if self._outbox is not None:
            self._outbox.close()
        if self._atexit_registered:
            atexit.unregister(self._atexit)
            self._atexit_registered = False
        stats = self.stats()
        if stats.lost or stats.export_failed or stats.spilled:
            logger.warning("a2a_llm_tracker: closed with %d spilled, %d parked in the outbox, %d lost",
                           stats.spilled, stats.export_failed, stats.lost)
        return drained

    def stats(self) -> DispatchStats:
        """A snapshot of the counters."""
        with self._cond:
            counts = dict(self._counts)
            submitted = self._submitted
            queued, in_flight, blocked_ms = len(self._queue), self._in_flight, self._blocked_ms
            errors = dict(self._sink_errors)
        in_outbox = 0
        if self._outbox is not None:
            try:
                in_outbox = self._outbox.count(list(self._names) + ["*"])
            except Exception:
                in_outbox = -1
        return DispatchStats(
            submitted=submitted, written=counts.get("written", 0), queued=queued,
            in_flight=in_flight, blocked=counts.get("blocked", 0), blocked_ms=blocked_ms,
            spilled=counts.get("spilled", 0), late=counts.get("late", 0), retried=counts.get("retried", 0),
            export_failed=counts.get("export_failed", 0), replayed=counts.get("replayed", 0),
            lost=counts.get("lost", 0), invalid=counts.get("invalid", 0), in_outbox=in_outbox,
            sink_errors=errors)

    def replay_outbox(self) -> int:
        """Deliver what waits in the outbox for these sinks now; returns how many deliveries succeeded."""
        outbox = self._get_outbox(create=False)
        if outbox is None:
            return 0
        with self._export_lock:
            return self._replay(outbox, due_only=False, rounds=1_000_000)

    # -- internals -------------------------------------------------------------------------------------
    def _submit(self, event: UsageEvent) -> None:
        if self._pid != os.getpid():
            self._after_fork()
        if not self._background:
            with self._cond:
                self._submitted += 1
                if self._state is DispatcherState.CLOSED:
                    self._counts["late"] += 1
                    late = True
                else:
                    late = False
            if late:
                self._spill([event], "recorded after close", count=False)
                return
            with self._export_lock:
                self._export([event])
            return
        with self._cond:
            self._submitted += 1
            if self._state in (DispatcherState.STOPPING, DispatcherState.CLOSED):
                self._counts["late"] += 1
                late = True
            else:
                late = False
                if len(self._queue) < self.config.max_queue:
                    self._queue.append(event)
                    if self._thread is None:
                        self._start_locked()
                    elif len(self._queue) >= self.config.max_batch:
                        self._cond.notify_all()
                    return
        if late:
            self._spill([event], "recorded after close", count=False)
            return
        # queue full: wait a little for space (not on an event loop), then spill
        if not _on_event_loop() and self.config.block_timeout > 0:
            start = time.monotonic()
            deadline = start + self.config.block_timeout
            with self._cond:
                self._counts["blocked"] += 1
                self._cond.notify_all()
                while len(self._queue) >= self.config.max_queue:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                self._blocked_ms += (time.monotonic() - start) * 1000
                if len(self._queue) < self.config.max_queue and self._state is DispatcherState.RUNNING:
                    self._queue.append(event)
                    return
        self._spill([event], "queue full")

    def _start_locked(self) -> None:
        self._state = DispatcherState.RUNNING
        thread = threading.Thread(target=self._run, name="a2a-llm-tracker-writer", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # interpreter shutting down: write what we have inline
            self._thread = None
            self._background = False
            return
        self._thread = thread
        if not self._atexit_registered:
            atexit.register(self._atexit)
            self._atexit_registered = True

    def _atexit(self) -> None:
        try:
            self.shutdown(self.config.shutdown_timeout)
        except Exception:
            logger.exception("a2a_llm_tracker: flush at exit failed")

    def _run(self) -> None:
        cfg = self.config
        while True:
            with self._cond:
                if not self._queue and self._state is DispatcherState.RUNNING:
                    self._cond.wait(cfg.schedule_delay)
                if not self._queue and self._state is not DispatcherState.RUNNING:
                    self._cond.notify_all()
                    return
                # Claim the batch under the lock, take it after: callers queueing meanwhile do not wait
                # for 512 pops (this thread is the only consumer, so the claimed events are there).
                size = min(len(self._queue), cfg.max_batch)
                self._in_flight = size
            popleft = self._queue.popleft
            batch: list[UsageEvent] = [popleft() for _ in range(size)]
            with self._cond:
                self._cond.notify_all()  # space freed for blocked callers
            try:
                with self._export_lock:
                    if batch:
                        self._export(batch)
                    now = time.monotonic()
                    if self._outbox is not None and now - self._last_replay >= cfg.replay_interval:
                        self._last_replay = now
                        self._replay(self._outbox)
            except Exception:  # keep the worker alive whatever happens
                logger.exception("a2a_llm_tracker: writer thread error")
            finally:
                with self._cond:
                    self._in_flight = 0
                    self._cond.notify_all()

    def _built(self, items: Sequence[Any]) -> list[UsageEvent]:
        """*items* as events: deferred ones are built here (a failure is logged and counted)."""
        events: list[UsageEvent] = []
        invalid = 0
        for item in items:
            if type(item) is not Deferred:
                events.append(item)
                continue
            try:
                events.append(item.build(item))
            except Exception:
                invalid += 1
                logger.warning("a2a_llm_tracker: could not build the event of a %s call; it is not recorded",
                               item.fields.get("framework") or "tracked", exc_info=True)
        if invalid:
            with self._cond:
                self._counts["invalid"] += invalid
        return events

    def _export(self, batch: list[UsageEvent]) -> None:
        batch = self._built(batch)
        if not batch:
            return
        all_ok = True
        token = _SUPPRESS.set(True)  # calls the sinks make are not tracked (no feedback loops)
        try:
            for sink, name in zip(self._sinks, self._names, strict=True):
                failed = self._write_sink(sink, name, batch)
                if failed:
                    all_ok = False
                    self._park(name, failed)
        finally:
            _SUPPRESS.reset(token)
        if all_ok:
            with self._cond:
                self._counts["written"] += len(batch)

    def _write_sink(self, sink: Any, name: str, batch: Sequence[UsageEvent]) -> list[UsageEvent]:
        """Write *batch* to one sink with retries; returns the events it would not take."""
        cfg = self.config
        delay = cfg.retry_backoff
        for attempt in range(cfg.max_retries):
            if attempt:  # a retry: count it and back off (jittered, doubling)
                with self._cond:
                    self._counts["retried"] += 1
                time.sleep(delay * (0.5 + random.random()))
                delay *= 2
            try:
                _write(sink, batch)
                return []
            except Exception as exc:
                self._note_sink_error(name, exc)
                if self._strict:
                    raise
        if len(batch) == 1:
            return list(batch)
        # isolate poison events: one by one, so good events are not held back by a bad one
        failed = []
        for event in batch:
            try:
                _write(sink, [event])
            except Exception as exc:
                self._note_sink_error(name, exc)
                failed.append(event)
        return failed

    def _note_sink_error(self, name: str, exc: Exception) -> None:
        with self._cond:
            self._sink_errors[name] += 1
        now = time.monotonic()
        if now - self._last_warning > 5.0:  # rate-limited: a dead sink must not flood the log
            self._last_warning = now
            logger.warning("a2a_llm_tracker: sink %s failed: %s: %s", name, type(exc).__name__,
                           scrub_secrets(str(exc))[:300])

    def _park(self, name: str, events: list[UsageEvent]) -> None:
        outbox = self._get_outbox(create=True)
        try:
            assert outbox is not None
            outbox.put(name, events, "export failed")
            with self._cond:
                self._counts["export_failed"] += len(events)
        except Exception:
            logger.exception("a2a_llm_tracker: outbox %s failed; %d event(s) lost for sink %s",
                             outbox.path if outbox else "?", len(events), name)
            with self._cond:
                self._counts["lost"] += len(events)

    def _spill(self, events: list[UsageEvent], reason: str, count: bool = True) -> None:
        events = self._built(events)
        if not events:
            return
        outbox = self._get_outbox(create=True)
        try:
            assert outbox is not None
            outbox.put("*", events, reason)
            if count:
                with self._cond:
                    self._counts["spilled"] += len(events)
        except Exception:
            logger.exception("a2a_llm_tracker: outbox failed; %d event(s) lost (%s)", len(events), reason)
            with self._cond:
                self._counts["lost"] += len(events)

    def _get_outbox(self, create: bool) -> Outbox | None:
        if self._outbox is None:
            path = Path(self.config.outbox_path) if self.config.outbox_path else (
                default_outbox_dir() / "dispatch-outbox.db")
            if not create and not path.exists():
                return None
            self._outbox = Outbox(path)
        return self._outbox

    def _replay(self, outbox: Outbox, due_only: bool = True, rounds: int = 20) -> int:
        """Deliver outbox rows; at most *rounds* batches per kind, so the live queue is not starved."""
        delivered = 0
        with suppress_tracking():
            # rows parked for one sink
            for _ in range(rounds):
                rows = outbox.claim(list(self._names), limit=self.config.max_batch, due_only=due_only)
                if not rows:
                    break
                by_sink: dict[str, list[Any]] = collections.defaultdict(list)
                for row in rows:
                    by_sink[row.sink].append(row)
                for name, sink_rows in by_sink.items():
                    sink = self._sinks[self._names.index(name)]
                    ok, bad = self._deliver_rows(sink, name, sink_rows)
                    outbox.ack(r.id for r in ok)
                    outbox.release((r.id for r in bad), delay=min(60.0, 2.0 ** min(r.attempts for r in bad))
                                   if bad else 0.0)
                    delivered += len(ok)
                if len(rows) < self.config.max_batch:
                    break
            # spilled rows go to every sink
            for _ in range(rounds):
                rows = outbox.claim(["*"], limit=self.config.max_batch, due_only=due_only)
                if not rows:
                    break
                events = [r.event for r in rows]
                self._export(events)
                outbox.ack(r.id for r in rows)
                delivered += len(rows) * len(self._sinks)
                if len(rows) < self.config.max_batch:
                    break
        if delivered:
            with self._cond:
                self._counts["replayed"] += delivered
        return delivered

    def _deliver_rows(self, sink: Any, name: str, rows: list[Any]) -> tuple[list[Any], list[Any]]:
        try:
            _write(sink, [r.event for r in rows])
            return rows, []
        except Exception as exc:
            self._note_sink_error(name, exc)
        ok, bad = [], []
        for r in rows:
            try:
                _write(sink, [r.event])
                ok.append(r)
            except Exception:
                bad.append(r)
        return ok, bad

    def _flush_sinks(self, timeout: float | None) -> bool:
        ok = True
        for sink in self._sinks:
            flush = getattr(sink, "flush", None)
            if flush is None:
                continue
            try:
                ok = bool(flush(timeout)) and ok
            except Exception:
                logger.warning("a2a_llm_tracker: sink %s failed to flush", sink_name(sink), exc_info=True)
                ok = False
        return ok

    def _before_fork(self) -> None:
        self._fork_held = self._export_lock.acquire(timeout=5.0)  # a stuck sink must not block fork forever

    def _after_fork_in_parent(self) -> None:
        if getattr(self, "_fork_held", False):
            self._fork_held = False
            self._export_lock.release()

    def _after_fork(self) -> None:
        self._fork_held = False
        # The parent still owns the queued events: the child starts empty, with fresh primitives.
        self._queue = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._export_lock = threading.Lock()
        self._thread = None
        self._in_flight = 0
        self._pid = os.getpid()
        self._outbox = None
        self._atexit_registered = False
        if self._state is DispatcherState.RUNNING:
            self._state = DispatcherState.NEW


def _write(sink: Any, batch: Sequence[UsageEvent]) -> None:
    """Hand *batch* to *sink*: ``write_many`` when it has one, else ``write`` per event."""
    write_many = getattr(sink, "write_many", None)
    if write_many is not None:
        write_many(batch)
    else:
        for event in batch:
            sink.write(event)


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
