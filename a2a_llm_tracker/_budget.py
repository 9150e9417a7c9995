"""Budgets: stop (or warn about) LLM calls once a session, agent, user or project spent its limit.

A :class:`Budget` attached to a :class:`~a2a_llm_tracker.Meter` adds each recorded event's cost
to a running total per scope key (per session id, agent id ...). The wrappers call
``meter.check_budgets(...)`` before each LLM call; once the scope's recorded spend is at or over
the limit, the check raises :class:`~a2a_llm_tracker.BudgetExceededError` and the call is not made
(or warns, or calls your function).

Spend is what was *recorded*: a call's cost counts once its event is recorded, after the call.
Calls already past the check when the limit is reached still finish, so concurrent callers can
overspend by at most the calls in flight, never more. Unpriced events (no cost) add nothing and
are counted separately.

Example::

    from a2a_llm_tracker import Budget, Meter

    meter = Meter(pricing=pricing, sinks=[SQLiteSink("usage.db")],
                  budgets=[Budget(5.00, scope="session", window="1d", seed_from="usage.db")])

.. versionadded:: 0.1
"""

from __future__ import annotations as _annotations

import logging
import math
import os
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ._events import UsageEvent
from .exceptions import BudgetExceededError, ConfigurationError

__all__ = ["SCOPES", "Budget", "BudgetWarning"]

logger = logging.getLogger("a2a_llm_tracker")

#: scope → the attribution field that keys it.
SCOPES: dict[str, str] = {"session": "session_id", "agent": "agent_id", "user": "user_id", "project": "project"}


class BudgetWarning(UserWarning):
    """Issued by a budget with ``on_exceed="warn"`` when its limit is reached."""


class _Tally:
    """Spend of one scope key; *events* holds ``(epoch, cost)`` when the budget has a window."""

    __slots__ = ("events", "priced", "spent", "unpriced", "warned")

    def __init__(self, windowed: bool) -> None:
        self.spent = 0.0
        self.priced = 0
        self.unpriced = 0
        self.warned = False
        self.events: deque[tuple[float, float]] | None = deque() if windowed else None


