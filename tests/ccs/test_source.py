"""CCSSource: totals read back over the freeschema query API equal what was recorded."""

from __future__ import annotations

import json

import pytest

import a2a_llm_tracker
from a2a_llm_tracker import SinkError, UsageEvent
from a2a_llm_tracker.ccs_source import CCSSource

from .conftest import CLIENT_ID, FAST, SECRET, FakeCCS

EVENTS = [
    ("gpt-4o", "planner", 100, 20, 0.0125),
    ("gpt-4o", "writer", 50, 10, 0.00625),
    ("claude-x", "planner", 300, 40, 0.5),
    ("claude-x", None, 10, 2, None),  # unpriced: counted in tokens, never as $0
]


def _record(sink, app="demo-app"):
    events = [UsageEvent(provider="openai" if m.startswith("gpt") else "anthropic", model=m, agent_id=a,
                         input_tokens=i, output_tokens=o, total_tokens=i + o, cost_usd=c) for m, a, i, o, c in EVENTS]
    sink.write_many(events)
    assert sink.flush(10)
    return events


def _source(fake, **kw):
    return CCSSource(client_id=CLIENT_ID, client_secret=SECRET, server_url=fake.url, **kw)


async def test_totals_per_model_and_agent(fake, make_sink):
    _record(make_sink())
    source = _source(fake)
    assert await source.total_cost() == pytest.approx(0.0125 + 0.00625 + 0.5)
    assert await source.total_tokens() == 120 + 60 + 340 + 12
    by_model = await source.by_model()
    assert by_model["gpt-4o"].cost_usd == pytest.approx(0.01875) and by_model["gpt-4o"].events == 2
    assert by_model["claude-x"].total_tokens == 352 and by_model["claude-x"].unpriced == 1
    assert await source.cost_by_agent() == pytest.approx({"planner": 0.5125, "writer": 0.00625, None: 0.0})
    assert (await source.tokens_by_agent())["planner"] == 460
    assert await source.count_cost() == await source.total_cost()  # earlier releases' names
    queries = fake.requests_to("query")
    assert queries and all(q["headers"]["authorization"].startswith("Bearer ") for q in queries)


async def test_application_filter_and_dedupe_by_event_id(fake, make_sink, tmp_path):
    events = _record(make_sink())
    other = make_sink(application_name="other-app", storage_path=tmp_path / "other")
    other.write(UsageEvent(provider="openai", model="gpt-4o", input_tokens=1, output_tokens=1, total_tokens=2,
                           cost_usd=1.0))
    # the same event delivered again through a second sink (at-least-once upstream)
    again = make_sink(storage_path=tmp_path / "again", name="second")
    again.write(events[0])
    assert other.flush(10) and again.flush(10)
    assert await _source(fake).total_tokens() == 532 + 2  # event 0 once, both applications
    assert await _source(fake, application_name="demo-app").total_tokens() == 532
    assert await _source(fake, application_name="other-app").total_cost() == 1.0


async def test_global_meter_settings_are_reused(ccs_env):
    meter = await a2a_llm_tracker.init(CLIENT_ID, SECRET, "my-app", sink_options=FAST)
    event = meter.record(UsageEvent(provider="openai", model="gpt-4o", input_tokens=5, output_tokens=5))
    assert await meter.aflush(10)
    source = CCSSource(int(CLIENT_ID))  # as earlier releases' docs wrote it
    assert event.cost_usd is not None  # priced from the bundled catalog
    assert await source.total_cost() == pytest.approx(event.cost_usd)
    assert source.events_sync()[0]["model"] == "gpt-4o"


async def test_query_failure_is_an_error_not_zero(fake, make_sink):
    _record(make_sink())
    fake.set_mode("query", "500", times=1)
    with pytest.raises(SinkError, match="failed"):
        await _source(fake).total_cost()
    fake.set_mode("concept_bulk", "500", times=1)
    with pytest.raises(SinkError, match="incomplete"):
        await _source(fake).total_cost()
    assert await _source(fake).total_tokens() == 532  # healthy again


async def test_empty_is_zero(fake):
    source = _source(fake)
    assert await source.total_cost() == 0.0 and await source.by_model() == {}


async def test_a_new_server_on_a_reused_port_inherits_no_cached_ids(tmp_path):
    """A fresh server at an earlier server's URL (a reused port, as in CI; or a server restarted empty).

    The process-wide connection state (token, cached real ids of type/model/... concepts) used to
    outlive every sink, keyed by URL: the new sink then wrote links to the old server's ids, and
    ``GetConceptBulk`` answered the filtered source's read from that cache, so usages whose new ids
    matched old cached ids came back as type concepts and were dropped (CI: 192 instead of 532).
    """
    from a2a_llm_tracker.sinks.ccs import CCSSink

    def sink_for(srv, folder):
        return CCSSink("demo-app", client_id=CLIENT_ID, client_secret=SECRET, server_url=srv.url,
                       storage_path=tmp_path / folder, **FAST)

    first = FakeCCS(client_id=CLIENT_ID, client_secret=SECRET).start()
    sink = sink_for(first, "one")
    _record(sink)
    sink.close()
    first.stop()
    second = FakeCCS(client_id=CLIENT_ID, client_secret=SECRET, port=first.port).start()
    try:
        sink = sink_for(second, "two")
        _record(sink)
        assert await _source(second, application_name="demo-app").total_tokens() == 532
        usages = second.concepts_of_type("the_llm_usage")
        assert len(usages) == len(EVENTS)
        for usage in usages:  # every link the new sink wrote points at the new server's concepts
            data = json.loads(usage["characterValue"])
            assert second.concepts[usage["typeId"]]["characterValue"] == "the_llm_usage"
            models = [second.concepts[link["toTheConceptId"]]["characterValue"]
                      for link in second.links_from(usage["id"], "the_llm_usage_s_model")]
            assert models == [data["model"]]
    finally:
        sink.close()
        second.stop()
