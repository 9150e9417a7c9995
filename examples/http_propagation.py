"""Two agents over HTTP: the planner calls a researcher service; the session's cost rolls up across both.

The researcher is a Starlette app (served by uvicorn on 127.0.0.1) with ``TrackerMiddleware``; the
planner calls it with an ``httpx`` client whose request hook adds the tracker context as W3C
``traceparent`` + ``baggage`` headers. Each agent has its own ``Meter`` (as two processes would)
writing to one SQLite store; both make their model calls through the LiteLLM wrapper to the
built-in mock provider.

Afterwards one report by session shows the whole conversation, and a report by agent splits it;
the researcher's events carry the planner's trace id and point at the planner's call.

Run: python examples/http_propagation.py   (offline; exits non-zero if a check fails)
"""
# requires: a2a_llm_tracker.integrations.asgi, a2a_llm_tracker.integrations.httpx, a2a_llm_tracker.integrations.litellm, litellm, starlette, uvicorn, httpx

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # offline: LiteLLM's bundled model map

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from a2a_llm_tracker import Meter, PricingRegistry, meter_context  # noqa: E402
from a2a_llm_tracker.integrations.asgi import TrackerMiddleware  # noqa: E402
from a2a_llm_tracker.integrations.httpx import inject_hook  # noqa: E402
from a2a_llm_tracker.integrations.litellm import LiteLLM  # noqa: E402
from a2a_llm_tracker.mock_provider import MockProvider  # noqa: E402
from a2a_llm_tracker.report import summarize  # noqa: E402
from a2a_llm_tracker.sinks.sqlite import SQLiteSink, read_sqlite  # noqa: E402

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"  # a W3C trace id (32 hex digits)


def pricing() -> PricingRegistry:
    registry = PricingRegistry()
    registry.set_price("openai", "gpt-4.1", 2.0, 8.0)
    registry.set_price("openai", "gpt-4.1-mini", 0.40, 1.60)
    return registry


def researcher_app(llm: LiteLLM, mock: dict) -> Starlette:
    async def research(request: Request) -> JSONResponse:
        question = (await request.json())["question"]
        answers = []
        for step in ("find sources for", "summarise the sources on"):
            resp = await llm.acompletion(model="openai/gpt-4.1-mini",
                                         messages=[{"role": "user", "content": f"{step} {question}"}], **mock)
            answers.append(resp.choices[0].message.content)
        return JSONResponse({"notes": " ".join(answers)})

    return Starlette(routes=[Route("/research", research, methods=["POST"])],
                     middleware=[Middleware(TrackerMiddleware, agent_id="researcher")])


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Serve *app* on a free 127.0.0.1 port in a thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def main() -> None:
    with MockProvider() as provider:
        mock = {"api_base": provider.base_url, "api_key": "mock-key"}
        researcher_meter = Meter(pricing=pricing(), sinks=[SQLiteSink("usage.db")], project="newsroom")
        planner_meter = Meter(pricing=pricing(), sinks=[SQLiteSink("usage.db")], project="newsroom")
        planner_llm = LiteLLM(meter=planner_meter)

        with serve(researcher_app(LiteLLM(meter=researcher_meter), mock)) as researcher_url:
            with meter_context(agent_id="planner", session_id="s-77", user_id="frank", trace_id=TRACE_ID):
                with meter_context(call_id="plan-step-1"):
                    planner_llm.completion(model="openai/gpt-4.1",
                                           messages=[{"role": "user", "content": "Plan an article on tides"}], **mock)
                    with httpx.Client(event_hooks={"request": [inject_hook]}) as client:
                        notes = client.post(f"{researcher_url}/research", json={"question": "tidal power"},
                                            timeout=30).json()["notes"]
                planner_llm.completion(model="openai/gpt-4.1",
                                       messages=[{"role": "user", "content": f"Write it up: {notes}"}], **mock)
        planner_meter.close()
        researcher_meter.close()
        billed = len(provider.billed)

    events = list(read_sqlite("usage.db"))
    assert len(events) == 4 == billed, events
    researcher = [e for e in events if e.agent_id == "researcher"]
    planner = [e for e in events if e.agent_id == "planner"]
    assert len(researcher) == 2 and len(planner) == 2, [e.agent_id for e in events]
    # the researcher's calls carry the planner's session, user, project and trace ...
    for event in researcher:
        assert (event.session_id, event.user_id, event.project) == ("s-77", "frank", "newsroom")
        assert event.trace_id == TRACE_ID
        assert event.parent_call_id == "plan-step-1"  # ... and point at the planner's call
        assert event.metadata.get("agent_chain") == ["planner"], event.metadata
    assert planner[0].call_id == "plan-step-1"

    (session,) = summarize("usage.db", by="session_id")
    by_agent = {row.group["agent_id"]: row for row in summarize("usage.db", by="agent_id")}
    assert session.group == {"session_id": "s-77"} and session.calls == 4
    assert abs(session.cost_usd - (by_agent["planner"].cost_usd + by_agent["researcher"].cost_usd)) < 1e-12
    print(f"session s-77: {session.calls} calls, ${session.cost_usd:.6f} = planner "
          f"${by_agent['planner'].cost_usd:.6f} + researcher ${by_agent['researcher'].cost_usd:.6f}")
    print("OK")


if __name__ == "__main__":
    main()
