"""UsageEvent ↔ table row: one column per event field, JSON text for dicts (SQLite, PostgreSQL)."""

from __future__ import annotations as _annotations

import json
import operator
from datetime import datetime
from typing import Any

from .._events import UsageEvent

__all__ = ["COLUMNS", "JSON_COLUMNS", "SCHEMA_VERSION", "column_types", "event_row", "row_event"]

#: Bump when the table layout changes; sinks record it and migrate older tables.
SCHEMA_VERSION = 1

COLUMNS: tuple[str, ...] = tuple(UsageEvent.model_fields)
JSON_COLUMNS = frozenset({"token_details", "raw_usage", "metadata"})
_INT_COLUMNS = frozenset({"input_tokens", "output_tokens", "total_tokens", "cached_input_tokens",
                          "cache_write_tokens", "reasoning_tokens"})
_REAL_COLUMNS = frozenset({"input_cost_usd", "output_cost_usd", "cost_usd", "latency_ms", "time_to_first_token_ms"})
_BOOL_COLUMNS = frozenset({"stream"})
_TIME_COLUMNS = frozenset({"ts", "price_effective_from"})

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


def column_types(dialect: str = "sqlite") -> dict[str, str]:
    """SQL type per column for *dialect* (``sqlite`` or ``postgres``)."""
    pg = dialect == "postgres"
    types: dict[str, str] = {}
    for name in COLUMNS:
        if name in _INT_COLUMNS:
            types[name] = "BIGINT" if pg else "INTEGER"
        elif name in _REAL_COLUMNS:
            types[name] = "DOUBLE PRECISION" if pg else "REAL"
        elif name in _BOOL_COLUMNS:
            types[name] = "BOOLEAN" if pg else "INTEGER"
        elif name in _TIME_COLUMNS:
            types[name] = "TIMESTAMPTZ" if pg else "TEXT"
        elif name in JSON_COLUMNS:
            types[name] = "JSONB" if pg else "TEXT"
        else:
            types[name] = "TEXT"
    types["event_id"] = "TEXT PRIMARY KEY"
    return types


def _iso(value: datetime | None) -> str | None:
    # fixed width, UTC (events are normalised to UTC): sorts as text
    return None if value is None else value.isoformat(timespec="microseconds")[:26] + "Z"


_quote = json.encoder.encode_basestring  # what _dumps uses for strings (ensure_ascii=False), in C
_FINITE = (float("-inf"), float("inf"))


def _json_text(value: Any) -> str:
    """``_dumps(value)``; flat dicts of str/int/finite float (the usual token_details and metadata)
    are encoded directly, about 4x faster than the json module's per-call setup."""
    if type(value) is not dict:
        return _dumps(value)
    if not value:
        return "{}"
    parts = []
    for key, item in value.items():
        kind = type(item)
        if type(key) is not str:
            return _dumps(value)
        if kind is str:
            parts.append(f"{_quote(key)}:{_quote(item)}")
        elif kind is int:
            parts.append(f"{_quote(key)}:{int.__repr__(item)}")
        elif kind is float and item == item and item not in _FINITE:
            parts.append(f"{_quote(key)}:{float.__repr__(item)}")
        else:
            return _dumps(value)
    return "{" + ",".join(parts) + "}"


_GET_ALL = operator.itemgetter(*COLUMNS)
_JSON_AT = tuple(i for i, n in enumerate(COLUMNS) if n in JSON_COLUMNS)
_TIME_AT = tuple(i for i, n in enumerate(COLUMNS) if n in _TIME_COLUMNS)
_BOOL_AT = tuple(i for i, n in enumerate(COLUMNS) if n in _BOOL_COLUMNS)


def event_row(event: UsageEvent, *, native_time: bool = False, native_bool: bool = False) -> tuple[Any, ...]:
    """The event as a row in :data:`COLUMNS` order (dicts as JSON text).

    ``native_time``/``native_bool`` keep datetimes and bools as Python objects (PostgreSQL drivers
    adapt them); by default times are fixed-width UTC ISO text and bools 0/1 (SQLite).
    """
    row = list(_GET_ALL(event.__dict__))  # every attribute at C speed, then the few conversions
    for i in _JSON_AT:
        value = row[i]
        if value is not None:
            row[i] = _json_text(value)
    if not native_time:
        for i in _TIME_AT:
            row[i] = _iso(row[i])
    for i in _BOOL_AT:
        row[i] = bool(row[i]) if native_bool else int(bool(row[i]))
    return tuple(row)


def row_event(row: dict[str, Any]) -> UsageEvent:
    """Rebuild an event from a row (a column → value mapping)."""
    data = dict(row)
    for name in JSON_COLUMNS:
        value = data.get(name)
        if isinstance(value, str):
            data[name] = json.loads(value)
    if "stream" in data and data["stream"] is not None:
        data["stream"] = bool(data["stream"])
    fields = UsageEvent.model_fields
    # NULL in a column added by a later schema version means "the field's default"
    return UsageEvent.model_validate({k: v for k, v in data.items()
                                      if k in fields and (v is not None or fields[k].default is None)})
