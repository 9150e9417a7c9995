"""Ambient attribution: who is making the LLM calls in this block of code.

One :class:`~contextvars.ContextVar` holds a frozen :class:`TrackContext`; every change makes a
new one (copy-on-write), so asyncio tasks and threads that copied the context never see each
other's changes. ``meter_context`` nests: an inner block inherits what it does not set.

Threads do not inherit context by default. Use :func:`bind_context` (wrap a callable) or
:class:`ContextThreadPoolExecutor` (submit with the caller's context) to carry it into a pool.
"""

from __future__ import annotations as _annotations

import contextvars
import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any, ParamSpec, TypeVar

__all__ = [
    "CONTEXT_FIELDS",
    "ContextThreadPoolExecutor",
    "TrackContext",
    "adapter_scope",
    "bind_context",
    "current_adapter",
    "export_suppressed",
    "get_context",
    "meter_context",
    "reset_context",
    "set_context",
    "suppress_tracking",
]

P = ParamSpec("P")
R = TypeVar("R")

#: The attribution fields a context can carry (all optional strings).
CONTEXT_FIELDS = ("project", "agent_id", "user_id", "session_id", "trace_id", "call_id", "parent_call_id")

_EMPTY_METADATA: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class TrackContext:
    """The attribution in force: immutable; ``meter_context`` makes a new one per block."""

    project: str | None = None
    agent_id: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    trace_id: str | None = None
    call_id: str | None = None
    parent_call_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=lambda: _EMPTY_METADATA)

    def merged(self, fields_: Mapping[str, Any], metadata: Mapping[str, Any] | None = None) -> TrackContext:
        """A new context: *fields_* (None values are ignored) over this one, metadata merged."""
        updates = {k: v for k, v in fields_.items() if v is not None}
        unknown = set(updates) - set(CONTEXT_FIELDS)
        if unknown:
            raise TypeError(f"unknown context field(s): {', '.join(sorted(unknown))}; "
                            f"expected any of {', '.join(CONTEXT_FIELDS)}")
        for key, value in updates.items():
            if not isinstance(value, str):
                raise TypeError(f"context field {key} must be a str, got {type(value).__name__}")
        if metadata:
            updates["metadata"] = MappingProxyType({**self.metadata, **metadata})
        return replace(self, **updates) if updates else self

    def as_dict(self) -> dict[str, Any]:
        """The set fields as a plain dict (metadata included only when non-empty)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "metadata":
                if value:
                    out["metadata"] = dict(value)
            elif value is not None:
                out[f.name] = value
        return out


_EMPTY = TrackContext()
_CURRENT: contextvars.ContextVar[TrackContext] = contextvars.ContextVar("a2a_llm_tracker.context", default=_EMPTY)
# Set by the outermost adapter that meters a call, so inner layers (LiteLLM under LangChain) skip it.
_ADAPTER: contextvars.ContextVar[adapter_scope | None] = contextvars.ContextVar("a2a_llm_tracker.adapter", default=None)
# Set while sinks export, so LLM/HTTP calls a sink makes are not tracked (no feedback loops).
_SUPPRESS: contextvars.ContextVar[bool] = contextvars.ContextVar("a2a_llm_tracker.suppress", default=False)


def get_context() -> TrackContext:
    """The attribution in force in this task or thread."""
    return _CURRENT.get()


def set_context(**fields_: Any) -> contextvars.Token[TrackContext]:
    """Merge *fields_* into the current context until :func:`reset_context` (or forever).

    Unknown keyword arguments go to ``metadata``. Returns a token for :func:`reset_context`.
    """
    known = {k: fields_.pop(k) for k in list(fields_) if k in CONTEXT_FIELDS}
    return _CURRENT.set(_CURRENT.get().merged(known, fields_))


def reset_context(token: contextvars.Token[TrackContext]) -> None:
    """Restore the context that was in force before the matching :func:`set_context`."""
    _CURRENT.reset(token)


class meter_context:  # noqa: N801 - used like a function, as contextlib's helpers are
    """Attribute every LLM call in a block (or function) to an agent, session, user, trace.

    Nests: an inner block inherits what it does not set, and the outer context is restored
    on exit. Works as ``with``, ``async with`` and as a decorator of sync or async functions.
    Extra keyword arguments are stored as event metadata::

        with meter_context(agent_id="planner", session_id="s-1", user_id="u-1", team="blue"):
            llm.completion(...)
    """

    __slots__ = ("_fields", "_metadata", "_tokens")

    def __init__(self, *, project: str | None = None, agent_id: str | None = None, user_id: str | None = None,
                 session_id: str | None = None, trace_id: str | None = None, call_id: str | None = None,
                 parent_call_id: str | None = None, **metadata: Any) -> None:
        self._fields = {"project": project, "agent_id": agent_id, "user_id": user_id, "session_id": session_id,
                        "trace_id": trace_id, "call_id": call_id, "parent_call_id": parent_call_id}
        self._metadata = metadata
        _EMPTY.merged(self._fields, metadata)  # validate now, not on entry
        self._tokens: list[contextvars.Token[TrackContext]] = []

    def __enter__(self) -> TrackContext:
        new = _CURRENT.get().merged(self._fields, self._metadata)
        self._tokens.append(_CURRENT.set(new))
        return new

    def __exit__(self, *exc_info: object) -> None:
        _CURRENT.reset(self._tokens.pop())

    async def __aenter__(self) -> TrackContext:
        return self.__enter__()

    async def __aexit__(self, *exc_info: object) -> None:
        self.__exit__(*exc_info)

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                with meter_context(**self._fields, **self._metadata):
                    return await func(*args, **kwargs)  # type: ignore[misc]
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with meter_context(**self._fields, **self._metadata):
                return func(*args, **kwargs)
        return wrapper


def bind_context(func: Callable[P, R]) -> Callable[P, R]:
    """Wrap *func* so it runs in the context of the caller of ``bind_context`` (for threads)::

        pool.submit(bind_context(work), item)
    """
    ctx = contextvars.copy_context()

    @functools.wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return ctx.copy().run(func, *args, **kwargs)

    return run


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A ThreadPoolExecutor whose tasks run in the submitting thread's context."""

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:  # type: ignore[override]
        ctx = contextvars.copy_context()
        return super().submit(ctx.run, fn, *args, **kwargs)


