"""UsageEvent ↔ table row: one column per event field, JSON text for dicts (SQLite, PostgreSQL)."""

from __future__ import annotations as _annotations

import json
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
    # fixed width, UTC: sorts as text
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return "{}" if not value else _dumps(value)


# per column: how to turn the attribute into a SQL value (None: as is)
_CONVERT_TEXT: tuple[Any, ...] = tuple(
    _json_or_none if n in JSON_COLUMNS else _iso if n in _TIME_COLUMNS else int if n in _BOOL_COLUMNS else None
    for n in COLUMNS)
_CONVERT_NATIVE: tuple[Any, ...] = tuple(
    _json_or_none if n in JSON_COLUMNS else bool if n in _BOOL_COLUMNS else None for n in COLUMNS)


def event_row(event: UsageEvent, *, native_time: bool = False, native_bool: bool = False) -> tuple[Any, ...]:
    """The event as a tuple in :data:`COLUMNS` order (dicts as JSON text).

    ``native_time``/``native_bool`` keep datetimes and bools as Python objects (PostgreSQL drivers
    adapt them); by default times are fixed-width UTC ISO text and bools 0/1 (SQLite).
    """
    data = event.__dict__
    if native_time and native_bool:
        converters = _CONVERT_NATIVE
    elif not native_time and not native_bool:
        converters = _CONVERT_TEXT
    else:
        converters = tuple(
            _json_or_none if n in JSON_COLUMNS
            else (None if native_time else _iso) if n in _TIME_COLUMNS
            else (bool if native_bool else int) if n in _BOOL_COLUMNS else None for n in COLUMNS)
    return tuple(data[name] if conv is None else conv(data[name]) for name, conv in zip(COLUMNS, converters, strict=True))


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
