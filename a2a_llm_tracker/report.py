"""Read stored events back and total them per group: calls, tokens, cost, unpriced calls, errors.

The one place that decides what a group is and what "unpriced" means; the CLI
(``a2a-llm-tracker report``) prints what :func:`summarize` returns.

* A **priced** call has a ``cost_usd``. A group's ``cost_usd`` is the sum over its priced calls,
  and is ``None`` (shown as "unpriced", never $0) when none of its calls is priced.
* An **unpriced** call reported tokens but has no cost (no price covered its model).
* A **no-usage** call reported no tokens at all (``accuracy="unknown"``, usually a failed call).
* Token totals are sums of what was reported; ``None`` when no call of the group reported that count.

SQLite and PostgreSQL sources are aggregated by the database (one ``GROUP BY`` query);
JSONL files are streamed and aggregated in Python.

Example::

    from a2a_llm_tracker.report import summarize

    for row in summarize("usage.db", by=("agent_id", "model"), since="7d"):
        print(row.group, row.calls, row.cost_usd)

.. versionadded:: 0.1
"""

from __future__ import annotations as _annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ._sources import Progress, Source, open_source, parse_ts
from .exceptions import ConfigurationError
from .sinks._columns import _TIME_COLUMNS, JSON_COLUMNS, column_types

__all__ = ["FILTER_FIELDS", "GROUP_FIELDS", "TOTAL_FIELDS", "ReportRow", "grand_total", "parse_when",
           "parse_window", "summarize"]

#: Fields a report can group by.
GROUP_FIELDS: tuple[str, ...] = ("agent_id", "session_id", "user_id", "model", "provider", "project", "day")

#: Fields ``where=`` can filter on (text columns, plus ``day``).
FILTER_FIELDS: tuple[str, ...] = tuple(
    name for name, kind in column_types("sqlite").items()
    if kind.startswith("TEXT") and name not in JSON_COLUMNS and name not in _TIME_COLUMNS) + ("day",)

#: The totals of a row, in display order.
TOTAL_FIELDS: tuple[str, ...] = ("calls", "errors", "input_tokens", "output_tokens", "cached_input_tokens",
                                 "reasoning_tokens", "total_tokens", "cost_usd", "priced_calls",
                                 "unpriced_calls", "no_usage_calls")

# what an error, an unpriced call and a call without usage are, in SQL (the JSONL path: _Acc.add)
_ERROR = "status = 'error'"
_UNPRICED = "cost_usd IS NULL AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL)"
_NO_USAGE = "input_tokens IS NULL AND output_tokens IS NULL"
_TOKEN_SUMS = ("input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens", "total_tokens")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True, slots=True)
class ReportRow:
    """The totals of one group.

    Attributes:
        group: the grouping values, e.g. ``{"agent_id": "planner", "model": "gpt-4.1"}`` (None = not set).
        calls: events in the group.
        errors: calls with ``status="error"``.
        input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, total_tokens: sums of
            the reported counts (None when no call reported that count).
        cost_usd: the sum over priced calls; None when no call of the group is priced (never a silent 0).
        priced_calls: calls with a cost.
        unpriced_calls: calls that reported tokens but have no cost.
        no_usage_calls: calls that reported no tokens at all.
    """

    group: dict[str, str | None]
    calls: int = 0
    errors: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    reasoning_tokens: int | None = None
    total_tokens: int | None = None
    cost_usd: float | None = None
    priced_calls: int = 0
    unpriced_calls: int = 0
    no_usage_calls: int = 0

    def as_dict(self) -> dict[str, Any]:
        """A flat dict: the group fields, then the totals (JSON/CSV ready)."""
        out: dict[str, Any] = dict(self.group)
        for name in TOTAL_FIELDS:
            out[name] = getattr(self, name)
        return out


# -- arguments -----------------------------------------------------------------------------------------
def parse_window(value: str | timedelta, what: str = "window") -> timedelta:
    """``"7d"``, ``"24h"``, ``"30m"``, ``"90s"``, ``"2w"`` (or a timedelta) → timedelta.

    Raises:
        ConfigurationError: not a positive duration.
    """
    if isinstance(value, timedelta):
        delta = value
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        delta = timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()])
    else:
        raise ConfigurationError(f"{what} must be a duration like 30m, 24h, 7d or 2w, got {value!r}")
    if delta <= timedelta(0):
        raise ConfigurationError(f"{what} must be positive, got {value!r}")
    return delta


