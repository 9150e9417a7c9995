"""A writer process for the concurrency test (kept small: spawn imports it in every child)."""

from __future__ import annotations

from typing import Any


def writer(dsn: str, schema: str, outbox: str, worker: int, n: int, shared: int, barrier: Any) -> None:
    from a2a_llm_tracker._events import UsageEvent
    from a2a_llm_tracker.sinks.postgres import PostgresSink

    barrier.wait(60)  # every process creates/migrates the table at the same moment
    sink = PostgresSink(dsn, schema=schema, outbox_path=outbox)
    own = [UsageEvent(event_id=f"w{worker}-{i}", model="gpt-4.1", input_tokens=i, agent_id=f"w{worker}")
           for i in range(n)]
    common = [UsageEvent(event_id=f"shared-{i}", model="gpt-4.1", input_tokens=i) for i in range(shared)]
    for i in range(0, n, 250):
        sink.write_many(own[i:i + 250] + common[i // 5:i // 5 + 50])
    sink.write_many(common)  # every worker redelivers the shared events
    assert sink.counts["parked"] == 0, sink.counts
    sink.close()
