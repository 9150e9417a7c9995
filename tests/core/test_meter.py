"""Meter: enrich → price → dispatch; failure isolation; the seed README snippets."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from a2a_llm_tracker import (
    ConfigurationError,
    DispatchConfig,
    Meter,
    PricingRegistry,
    UsageEvent,
    meter_context,
)
from a2a_llm_tracker.sinks.base import Sink
from a2a_llm_tracker.sinks.jsonl import JSONLSink, read_jsonl
from a2a_llm_tracker.sinks.memory import MemorySink


class FlakySink(Sink):
    """A sink that fails a set number of times, or for chosen events, then works."""

    def __init__(self, name="flaky", fail_times=0, poison=(), delay=0.0):
        self._name, self.fail_times, self.poison, self.delay = name, fail_times, set(poison), delay
        self.events: list[UsageEvent] = []
        self.calls = 0
        self.lock = threading.Lock()

    @property
    def name(self):
        return self._name

    def write(self, event):
        self.write_many([event])

    def write_many(self, events):
        import time
        with self.lock:
            self.calls += 1
            if self.delay:
                time.sleep(self.delay)
            if self.fail_times > 0:
                self.fail_times -= 1
                raise ConnectionError("sink down (api_key=sk-live-abcdefgh12345678)")
            if any(e.event_id in self.poison for e in events):
                raise ValueError("poison event")
            self.events.extend(events)


@pytest.fixture(name="pricing")
def _pricing():
    pricing = PricingRegistry()
    pricing.set_price(provider="openai", model="openai/gpt-4.1", input_per_million=2.0, output_per_million=8.0)
    return pricing


class TestSeedReadme:
    def test_create_a_tracker(self, tmp_path, monkeypatch, pricing):
        """The seed README's "Create a tracker" snippet, as written."""
        monkeypatch.chdir(tmp_path)
        meter = Meter(
            pricing=pricing,
            sinks=[JSONLSink("usage.jsonl")],
            project="my-a2a-system",
        )
        event = meter.record(UsageEvent(provider="openai", model="openai/gpt-4.1", input_tokens=1000,
                                        output_tokens=500))
        meter.close()
        assert event.cost_usd == pytest.approx(0.006)
        assert event.total_tokens == 1500
        (stored,) = list(read_jsonl(tmp_path / "usage.jsonl"))
        assert stored.project == "my-a2a-system" and stored.cost_usd == pytest.approx(0.006)
        assert stored.event_id == event.event_id

    def test_agent_and_session_context(self, pricing):
        """The seed README's "Agent and Session Context" snippet attributes the call."""
        sink = MemorySink()
        meter = Meter(pricing=pricing, sinks=[sink])
        with meter_context(
            agent_id="planner-agent",
            session_id="session-123",
            user_id="user-456",
        ):
            meter.record(UsageEvent(provider="openai", model="openai/gpt-4.1", input_tokens=10, output_tokens=5))
        meter.close()
        (event,) = sink.events
        assert (event.agent_id, event.session_id, event.user_id) == ("planner-agent", "session-123", "user-456")

    def test_pricing_is_user_controlled(self):
        """The seed README's "Pricing" snippet: the user's price is the one used."""
        pricing = PricingRegistry()
        pricing.set_price(
            provider="openai",
            model="openai/gpt-4.1",
            input_per_million=2.0,
            output_per_million=8.0,
        )
        meter = Meter(pricing=pricing, background=False)
        event = meter.record(provider="openai", model="gpt-4.1", input_tokens=2_000_000, output_tokens=1_000_000)
        assert event.cost_usd == pytest.approx(12.0) and event.cost_source == "pricing"
        assert (event.input_cost_usd, event.output_cost_usd) == (pytest.approx(4.0), pytest.approx(8.0))


