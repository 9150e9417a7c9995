"""TrackerMiddleware as a plain ASGI wrapper: which scopes it touches and what it opens."""

from __future__ import annotations

from a2a_llm_tracker import get_context
from a2a_llm_tracker.integrations.asgi import TrackerMiddleware

TP = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _app(seen: list):
    async def app(scope, receive, send):
        seen.append(get_context())
    return app


async def _noop_receive():
    return {"type": "http.request"}


async def _noop_send(message):
    pass


async def test_http_scope_opens_the_context_and_restores_it():
    seen: list = []
    mw = TrackerMiddleware(_app(seen), agent_id="svc", project="fallback", team="red")
    await mw({"type": "http", "headers": [(b"traceparent", TP), (b"baggage", b"a2a.session_id=s1")]},
             _noop_receive, _noop_send)
    (ctx,) = seen
    assert ctx.agent_id == "svc" and ctx.session_id == "s1" and ctx.project == "fallback"
    assert ctx.parent_call_id == "00f067aa0ba902b7" and ctx.metadata["team"] == "red"
    assert get_context().session_id is None  # restored after the request


async def test_headers_project_wins_over_the_default():
    seen: list = []
    await TrackerMiddleware(_app(seen), project="fallback")(
        {"type": "websocket", "headers": [(b"baggage", b"a2a.project=callers")]}, _noop_receive, _noop_send)
    assert seen[0].project == "callers"


async def test_lifespan_passes_through_untouched():
    seen: list = []
    await TrackerMiddleware(_app(seen), agent_id="svc")({"type": "lifespan"}, _noop_receive, _noop_send)
    assert seen[0].agent_id is None and seen[0].call_id is None


async def test_each_request_gets_its_own_call_id():
    seen: list = []
    mw = TrackerMiddleware(_app(seen))
    for _ in range(3):
        await mw({"type": "http", "headers": []}, _noop_receive, _noop_send)
    assert len({c.call_id for c in seen}) == 3 and all(len(c.call_id) == 16 for c in seen)
