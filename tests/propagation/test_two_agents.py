"""Two agent services on 127.0.0.1 over real HTTP: A calls B; both call a (mock) model; one store.

The session's total splits into A's and B's shares, and B's parent_call_id is a call_id A recorded.
"""

from __future__ import annotations

import sqlite3

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from a2a_llm_tracker import Meter, PricingRegistry, analyze_response, get_context, meter_context
from a2a_llm_tracker._propagation import new_span_id, new_trace_id, parse_traceparent
from a2a_llm_tracker.integrations.asgi import TrackerMiddleware
from a2a_llm_tracker.integrations.httpx import async_inject_hook, inject_hook
from a2a_llm_tracker.mock_provider import MockProvider
from a2a_llm_tracker.report import grand_total, summarize
from a2a_llm_tracker.sinks.sqlite import SQLiteSink

IN_PER_M, OUT_PER_M = 2.0, 8.0


def _pricing() -> PricingRegistry:
    pricing = PricingRegistry()
    pricing.set_price(provider="openai", model="gpt-4.1", input_per_million=IN_PER_M, output_per_million=OUT_PER_M)
    return pricing


def _chat(client: httpx.Client, base_url: str, text: str) -> dict:
    resp = client.post(f"{base_url}/chat/completions", headers={"authorization": "Bearer sk-test-not-a-key"},
                       json={"model": "gpt-4.1", "messages": [{"role": "user", "content": text}]})
    resp.raise_for_status()
    return resp.json()


def _agent_b(meter: Meter, llm_url: str) -> Starlette:
    def research(request: Request) -> JSONResponse:  # a sync endpoint: Starlette runs it in a thread pool
        with httpx.Client() as client:
            for question in ("find sources", "summarise the sources please"):
                analyze_response(_chat(client, llm_url, question), "openai", meter=meter)
        ctx = get_context()
        return JSONResponse({"call_id": ctx.call_id, "parent_call_id": ctx.parent_call_id})

    return Starlette(routes=[Route("/research", research, methods=["POST"])],
                     middleware=[Middleware(TrackerMiddleware, agent_id="agent-b")])


def _agent_a(meter: Meter, llm_url: str, b_url: str) -> Starlette:
    async def plan(request: Request) -> JSONResponse:
        async with httpx.AsyncClient() as llm:
            resp = await llm.post(f"{llm_url}/chat/completions",
                                  json={"model": "gpt-4.1", "messages": [{"role": "user", "content": "make a plan"}]})
        analyze_response(resp.json(), "openai", meter=meter)
        async with httpx.AsyncClient(event_hooks={"request": [async_inject_hook]}) as agents:
            b = (await agents.post(f"{b_url}/research", json={"task": "research"})).json()
        return JSONResponse({"call_id": get_context().call_id, "b": b})

    return Starlette(routes=[Route("/plan", plan, methods=["POST"])],
                     middleware=[Middleware(TrackerMiddleware, agent_id="agent-a", project="demo")])


