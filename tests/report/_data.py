"""A small, hand-checked set of usage events, stored for real through the tracker's own sinks.

Shared by tests/report, tests/cli and tests/budget. Costs below are worked out by hand from
PRICES (USD per million tokens) under the inclusive usage contract.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from a2a_llm_tracker import Meter, PricingRegistry, UsageEvent
from a2a_llm_tracker.sinks.jsonl import JSONLSink
from a2a_llm_tracker.sinks.sqlite import SQLiteSink

PG_DSN = os.environ.get("A2A_TEST_PG_DSN", "postgresql://127.0.0.1:5432/test")


def _ts(day: int, hour: int) -> datetime:
    return datetime(2026, 3, day, hour, 0, tzinfo=UTC)


def pricing() -> PricingRegistry:
    p = PricingRegistry()
    p.set_price("openai", "gpt-4.1", 2.0, 8.0, cached_input_per_million=0.5)
    p.set_price("openai", "gpt-4.1-mini", 0.4, 1.6)
    return p


# (fields, expected cost) -- cost None = unpriced or no usage
EVENTS: list[tuple[dict, float | None]] = [
    # 600 uncached*2 + 400 cached*0.5 = 1400; 200 out*8 = 1600  -> $0.003
    (dict(event_id="e1", ts=_ts(1, 9), provider="openai", model="gpt-4.1", input_tokens=1000, output_tokens=200,
          cached_input_tokens=400, agent_id="planner", session_id="s1", user_id="u1", project="p1"), 0.003),
    # 2000*2 = 4000; 100*8 = 800 (reasoning at the output rate) -> $0.0048
    (dict(event_id="e2", ts=_ts(1, 10), provider="openai", model="gpt-4.1", input_tokens=2000, output_tokens=100,
          reasoning_tokens=50, agent_id="planner", session_id="s1", user_id="u1", project="p1"), 0.0048),
    # no price for this model -> unpriced
    (dict(event_id="e3", ts=_ts(1, 11), provider="acme", model="mystery-model", input_tokens=500, output_tokens=50,
          agent_id="researcher", session_id="s1", user_id="u1", project="p1"), None),
    # 10000*0.4 = 4000; 1000*1.6 = 1600 -> $0.0056
    (dict(event_id="e4", ts=_ts(2, 9), provider="openai", model="gpt-4.1-mini", input_tokens=10000,
          output_tokens=1000, agent_id="researcher", session_id="s2", user_id="u2", project="p1"), 0.0056),
    # a failed call: no usage at all
    (dict(event_id="e5", ts=_ts(2, 10), provider="openai", model="gpt-4.1", status="error",
          error_type="RateLimitError", agent_id="researcher", session_id="s2", user_id="u2", project="p1"), None),
    (dict(event_id="e6", ts=_ts(2, 11), provider="acme", model="mystery-model", input_tokens=100, output_tokens=10,
          agent_id="writer", session_id="s2", user_id="u2", project="p2"), None),
    # no agent: 100*2 = 200; 10*8 = 80 -> $0.00028
    (dict(event_id="e7", ts=_ts(2, 12), provider="openai", model="gpt-4.1", input_tokens=100, output_tokens=10,
          session_id="s2", user_id="u2", project="p2"), 0.00028),
]


def events() -> list[UsageEvent]:
    return [UsageEvent(**fields) for fields, _ in EVENTS]


def record_all(sinks: list, evs: list[UsageEvent] | None = None) -> list[UsageEvent]:
    """Record the events through a real Meter (priced by PRICES) into *sinks*; returns them as stored."""
    with Meter(pricing=pricing(), sinks=sinks, background=False, strict=True) as meter:
        stored = [meter.record(e) for e in (evs if evs is not None else events())]
    if evs is None:  # the Meter priced them as worked out by hand above
        for stored_event, (_, cost) in zip(stored, EVENTS):
            if cost is None:
                assert stored_event.cost_usd is None
            else:
                assert stored_event.cost_usd == pytest.approx(cost)
    return stored


def sqlite_store(tmp_path: Path) -> Path:
    path = tmp_path / "usage.db"
    record_all([SQLiteSink(path)])
    return path


def jsonl_store(tmp_path: Path) -> Path:
    path = tmp_path / "usage.jsonl"
    record_all([JSONLSink(path)])
    return path


def pg_available() -> str | None:
    """None if the test PostgreSQL answers, else the reason to skip."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        psycopg.connect(PG_DSN, connect_timeout=2).close()
    except Exception as exc:  # noqa: BLE001
        return f"no PostgreSQL server answers at {PG_DSN} ({type(exc).__name__})"
    return None


def pg_store(schema: str) -> tuple[str, str]:
    """Record EVENTS into a fresh schema through the real PostgresSink; returns (dsn, table)."""
    import psycopg

    from a2a_llm_tracker.sinks.postgres import PostgresSink

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    record_all([PostgresSink(PG_DSN, schema=schema)])
    return PG_DSN, f"{schema}.usage_events"


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