def parse_when(value: str | date | datetime | None, *, what: str = "since", end: bool = False,
               now: datetime | None = None) -> datetime | None:
    """A time bound → aware UTC datetime.

    Accepts a datetime (naive = UTC), a date or ``YYYY-MM-DD`` (midnight UTC; with *end*, the
    end of that day, so ``until=2026-01-31`` includes the 31st), an ISO datetime, ``now``,
    ``today``, or a duration back from now (``7d``, ``24h``, ``30m``).

    Raises:
        ConfigurationError: the value cannot be read (the message names *what*).
    """
    if value is None:
        return None
    current = now or datetime.now(UTC)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        start = datetime(value.year, value.month, value.day, tzinfo=UTC)
        return start + timedelta(days=1) if end else start
    if not isinstance(value, str):
        raise ConfigurationError(f"{what} must be a date, datetime or duration, got {type(value).__name__}")
    text = value.strip()
    lowered = text.lower()
    if lowered == "now":
        return current
    if lowered == "today":
        return parse_when(current.date(), what=what, end=end)
    if _DURATION.match(text):
        return current - parse_window(text, what)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return parse_when(date.fromisoformat(text), what=what, end=end)
        except ValueError:
            pass
    else:
        try:
            return parse_ts(text.replace(" ", "T", 1) if re.match(r"\d{4}-\d{2}-\d{2} ", text) else text)
        except ValueError:
            pass
    raise ConfigurationError(f"{what}: cannot read {value!r} as a date (2026-01-31), a datetime "
                             f"(2026-01-31T12:00:00Z) or a duration back from now (7d, 24h, 30m)")


def _check_by(by: str | Iterable[str]) -> tuple[str, ...]:
    fields = tuple(f.strip() for f in (by.split(",") if isinstance(by, str) else by))
    fields = tuple(f for f in fields if f)
    if not fields:
        raise ConfigurationError(f"by needs at least one field; choose from {', '.join(GROUP_FIELDS)}")
    for name in fields:
        if name not in GROUP_FIELDS:
            raise ConfigurationError(f"unknown group field {name!r}; choose from {', '.join(GROUP_FIELDS)}")
    if len(set(fields)) != len(fields):
        raise ConfigurationError(f"group field listed twice in {','.join(fields)}")
    return fields


def _check_where(where: Mapping[str, Any] | None) -> dict[str, tuple[str | None, ...]]:
    clean: dict[str, tuple[str | None, ...]] = {}
    for name, value in (where or {}).items():
        if name not in FILTER_FIELDS:
            raise ConfigurationError(f"cannot filter on {name!r}; choose from {', '.join(FILTER_FIELDS)}")
        values = tuple(value) if isinstance(value, list | tuple | set | frozenset) else (value,)
        for v in values:
            if v is not None and not isinstance(v, str):
                raise ConfigurationError(f"where[{name!r}] values must be strings or None, got {v!r}")
        if not values:
            raise ConfigurationError(f"where[{name!r}] is an empty list")
        clean[name] = values
    return clean


