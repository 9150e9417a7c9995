"""httpx event hooks that add the tracker context (``traceparent`` + ``baggage``) to every request.

Example::

    import httpx
    from a2a_llm_tracker.integrations.httpx import async_inject_hook, inject_hook

    client = httpx.Client(event_hooks={"request": [inject_hook]})
    aclient = httpx.AsyncClient(event_hooks={"request": [async_inject_hook]})

httpx calls request hooks in the caller's thread or task, so the hook sees the caller's
:func:`~a2a_llm_tracker.meter_context`. The hooks never raise; this module does not import httpx.
"""

from __future__ import annotations as _annotations

from typing import Any

from .._propagation import inject_context

__all__ = ["async_inject_hook", "inject_hook"]


def inject_hook(request: Any) -> None:
    """A sync ``httpx.Client`` request hook: add the current tracker context to ``request.headers``."""
    inject_context(request.headers)


async def async_inject_hook(request: Any) -> None:
    """An ``httpx.AsyncClient`` request hook: add the current tracker context to ``request.headers``."""
    inject_context(request.headers)