class TestRecord:
    def test_precedence_explicit_over_context_over_defaults(self):
        meter = Meter(background=False, project="default-project",
                      defaults={"agent_id": "default-agent", "user_id": "default-user"})
        with meter_context(agent_id="ambient-agent", session_id="ambient-session"):
            event = meter.record(UsageEvent(agent_id="explicit-agent"))
        assert event.agent_id == "explicit-agent"
        assert event.session_id == "ambient-session"
        assert event.user_id == "default-user"
        assert event.project == "default-project"

    def test_context_metadata_merged_under_event_metadata(self):
        meter = Meter(background=False)
        with meter_context(team="blue", step="ctx"):
            event = meter.record(UsageEvent(metadata={"step": "explicit"}))
        assert event.metadata == {"team": "blue", "step": "explicit"}

    def test_unpriced_is_none_not_zero(self, pricing):
        event = Meter(pricing=pricing, background=False).record(model="unknown-model", input_tokens=5,
                                                                 output_tokens=5)
        assert event.cost_usd is None and event.cost_source is None

    def test_provider_cost_only_when_enabled(self):
        reported = UsageEvent(provider="openai", model="custom", input_tokens=10, output_tokens=10,
                              cost_usd=0.5, cost_source="provider")
        assert Meter(background=False).record(reported).cost_usd is None
        kept = Meter(background=False, use_provider_cost=True).record(reported)
        assert kept.cost_usd == 0.5 and kept.cost_source == "provider"

    def test_zero_provider_cost_with_tokens_is_unpriced(self):
        zero = UsageEvent(provider="openai", model="custom", input_tokens=10, output_tokens=10, cost_usd=0.0,
                          cost_source="provider")
        event = Meter(background=False, use_provider_cost=True).record(zero)
        assert event.cost_usd is None and event.cost_source is None

    def test_user_price_beats_provider_cost(self, pricing):
        reported = UsageEvent(provider="openai", model="gpt-4.1", input_tokens=1_000_000, output_tokens=0,
                              cost_usd=99.0, cost_source="provider")
        event = Meter(pricing=pricing, background=False, use_provider_cost=True).record(reported)
        assert event.cost_usd == pytest.approx(2.0) and event.cost_source == "pricing"

    def test_malformed_event_raises_naming_field_and_records_nothing(self):
        sink = MemorySink()
        meter = Meter(sinks=[sink], background=False)
        meter.record(input_tokens=1)
        with pytest.raises(ValueError, match="output_tokens"):
            meter.record({"output_tokens": -3})
        with pytest.raises(TypeError, match="UsageEvent or a dict"):
            meter.record(42)  # type: ignore[arg-type]
        assert len(sink.events) == 1

    def test_bad_configuration(self):
        with pytest.raises(ConfigurationError, match="pricing"):
            Meter(pricing={"gpt-4.1": 2})  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="write"):
            Meter(sinks=[object()])
        with pytest.raises(ValueError, match="max_queue"):
            DispatchConfig(max_queue=0)
        with pytest.raises(ValueError, match="share the name"):
            Meter(sinks=[MemorySink(), MemorySink()])

    def test_observer_sees_final_event(self, pricing):
        seen = []
        meter = Meter(pricing=pricing, background=False)
        meter.add_observer(seen.append)
        event = meter.record(model="gpt-4.1", provider="openai", input_tokens=10, output_tokens=1)
        assert seen == [event] and seen[0].cost_usd is not None

    def test_enricher_runs_and_a_failing_one_is_isolated(self, caplog):
        def tag(event):
            return event.model_copy(update={"metadata": {**event.metadata, "tagged": True}})

        def broken(event):
            raise RuntimeError("enricher bug")

        meter = Meter(background=False, enrichers=[tag, broken])
        with caplog.at_level(logging.WARNING, logger="a2a_llm_tracker"):
            event = meter.record(input_tokens=1)
        assert event.metadata == {"tagged": True}
        assert "enricher" in caplog.text


class TestFailureIsolation:
    def test_failing_sink_never_reaches_caller_nor_stops_others(self, caplog):
        good = MemorySink()
        bad = FlakySink(fail_times=10**6)
        meter = Meter(sinks=[bad, good], dispatch=DispatchConfig(retry_backoff=0.001))
        with caplog.at_level(logging.WARNING, logger="a2a_llm_tracker"):
            for i in range(50):
                meter.record(input_tokens=i)
            assert meter.flush(30)
        assert len(good.events) == 50
        stats = meter.stats()
        assert stats.sink_errors["flaky"] >= 3
        assert stats.export_failed == 50 and stats.in_outbox == 50 and stats.lost == 0
        assert "sink flaky failed" in caplog.text
        assert "sk-live-abcdefgh12345678" not in caplog.text  # scrubbed from the log line
        meter.close()

    def test_transient_failure_is_retried(self):
        flaky = FlakySink(fail_times=2)
        meter = Meter(sinks=[flaky], dispatch=DispatchConfig(retry_backoff=0.001))
        meter.record(input_tokens=1)
        meter.flush(30)
        assert len(flaky.events) == 1 and meter.stats().retried == 2
        meter.close()

    def test_poison_event_does_not_drop_the_good_ones(self):
        good_events = [UsageEvent(input_tokens=i) for i in range(20)]
        poison = UsageEvent(input_tokens=99)
        sink = FlakySink(poison={poison.event_id})
        meter = Meter(sinks=[sink], dispatch=DispatchConfig(retry_backoff=0.001, schedule_delay=0.5))
        for e in good_events[:10] + [poison] + good_events[10:]:
            meter.record(e)
        meter.flush(30)
        assert {e.event_id for e in sink.events} == {e.event_id for e in good_events}
        assert meter.stats().in_outbox == 1
        meter.close()

    def test_parked_events_replay_when_sink_recovers(self, tmp_path):
        outbox = tmp_path / "outbox.db"
        sink = FlakySink(fail_times=10**6)
        meter = Meter(sinks=[sink], dispatch=DispatchConfig(max_retries=3, retry_backoff=0.001,
                                                            outbox_path=outbox))
        recorded = [meter.record(input_tokens=i) for i in range(5)]
        meter.flush(30)
        assert sink.events == [] and meter.stats().in_outbox == 5
        sink.fail_times = 0  # the sink recovers
        assert meter.replay_outbox() == 5
        assert {e.event_id for e in sink.events} == {e.event_id for e in recorded}
        assert meter.stats().in_outbox == 0
        meter.close()

    def test_outbox_survives_restart(self, tmp_path):
        outbox = tmp_path / "outbox.db"
        down = FlakySink(name="store", fail_times=10**6)
        first = Meter(sinks=[down], dispatch=DispatchConfig(max_retries=1, outbox_path=outbox))
        recorded = [first.record(input_tokens=i) for i in range(7)]
        first.close()
        up = FlakySink(name="store")
        second = Meter(sinks=[up], dispatch=DispatchConfig(outbox_path=outbox))
        second.replay_outbox()
        second.close()
        assert sorted(e.event_id for e in up.events) == sorted(e.event_id for e in recorded)

    def test_strict_mode_raises(self):
        meter = Meter(sinks=[FlakySink(fail_times=1)], background=False, strict=True)
        with pytest.raises(ConnectionError):
            meter.record(input_tokens=1)


