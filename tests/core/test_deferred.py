"""Adapters record through ``Meter._record_later``: the event is built, attributed and priced on the
writer thread. These tests hold that path to what ``record()`` promises (attribution at call time,
prices, nothing lost, bad input reported) with real threads, sinks and outbox files.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

from a2a_llm_tracker import Meter, PricingRegistry, meter_context
from a2a_llm_tracker._budget import Budget
from a2a_llm_tracker._dispatch import DispatchConfig
from a2a_llm_tracker.sinks.memory import MemorySink
from a2a_llm_tracker.sinks.sqlite import SQLiteSink


def _pricing() -> PricingRegistry:
    pricing = PricingRegistry()
    pricing.set_price("openai", "gpt-4.1", input_per_million=2.0, output_per_million=8.0,
                      cached_input_per_million=0.5)
    return pricing


def _fields(**extra: object) -> dict[str, object]:
    return {"provider": "openai", "model": "gpt-4.1", "input_tokens": 1000, "output_tokens": 100,
            "cached_input_tokens": 400, "framework": "test", **extra}


def test_attribution_is_the_callers_at_call_time_and_the_event_is_priced() -> None:
    sink = MemorySink()
    meter = Meter(pricing=_pricing(), sinks=[sink], project="p")
    assert meter._defer
    with meter_context(agent_id="planner", session_id="s-1"):
        meter._record_later(_fields(call_id="c1"))
    with meter_context(agent_id="writer"):
        meter._record_later(_fields(call_id="c2", agent_id="explicit"))

    def from_a_thread() -> None:  # a thread sees no ambient context of its own
        meter._record_later(_fields(call_id="c3"))

    worker = threading.Thread(target=from_a_thread)
    worker.start()
    worker.join()
    assert meter.flush(10)
    by_call = {e.call_id: e for e in sink.events}
    assert (by_call["c1"].agent_id, by_call["c1"].session_id, by_call["c1"].project) == ("planner", "s-1", "p")
    assert by_call["c2"].agent_id == "explicit"  # the event's own value wins over the context
    assert by_call["c3"].agent_id is None and by_call["c3"].project == "p"
    # 600 uncached at $2/M + 400 cached at $0.5/M, 100 output at $8/M
    assert by_call["c1"].input_cost_usd == (600 * 2 + 400 * 0.5) / 1e6
    assert by_call["c1"].output_cost_usd == 100 * 8 / 1e6
    assert by_call["c1"].cost_source == "pricing"
    meter.close()


def test_the_timestamp_is_the_call_time_not_the_build_time() -> None:
    sink = MemorySink()
    meter = Meter(sinks=[sink], dispatch=DispatchConfig(schedule_delay=0.3))
    before = datetime.now(UTC)
    meter._record_later(_fields())
    after = datetime.now(UTC)
    assert meter.flush(10)
    assert before <= sink.events[0].ts <= after
    meter.close()


def test_fields_that_cannot_form_an_event_are_logged_and_counted_and_spare_the_rest(caplog) -> None:
    sink = MemorySink()
    meter = Meter(sinks=[sink])
    with caplog.at_level(logging.WARNING, logger="a2a_llm_tracker"):
        meter._record_later(_fields(call_id="good-1"))
        meter._record_later(_fields(call_id="bad", input_tokens=-5))
        meter._record_later(_fields(call_id="good-2"))
        assert meter.flush(10)
    assert [e.call_id for e in sink.events] == ["good-1", "good-2"]
    stats = meter.stats()
    assert stats.invalid == 1 and stats.submitted == 3 and stats.written == 2
    assert "could not build the event of a test call" in caplog.text
    meter.close()


def test_subsets_above_their_totals_keep_the_call_with_a_warning() -> None:
    sink = MemorySink()
    meter = Meter(pricing=_pricing(), sinks=[sink])
    meter._record_later(_fields(cached_input_tokens=5000))
    assert meter.flush(10)
    event = sink.events[0]
    assert event.input_tokens == 1000 and event.cached_input_tokens is None
    assert event.metadata["usage_warning"] == "subset counts exceeded totals"
    assert event.cost_usd == (1000 * 2 + 100 * 8) / 1e6  # all input at the uncached rate
    meter.close()


def test_budgets_see_the_event_at_once() -> None:
    sink = MemorySink()
    meter = Meter(pricing=_pricing(), sinks=[sink], budgets=[Budget(limit_usd=1.0, scope="agent")])
    assert not meter._defer  # an observer must see each call before the next one is checked
    seen = []
    meter.add_observer(seen.append)
    with meter_context(agent_id="a"):
        meter._record_later(_fields())
    assert len(seen) == 1 and seen[0].agent_id == "a" and seen[0].cost_usd is not None
    meter.close()


def test_inline_and_strict_meters_build_at_once() -> None:
    sink = MemorySink()
    inline = Meter(sinks=[sink], background=False)
    assert not inline._defer
    inline._record_later(_fields())
    assert len(sink.events) == 1  # written in the call itself
    assert not Meter(sinks=[MemorySink()], strict=True)._defer


def test_close_builds_and_writes_everything_still_queued(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    meter = Meter(pricing=_pricing(), sinks=[SQLiteSink(path)], dispatch=DispatchConfig(schedule_delay=5.0))
    with meter_context(agent_id="a"):
        for i in range(300):
            meter._record_later(_fields(call_id=f"c{i}"))
    assert meter.close(10)
    import sqlite3

    rows = sqlite3.connect(path).execute(
        "SELECT count(*), min(agent_id), sum(cost_usd > 0) FROM usage_events").fetchone()
    assert rows == (300, "a", 300)


def test_a_call_recorded_after_close_is_built_into_the_outbox_and_replayed(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.db"
    first = MemorySink("shared")
    meter = Meter(pricing=_pricing(), sinks=[first], dispatch=DispatchConfig(outbox_path=outbox))
    meter.close()
    with meter_context(agent_id="late-agent"):
        meter._record_later(_fields(call_id="late"))
    assert meter.stats().late == 1
    second = MemorySink("shared")
    again = Meter(pricing=_pricing(), sinks=[second], dispatch=DispatchConfig(outbox_path=outbox))
    assert again.replay_outbox() >= 1
    [event] = second.events
    assert (event.call_id, event.agent_id, event.cost_source) == ("late", "late-agent", "pricing")
    again.close()