# -- the query -----------------------------------------------------------------------------------------
def summarize(source: str | os.PathLike[str] | Source, *, by: str | Sequence[str] = ("agent_id",),
              since: str | date | datetime | None = None, until: str | date | datetime | None = None,
              where: Mapping[str, Any] | None = None, table: str | None = None,
              progress: Progress | None = None) -> list[ReportRow]:
    """Total the stored events of *source* per group.

    Args:
        source: a ``.jsonl`` file, a ``.db``/``.sqlite`` SQLite file, or a ``postgresql://`` DSN.
        by: group fields (any of :data:`GROUP_FIELDS`), a sequence or a comma-separated string.
        since: only events at or after this time (see :func:`parse_when`: dates, datetimes, ``7d``).
        until: only events before this time (a plain date includes that whole day).
        where: equality filters, ``{"status": "error", "agent_id": ["a", "b"]}`` (None matches unset).
        table: the events table of a SQL source (default ``usage_events``).
        progress: called as ``progress(done, total)`` while a JSONL file is read.

    Returns:
        One :class:`ReportRow` per group, ordered by the group values (unset values last).

    Raises:
        ConfigurationError: a bad source, field, filter or time bound (the message says which).
    """
    fields = _check_by(by)
    start = parse_when(since, what="since")
    stop = parse_when(until, what="until", end=True)
    if start is not None and stop is not None and stop <= start:
        raise ConfigurationError(f"until ({stop.isoformat()}) must be after since ({start.isoformat()})")
    filters = _check_where(where)
    src = open_source(source, table=table)
    if src.is_sql:
        rows = _summarize_sql(src, fields, start, stop, filters)
    else:
        rows = _summarize_jsonl(src, fields, start, stop, filters, progress)
    rows.sort(key=lambda r: tuple((v is None, v or "") for v in r.group.values()))
    return rows


def grand_total(rows: Iterable[ReportRow]) -> ReportRow:
    """One row adding up *rows* (its ``group`` is empty); cost stays None if nothing is priced."""
    acc = _Acc()
    for row in rows:
        acc.merge_row(row)
    return acc.row({})


def where_sql(src: Source, start: datetime | None, stop: datetime | None,
              filters: Mapping[str, tuple[str | None, ...]]) -> tuple[str, list[Any]]:
    """The WHERE clause (with its parameters) for time bounds and equality filters."""
    clauses: list[str] = []
    params: list[Any] = []
    if start is not None:
        clauses.append(f"ts >= {src.param}")
        params.append(src.ts_param(start))
    if stop is not None:
        clauses.append(f"ts < {src.param}")
        params.append(src.ts_param(stop))
    for name, values in filters.items():
        col = src.day_expr() if name == "day" else name
        present = [v for v in values if v is not None]
        parts = []
        if present:
            parts.append(f"{col} IN ({', '.join([src.param] * len(present))})")
            params.extend(present)
        if len(present) != len(values):
            parts.append(f"{col} IS NULL")
        clauses.append("(" + " OR ".join(parts) + ")")
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def aggregate_sql(src: Source, fields: Sequence[str]) -> str:
    """The SELECT list and GROUP BY of a report (exposed for the benchmark and for tests)."""
    keys = [src.day_expr() if f == "day" else f for f in fields]
    tokens = ", ".join(f"SUM({t})" for t in _TOKEN_SUMS)
    if src.kind == "postgres":
        def count_if(cond: str) -> str:
            return f"COUNT(*) FILTER (WHERE {cond})"
    else:  # SQLite: a comparison is 0/1, and summing it is cheaper than CASE
        def count_if(cond: str) -> str:
            return f"TOTAL({cond})"
    select = (f"SELECT {', '.join(keys)}, COUNT(*), {count_if(_ERROR)}, {tokens}, SUM(cost_usd), COUNT(cost_usd), "
              f"{count_if(_UNPRICED)}, {count_if(_NO_USAGE)}")
    group = ", ".join(str(i + 1) for i in range(len(keys)))
    return f"{select} FROM {src.quoted_table()}{{where}} GROUP BY {group}"


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _summarize_sql(src: Source, fields: Sequence[str], start: datetime | None, stop: datetime | None,
                   filters: Mapping[str, tuple[str | None, ...]]) -> list[ReportRow]:
    where, params = where_sql(src, start, stop, filters)
    sql = aggregate_sql(src, fields).format(where=where)
    conn = src.connect()
    try:
        result = conn.execute(sql, params).fetchall()
    except Exception as exc:  # sqlite3.Error / psycopg.Error: a table this version cannot read
        raise ConfigurationError(f"cannot read {src.label}: {str(exc).strip().splitlines()[0]}") from None
    finally:
        conn.close()
    n = len(fields)
    rows = []
    for rec in result:
        group = {f: (None if v is None else str(v)) for f, v in zip(fields, rec[:n], strict=True)}
        calls, errors, inp, out, cached, reasoning, total, cost, priced, unpriced, no_usage = rec[n:]
        rows.append(ReportRow(group, int(calls), int(errors or 0), _int(inp), _int(out), _int(cached),
                              _int(reasoning), _int(total), None if not priced else float(cost),
                              int(priced or 0), int(unpriced or 0), int(no_usage or 0)))
    return rows