class Budget:
    """A spending limit for one scope, checked before each LLM call.

    Args:
        limit_usd: the limit in USD (spend at or above it is "exceeded").
        scope: ``"session"``, ``"agent"``, ``"user"`` or ``"project"``: each session (agent ...)
            has its own total. Calls without that attribution are not limited.
        window: None (all time) or a rolling window, as a timedelta or ``"30m"``, ``"1h"``, ``"1d"``.
        on_exceed: ``"raise"`` (:class:`BudgetExceededError`, the call is not made), ``"warn"``
            (a :class:`BudgetWarning` and a log line, once per key until spend drops under the
            limit; the call is made), or a callable given the :class:`BudgetExceededError`
            (not raised) before each call while over; it may raise to block the call.
        key: limit only this session (agent ...) id; None limits each one separately.
        seed_from: a store to read the spend recorded so far (see :meth:`seed_from`).
        table: the events table of a SQL *seed_from* store.

    Raises:
        ConfigurationError: an invalid limit, scope, window or on_exceed.
    """

    def __init__(self, limit_usd: float, scope: str = "session", window: timedelta | str | None = None,
                 on_exceed: str | Callable[[BudgetExceededError], Any] = "raise", key: str | None = None, *,
                 seed_from: str | os.PathLike[str] | None = None, table: str | None = None) -> None:
        if isinstance(limit_usd, bool) or not isinstance(limit_usd, int | float) or not math.isfinite(limit_usd) \
                or limit_usd < 0:
            raise ConfigurationError(f"Budget limit_usd must be a non-negative number of USD, got {limit_usd!r}")
        if scope not in SCOPES:
            raise ConfigurationError(f"Budget scope must be one of {', '.join(SCOPES)}, got {scope!r}")
        if not (on_exceed in ("raise", "warn") or callable(on_exceed)):
            raise ConfigurationError(f"Budget on_exceed must be 'raise', 'warn' or a callable, got {on_exceed!r}")
        if key is not None and (not isinstance(key, str) or not key):
            raise ConfigurationError(f"Budget key must be a non-empty string, got {key!r}")
        self.limit_usd = float(limit_usd)
        self.scope = scope
        self.field = SCOPES[scope]
        self.window: timedelta | None = None
        if window is not None:
            from .report import parse_window

            self.window = parse_window(window, "Budget window")
        self.on_exceed = on_exceed
        self.key = key
        self._lock = threading.Lock()
        self._tallies: dict[str, _Tally] = {}
        self._meters: list[Any] = []
        if seed_from is not None:
            self.seed_from(seed_from, table=table)

    # -- meter hooks -----------------------------------------------------------------------------------
    def attach(self, meter: Any) -> None:
        """Count *meter*'s recorded events (``Meter(budgets=[...])`` and ``add_budget`` call this)."""
        if any(m is meter for m in self._meters):
            return
        meter.add_observer(self._observe)
        self._meters.append(meter)

    def detach(self, meter: Any) -> None:
        """Stop counting *meter*'s events."""
        for i, m in enumerate(self._meters):
            if m is meter:
                meter.remove_observer(self._observe)
                del self._meters[i]
                return

    def _observe(self, event: UsageEvent) -> None:
        key = getattr(event, self.field)
        if key is None or (self.key is not None and key != self.key):
            return
        self._add(key, event.cost_usd, event.ts.timestamp())

    def _add(self, key: str, cost: float | None, epoch: float) -> None:
        with self._lock:
            tally = self._tallies.get(key)
            if tally is None:
                tally = self._tallies[key] = _Tally(self.window is not None)
            if cost is None:
                tally.unpriced += 1
                return
            tally.priced += 1
            if tally.events is not None:
                if self.window is not None and epoch < time.time() - self.window.total_seconds():
                    return  # already outside the window
                tally.events.append((epoch, cost))
            tally.spent += cost

    def _spent_locked(self, tally: _Tally, now: float) -> float:
        if tally.events is not None and self.window is not None:
            cutoff = now - self.window.total_seconds()
            events = tally.events
            dropped = False
            while events and events[0][0] < cutoff:
                tally.spent -= events.popleft()[1]
                dropped = True
            if dropped:  # recompute: no float drift from long add/subtract runs
                tally.spent = math.fsum(c for _, c in events)
        return max(tally.spent, 0.0)

    def check(self, attribution: Mapping[str, str | None]) -> None:
        """Act on *attribution*'s scope key if its recorded spend is at or over the limit.

        Called by ``meter.check_budgets`` before each LLM call with the resolved attribution.

        Raises:
            BudgetExceededError: with ``on_exceed="raise"`` (or from your callable).
        """
        key = attribution.get(self.field)
        if key is None or (self.key is not None and key != self.key):
            return
        with self._lock:
            tally = self._tallies.get(key)
            if tally is None:
                return
            spent = self._spent_locked(tally, time.time())
            over = spent >= self.limit_usd
            first_warning = over and not tally.warned
            tally.warned = over and (tally.warned or self.on_exceed == "warn")
        if not over:
            return
        error = BudgetExceededError(self._message(key, spent), scope=self.scope, key=key,
                                    limit_usd=self.limit_usd, spent_usd=spent)
        if self.on_exceed == "raise":
            raise error
        if self.on_exceed == "warn":
            if first_warning:
                logger.warning("a2a_llm_tracker: %s", error)
                warnings.warn(str(error), BudgetWarning, stacklevel=3)
            return
        self.on_exceed(error)  # type: ignore[operator]

    def _message(self, key: str, spent: float) -> str:
        window = f" in the last {_fmt_window(self.window)}" if self.window else ""
        return (f"budget exceeded: {self.scope} {key!r} spent ${spent:.6f}{window}, "
                f"limit ${self.limit_usd:.6f}")

    # -- state -----------------------------------------------------------------------------------------
    def spent(self, key: str | None = None) -> float:
        """Recorded spend of *key* (default: this budget's ``key``, else the sum over every key)."""
        key = key if key is not None else self.key
        now = time.time()
        with self._lock:
            if key is not None:
                tally = self._tallies.get(key)
                return 0.0 if tally is None else self._spent_locked(tally, now)
            return math.fsum(self._spent_locked(t, now) for t in self._tallies.values())

    def remaining(self, key: str | None = None) -> float:
        """``limit - spent`` for *key* (never below 0)."""
        return max(self.limit_usd - self.spent(key), 0.0)

    def exceeded(self, key: str | None = None) -> bool:
        """True when *key*'s recorded spend is at or over the limit."""
        return self.spent(key) >= self.limit_usd

    def unpriced_calls(self, key: str | None = None) -> int:
        """Events counted without a cost (they add nothing to the spend)."""
        key = key if key is not None else self.key
        with self._lock:
            if key is not None:
                tally = self._tallies.get(key)
                return 0 if tally is None else tally.unpriced
            return sum(t.unpriced for t in self._tallies.values())

    def keys(self) -> list[str]:
        """The scope keys seen so far."""
        with self._lock:
            return sorted(self._tallies)

    def reset(self, key: str | None = None) -> None:
        """Forget the spend of *key* (default: every key)."""
        with self._lock:
            if key is None:
                self._tallies.clear()
            else:
                self._tallies.pop(key, None)

    # -- seeding ---------------------------------------------------------------------------------------
    def seed_from(self, source: str | os.PathLike[str], *, table: str | None = None) -> Budget:
        """Add the spend already stored in *source* (SQLite, PostgreSQL or JSONL) to the totals.

        Call it once, at start, before this process records events (they are in the store and
        would count twice otherwise). With a window, only events inside it are read. Returns
        the budget, so ``Budget(...).seed_from("usage.db")`` reads well.

        Raises:
            ConfigurationError: the store cannot be read.
        """
        from ._sources import open_source, parse_ts

        src = open_source(source, table=table)
        cutoff = None if self.window is None else datetime.now(UTC) - self.window
        if not src.is_sql:
            for obj in src.iter_jsonl():
                key = obj.get(self.field)
                if key is None or (self.key is not None and key != self.key):
                    continue
                try:
                    ts = parse_ts(obj["ts"])
                except (KeyError, TypeError, ValueError):
                    continue
                if cutoff is None or ts >= cutoff:
                    self._add(str(key), obj.get("cost_usd"), ts.timestamp())
            return self
        p = src.param
        clauses = [f"{self.field} IS NOT NULL"]
        params: list[Any] = []
        if self.key is not None:
            clauses.append(f"{self.field} = {p}")
            params.append(self.key)
        if cutoff is not None:
            clauses.append(f"ts >= {p}")
            params.append(src.ts_param(cutoff))
        where = " WHERE " + " AND ".join(clauses)
        conn = src.connect()
        try:
            if self.window is None:  # totals only: the database adds up
                sql = (f"SELECT {self.field}, SUM(cost_usd), COUNT(cost_usd), "
                       f"SUM(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END) FROM {src.quoted_table()}{where} "
                       "GROUP BY 1")
                rows = conn.execute(sql, params).fetchall()
                with self._lock:
                    for key, spent, priced, unpriced in rows:
                        tally = self._tallies.setdefault(str(key), _Tally(False))
                        tally.spent += float(spent or 0.0)
                        tally.priced += int(priced or 0)
                        tally.unpriced += int(unpriced or 0)
            else:  # each event's time is needed to roll it out of the window later
                sql = f"SELECT {self.field}, ts, cost_usd FROM {src.quoted_table()}{where} ORDER BY ts"
                for key, ts, cost in conn.execute(sql, params).fetchall():
                    when = src.ts_value(ts)
                    if when is not None:
                        self._add(str(key), cost, when.timestamp())
        except ConfigurationError:
            raise
        except Exception as exc:  # sqlite3.Error / psycopg.Error
            raise ConfigurationError(f"cannot seed budget from {src.label}: "
                                     f"{str(exc).strip().splitlines()[0]}") from None
        finally:
            conn.close()
        return self

    def __repr__(self) -> str:
        window = f", window={_fmt_window(self.window)!r}" if self.window else ""
        key = f", key={self.key!r}" if self.key else ""
        return f"Budget({self.limit_usd!r}, scope={self.scope!r}{window}{key})"


def _fmt_window(window: timedelta | None) -> str:
    if window is None:
        return ""
    seconds = window.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