def test_session_cost_rolls_up_across_two_agents(serve, tmp_path):
    db = tmp_path / "usage.db"
    meter_a = Meter(pricing=_pricing(), sinks=[SQLiteSink(db)])  # each agent has its own meter ...
    meter_b = Meter(pricing=_pricing(), sinks=[SQLiteSink(db)])  # ... and both write one store
    trace_id, client_call = new_trace_id(), new_span_id()
    with MockProvider() as llm, serve(_agent_b(meter_b, llm.base_url)) as b_url, \
            serve(_agent_a(meter_a, llm.base_url, b_url)) as a_url:
        with meter_context(session_id="sess-42", user_id="user-7", trace_id=trace_id, call_id=client_call), \
                httpx.Client(event_hooks={"request": [inject_hook]}) as client:
            answer = client.post(f"{a_url}/plan", json={}).json()
        billed = list(llm.billed)
    assert meter_a.flush(10) and meter_b.flush(10)
    meter_a.close()
    meter_b.close()

    # one report: the session's total, with each agent's share
    rows = summarize(db, by="agent_id", where={"session_id": "sess-42"})
    shares = {r.group["agent_id"]: r for r in rows}
    assert set(shares) == {"agent-a", "agent-b"}
    assert shares["agent-a"].calls == 1 and shares["agent-b"].calls == 2
    total = grand_total(rows)
    assert total.calls == 3 == len(billed)
    assert total.input_tokens == sum(b["input_tokens"] for b in billed)
    assert total.output_tokens == sum(b["output_tokens"] for b in billed)
    expected_cost = sum(b["input_tokens"] * IN_PER_M / 1e6 + b["output_tokens"] * OUT_PER_M / 1e6 for b in billed)
    assert total.cost_usd == pytest.approx(expected_cost)
    assert shares["agent-a"].cost_usd + shares["agent-b"].cost_usd == pytest.approx(expected_cost)
    assert 0 < shares["agent-a"].cost_usd < shares["agent-b"].cost_usd

    # the call tree across the two services
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        events = [dict(r) for r in conn.execute("SELECT * FROM usage_events ORDER BY ts")]
    a_events = [e for e in events if e["agent_id"] == "agent-a"]
    b_events = [e for e in events if e["agent_id"] == "agent-b"]
    a_call_ids = {e["call_id"] for e in a_events}
    assert all(e["parent_call_id"] in a_call_ids for e in b_events)  # B points into A
    assert {e["parent_call_id"] for e in a_events} == {client_call}  # A points at the caller
    assert {e["call_id"] for e in b_events} == {answer["b"]["call_id"]} and answer["b"]["call_id"] not in a_call_ids
    assert answer["b"]["parent_call_id"] == answer["call_id"] in a_call_ids
    assert {e["trace_id"] for e in events} == {trace_id}
    assert {e["user_id"] for e in events} == {"user-7"}
    assert {e["project"] for e in events} == {"demo"}  # A's default project travelled to B
    assert all('"agent_chain":["agent-a"]' in e["metadata"] for e in b_events)
    # the same query by hand: the tree is one join away
    with sqlite3.connect(db) as conn:
        linked = conn.execute(
            "SELECT count(*) FROM usage_events b JOIN (SELECT DISTINCT call_id FROM usage_events "
            "WHERE agent_id = 'agent-a') a ON b.parent_call_id = a.call_id WHERE b.agent_id = 'agent-b'").fetchone()[0]
    assert linked == 2
    # no secret reached the store
    assert b"sk-test-not-a-key" not in db.read_bytes()


def test_malformed_incoming_headers_are_ignored_over_http(serve, tmp_path):
    meter = Meter(pricing=_pricing(), sinks=[SQLiteSink(tmp_path / "b.db")])
    with MockProvider() as llm, serve(_agent_b(meter, llm.base_url)) as b_url, httpx.Client() as client:
        bad = [{"traceparent": "00-zzzz-not-valid-01", "baggage": "a2a.session_id=%FF%FE,;;=,a2a.user_id"},
               {"traceparent": "00-" + "0" * 32 + "-" + "0" * 16 + "-01", "baggage": "x" * 20_000},
               {"traceparent": "ff-" + "a" * 32 + "-" + "b" * 16 + "-01", "baggage": "a2a.session_id=ok%0Anew"}]
        for headers in bad:
            resp = client.post(f"{b_url}/research", headers=headers, json={})
            assert resp.status_code == 200
            body = resp.json()
            assert body["parent_call_id"] is None and len(body["call_id"]) == 16
        # and a good one still works after the bad ones
        resp = client.post(f"{b_url}/research", json={},
                           headers={"traceparent": f"00-{'a' * 32}-{'b' * 16}-01", "baggage": "a2a.session_id=s-ok"})
        assert resp.json()["parent_call_id"] == "b" * 16
    assert meter.flush(10)
    meter.close()
    rows = summarize(tmp_path / "b.db", by="session_id")
    assert {r.group["session_id"]: r.calls for r in rows} == {None: 6, "s-ok": 2}


def test_traceparent_reaches_the_wire(serve):
    """What the httpx hook sends is a valid W3C traceparent carrying the tracker's trace id."""
    seen = {}

    async def echo(request: Request) -> JSONResponse:
        seen.update(request.headers)
        return JSONResponse({})

    trace_id = new_trace_id()
    with serve(Starlette(routes=[Route("/", echo, methods=["GET"])])) as url, \
            meter_context(trace_id=trace_id, session_id="s"), httpx.Client(event_hooks={"request": [inject_hook]}) as c:
        c.get(url + "/")
    assert parse_traceparent(seen["traceparent"])[0] == trace_id
    assert "a2a.session_id=s" in seen["baggage"]
