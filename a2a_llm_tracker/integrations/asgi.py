"""TrackerMiddleware: a pure ASGI middleware (Starlette, FastAPI, any ASGI app) that opens a
:func:`~a2a_llm_tracker.meter_context` per request from the incoming ``traceparent``/``baggage``.

Example::

    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from a2a_llm_tracker.integrations.asgi import TrackerMiddleware

    app = Starlette(routes=routes, middleware=[Middleware(TrackerMiddleware, agent_id="researcher")])
    # FastAPI: app.add_middleware(TrackerMiddleware, agent_id="researcher")

Every LLM call made while handling the request (in the endpoint, in sync endpoints run in a thread
pool, in background tasks) is attributed to the caller's session, user, project and trace, with
``parent_call_id`` = the caller's call and a fresh ``call_id`` for this request. It imports no
framework.
"""

from __future__ import annotations as _annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .._propagation import extract_context

__all__ = ["TrackerMiddleware"]

logger = logging.getLogger("a2a_llm_tracker")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class TrackerMiddleware:
    """Open a tracker context for each HTTP or WebSocket request from its tracing headers.

    Args:
        app: the ASGI application to wrap.
        agent_id: this service's agent id (wins over anything in the headers).
        project: a project for requests whose headers carry none.
        new_call_id: give each request a fresh ``call_id`` (default True).
        **fields: further context fields (``user_id`` ...) or metadata for every request; they
            win over the headers.

    .. versionadded:: 0.1
    """

    def __init__(self, app: ASGIApp, *, agent_id: str | None = None, project: str | None = None,
                 new_call_id: bool = True, **fields: Any) -> None:
        self.app = app
        self.agent_id = agent_id
        self.project = project
        self.new_call_id = new_call_id
        self.fields = fields

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            ctx = extract_context(scope.get("headers") or [], new_call_id=self.new_call_id,
                                  defaults={"project": self.project}, agent_id=self.agent_id, **self.fields)
        except Exception:  # tracking never breaks the request
            logger.warning("a2a_llm_tracker: TrackerMiddleware could not read the request context", exc_info=True)
            await self.app(scope, receive, send)
            return
        with ctx:
            await self.app(scope, receive, send)