def current_adapter() -> str | None:
    """The framework whose adapter is already metering the call in progress, if any."""
    claim = _ADAPTER.get()
    return claim.framework if claim is not None and claim.active else None


class adapter_scope:  # noqa: N801 - used like a function, as contextlib's helpers are
    """Claim the call in progress for *framework*'s adapter.

    ``with adapter_scope("langchain") as outermost:`` gives True when this adapter is the
    outermost one (it should record), False when an outer adapter already meters the call (an
    inner one must skip it, or it counts twice). A class, not a generator: it sits on every call.

    The scope is itself the claim other adapters see. Ending it works from any context: callback
    frameworks (LangChain async, LlamaIndex futures) end a call in a child task or thread, where
    resetting the ContextVar is impossible, so the claim is switched off (``active``) instead.
    """

    __slots__ = ("_token", "active", "framework")

    def __init__(self, framework: str) -> None:
        self.framework = framework
        self.active = False
        self._token: contextvars.Token[adapter_scope | None] | None = None

    def __enter__(self) -> bool:
        current = _ADAPTER.get()
        if current is not None and current.active:
            return False
        self.active = True
        self._token = _ADAPTER.set(self)
        return True

    def __exit__(self, *exc_info: object) -> None:
        token = self._token
        if token is None:
            return
        self.active = False
        self._token = None
        try:
            _ADAPTER.reset(token)
        except ValueError:
            pass  # exited from another context: the claim is off, which is all that matters


def export_suppressed() -> bool:
    """True while the tracker itself is exporting: adapters ignore calls made then."""
    return _SUPPRESS.get()


@contextmanager
def suppress_tracking() -> Iterator[None]:
    """Within the block, adapters do not record (used around sink exports)."""
    token = _SUPPRESS.set(True)
    try:
        yield
    finally:
        _SUPPRESS.reset(token)