class _Acc:
    """Running totals of one group (JSONL and :func:`grand_total`)."""

    __slots__ = ("calls", "errors", "tokens", "cost", "priced", "unpriced", "no_usage")

    def __init__(self) -> None:
        self.calls = self.errors = self.priced = self.unpriced = self.no_usage = 0
        self.tokens: list[int | None] = [None] * len(_TOKEN_SUMS)
        self.cost = 0.0

    def add(self, obj: Mapping[str, Any]) -> None:
        self.calls += 1
        if obj.get("status") == "error":
            self.errors += 1
        tokens = self.tokens
        for i, name in enumerate(_TOKEN_SUMS):
            v = obj.get(name)
            if v is not None:
                tokens[i] = v if tokens[i] is None else tokens[i] + v  # type: ignore[operator]
        cost = obj.get("cost_usd")
        if cost is not None:
            self.priced += 1
            self.cost += cost
        elif obj.get("input_tokens") is not None or obj.get("output_tokens") is not None:
            self.unpriced += 1
        if obj.get("input_tokens") is None and obj.get("output_tokens") is None:
            self.no_usage += 1

    def merge_row(self, row: ReportRow) -> None:
        self.calls += row.calls
        self.errors += row.errors
        for i, name in enumerate(_TOKEN_SUMS):
            v = getattr(row, name)
            if v is not None:
                self.tokens[i] = v if self.tokens[i] is None else self.tokens[i] + v  # type: ignore[operator]
        if row.cost_usd is not None:
            self.cost += row.cost_usd
        self.priced += row.priced_calls
        self.unpriced += row.unpriced_calls
        self.no_usage += row.no_usage_calls

    def row(self, group: dict[str, str | None]) -> ReportRow:
        inp, out, cached, reasoning, total = self.tokens  # the order of _TOKEN_SUMS
        return ReportRow(group, self.calls, self.errors, input_tokens=inp, output_tokens=out,
                         cached_input_tokens=cached, reasoning_tokens=reasoning, total_tokens=total,
                         cost_usd=self.cost if self.priced else None, priced_calls=self.priced,
                         unpriced_calls=self.unpriced, no_usage_calls=self.no_usage)


def _day(ts: Any) -> str | None:
    if not isinstance(ts, str):
        return None
    if ts.endswith(("Z", "+00:00")):
        return ts[:10]
    try:
        return parse_ts(ts).strftime("%Y-%m-%d")
    except ValueError:
        return None


def _summarize_jsonl(src: Source, fields: Sequence[str], start: datetime | None, stop: datetime | None,
                     filters: Mapping[str, tuple[str | None, ...]], progress: Progress | None) -> list[ReportRow]:
    groups: dict[tuple[str | None, ...], _Acc] = {}
    need_day = "day" in fields or "day" in filters
    timed = start is not None or stop is not None
    plain = [f for f in fields if f != "day"]
    for number, obj in enumerate(src.iter_jsonl(progress), 1):
        ts = obj.get("ts")
        if timed:
            try:
                when = parse_ts(ts)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise ConfigurationError(f"{src.label}: event {number} has no valid ts ({ts!r})") from None
            if (start is not None and when < start) or (stop is not None and when >= stop):
                continue
        day = _day(ts) if need_day else None
        if filters:
            ok = True
            for name, values in filters.items():
                if (day if name == "day" else obj.get(name)) not in values:
                    ok = False
                    break
            if not ok:
                continue
        if plain and len(plain) == len(fields):
            key = tuple(obj.get(f) for f in fields)
        else:
            key = tuple(day if f == "day" else obj.get(f) for f in fields)
        acc = groups.get(key)
        if acc is None:
            acc = groups[key] = _Acc()
        acc.add(obj)
    return [acc.row({f: (None if v is None else str(v)) for f, v in zip(fields, key, strict=True)})
            for key, acc in groups.items()]