class TestLifecycle:
    def test_context_manager_flushes(self, tmp_path):
        path = tmp_path / "u.jsonl"
        with Meter(sinks=[JSONLSink(path)]) as meter:
            for i in range(100):
                meter.record(input_tokens=i)
        assert len(list(read_jsonl(path))) == 100

    async def test_aflush(self):
        sink = MemorySink()
        meter = Meter(sinks=[sink])
        for i in range(10):
            meter.record(input_tokens=i)
        assert await meter.aflush(30)
        assert len(sink.events) == 10
        async with meter:
            meter.record(input_tokens=1)
        assert len(sink.events) == 11

    def test_events_after_close_are_kept_not_lost(self, tmp_path):
        outbox = tmp_path / "ob.db"
        sink = FlakySink(name="s")
        meter = Meter(sinks=[sink], dispatch=DispatchConfig(outbox_path=outbox))
        meter.record(input_tokens=1)
        meter.close()
        late = meter.record(input_tokens=2)
        assert meter.stats().late == 1 and meter.stats().lost == 0
        again = Meter(sinks=[sink], dispatch=DispatchConfig(outbox_path=outbox))
        again.replay_outbox()
        again.close()
        assert late.event_id in {e.event_id for e in sink.events}

    def test_close_is_idempotent(self):
        meter = Meter(sinks=[MemorySink()])
        meter.record(input_tokens=1)
        assert meter.close() is True
        assert meter.close() is True

    def test_full_queue_blocks_briefly_then_spills_never_drops(self, tmp_path):
        slow = FlakySink(name="slow", delay=0.01)
        meter = Meter(sinks=[slow], dispatch=DispatchConfig(max_queue=5, max_batch=5, block_timeout=0.001,
                                                            outbox_path=tmp_path / "ob.db"))
        recorded = [meter.record(input_tokens=i) for i in range(200)]
        meter.flush(30)
        stats = meter.stats()
        assert stats.spilled > 0 and stats.lost == 0
        meter.replay_outbox()
        meter.close()
        assert {e.event_id for e in slow.events} == {e.event_id for e in recorded}

    async def test_full_queue_on_event_loop_spills_without_blocking(self, tmp_path):
        slow = FlakySink(name="slow", delay=0.2)
        meter = Meter(sinks=[slow], dispatch=DispatchConfig(max_queue=2, max_batch=2, block_timeout=5.0,
                                                            outbox_path=tmp_path / "ob.db"))
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(20):
            meter.record(input_tokens=i)
        assert loop.time() - start < 4.0  # the 5 s block_timeout was not applied on the loop thread
        assert meter.stats().spilled > 0
        meter.close()


def test_atexit_flush_in_a_short_script(tmp_path):
    """A script that records and exits without close() loses nothing."""
    import subprocess
    import sys

    path = tmp_path / "u.jsonl"
    code = (
        "from a2a_llm_tracker import Meter\n"
        "from a2a_llm_tracker.sinks.jsonl import JSONLSink\n"
        f"m = Meter(sinks=[JSONLSink({str(path)!r})])\n"
        "for i in range(500): m.record(input_tokens=i)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert len(list(read_jsonl(path))) == 500
