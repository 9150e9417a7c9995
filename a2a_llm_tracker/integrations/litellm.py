"""LiteLLM integration: the :class:`LiteLLM` wrapper and the :class:`TrackerLogger` callback.

Two ways to meter LiteLLM calls; use either, or both (each call is still counted once):

* :class:`LiteLLM` wraps ``litellm.completion`` & co. It records from the objects LiteLLM
  returns (``response.usage``, the final stream chunk), in the caller's own context, so it needs
  no callback, no flush and no ContextVar propagation. It asks for stream usage
  (``stream_options={"include_usage": True}``) unless the caller set ``stream_options``.
* :class:`TrackerLogger` is a LiteLLM ``CustomLogger`` for code that calls ``litellm`` directly:
  ``TrackerLogger(meter).install()`` (or ``litellm.callbacks = [TrackerLogger(meter)]``).

Example::

    from a2a_llm_tracker.integrations.litellm import LiteLLM

    llm = LiteLLM(meter=meter)
    response = llm.completion(model="openai/gpt-4.1", messages=[{"role": "user", "content": "Hi"}])
    for chunk in llm.completion(model="openai/gpt-4.1", messages=messages, stream=True):
        ...

.. versionadded:: 0.1
"""

from __future__ import annotations as _annotations

import asyncio
import contextvars
import logging
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from .._context import (
    _ADAPTER,
    _CURRENT,
    _SUPPRESS,
    CONTEXT_FIELDS,
    TrackContext,
    adapter_scope,
    current_adapter,
    export_suppressed,
    get_context,
)
from .._context import _EMPTY as _EMPTY_CONTEXT
from .._events import Usage, UsageEvent, event_from
from .._meter import Meter
from .._redact import scrub_secrets
from .._setup import get_meter, is_initialized
from ..exceptions import AdapterUnavailable, ConfigurationError, TrackerNotInitializedError
from ._litellm_usage import field, litellm_usage, litellm_usage_cost

try:
    import litellm
    from litellm.integrations.custom_logger import CustomLogger
except ImportError as _exc:  # pragma: no cover - exercised only without the extra
    raise AdapterUnavailable(
        "the LiteLLM integration needs litellm: pip install a2a-llm-tracker[litellm]") from _exc

__all__ = ["FRAMEWORK", "LiteLLM", "TrackerLogger", "litellm_usage"]

logger = logging.getLogger("a2a_llm_tracker")

#: The ``framework`` value of events recorded by this integration.
FRAMEWORK = "litellm"
#: Key in litellm's ``metadata`` under which the tracker reads attribution and marks its calls.
METADATA_KEY = "a2a_tracker"
# TrackerLogger instances alive in this process (the wrapper marks its calls only when one exists)
_live_loggers = 0  # TrackerLogger instances alive (a plain int: the wrapper checks it on every call)


def _logger_gone() -> None:
    global _live_loggers
    _live_loggers -= 1
_ATTRIBUTION = ("agent_id", "session_id", "user_id", "trace_id", "project", "call_id", "parent_call_id")
_OPERATIONS = {
    "completion": "chat", "acompletion": "chat", "embedding": "embedding", "aembedding": "embedding",
    "image_generation": "image", "aimage_generation": "image", "responses": "responses",
    "aresponses": "responses", "text_completion": "completion", "atext_completion": "completion",
}
_RESPONSES_END = frozenset({"response.completed", "response.incomplete", "response.failed"})


# ------------------------------------------------------------------------------------------------
# shared helpers
# ------------------------------------------------------------------------------------------------

def _explicit_attribution(metadata: Any) -> dict[str, str]:
    """Attribution the caller put in litellm's ``metadata`` (namespaced ``a2a_tracker`` first)."""
    if metadata is None or not isinstance(metadata, Mapping):
        return {}
    ns = metadata.get(METADATA_KEY)
    ns = ns if isinstance(ns, Mapping) else {}
    out: dict[str, str] = {}
    for name in _ATTRIBUTION:
        value = ns.get(name) or metadata.get(name)
        if isinstance(value, str) and value:
            out[name] = value
    return out


def _headers_request_id(headers: Any) -> str | None:
    if not isinstance(headers, Mapping):
        return None
    for key in ("llm_provider-x-request-id", "llm_provider-request-id", "x-request-id", "request-id"):
        value = headers.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def _finish_reason(obj: Any) -> str | None:
    choices = field(obj, "choices")
    if choices:
        reason = field(choices[0], "finish_reason")
        return reason if isinstance(reason, str) else None
    return None


def _check_meter(owner: str, meter: Any) -> None:
    if meter is not None and not isinstance(meter, Meter):
        raise ConfigurationError(f"{owner}(meter=...) takes a Meter or None, got {type(meter).__name__}")


def _usage_fields(usage: Usage | None) -> dict[str, Any]:
    if usage is None:
        return {"accuracy": "unknown"}
    return usage.event_fields()


def _error_fields(exc: BaseException) -> dict[str, Any]:
    return {"status": "error", "error_type": type(exc).__name__, "error_message": scrub_secrets(str(exc))[:2000]}


def _report_failure(meter: Meter | None, what: str) -> None:
    if meter is not None and meter.strict:
        raise
    logger.warning("a2a_llm_tracker: LiteLLM %s failed; the call is unaffected", what, exc_info=True)


_provider_cache: dict[tuple[Any, ...], str | None] = {}


def _provider_for(model: Any, custom_llm_provider: Any, api_base: Any) -> str | None:
    """litellm's provider for *model* (cached; None when litellm cannot tell)."""
    key = (model, custom_llm_provider, api_base is None)
    try:
        return _provider_cache[key]
    except KeyError:
        pass
    provider: str | None = custom_llm_provider if isinstance(custom_llm_provider, str) else None
    if provider is None and isinstance(model, str):
        try:
            provider = litellm.get_llm_provider(model=model, api_base=api_base)[1]
        except Exception:  # noqa: BLE001 - unknown model strings raise in litellm
            provider = model.split("/", 1)[0] if "/" in model else None
    if len(_provider_cache) > 4096:
        _provider_cache.clear()
    _provider_cache[key] = provider
    return provider


# ------------------------------------------------------------------------------------------------
# the wrapper
# ------------------------------------------------------------------------------------------------

class _Call:
    """What the wrapper knows about one call before it is made."""

    __slots__ = ("attribution", "context", "injected", "keep_raw", "kwargs", "meter", "model", "operation",
                 "provider_hint", "started", "stream")

    def __init__(self, meter: Meter, operation: str, model: Any, kwargs: dict[str, Any], stream: bool,
                 attribution: dict[str, str], injected: bool, context: contextvars.Context | None) -> None:
        self.meter = meter
        self.operation = operation
        self.model = model if isinstance(model, str) else None
        self.kwargs = kwargs
        self.stream = stream
        self.attribution = attribution
        self.injected = injected
        self.context = context
        self.provider_hint = kwargs.get("custom_llm_provider")
        self.keep_raw = True
        self.started = time.perf_counter()

    def provider(self, found: Any = None) -> str | None:
        if isinstance(found, str) and found:
            return found
        return _provider_for(self.model, self.provider_hint, self.kwargs.get("api_base"))

    def base_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"framework": FRAMEWORK, "operation": self.operation, "model": self.model,
                                  "stream": self.stream}
        fields.update(self.attribution)
        return fields

    def record(self, fields: dict[str, Any], complete: Callable[[dict[str, Any]], None] | None = None) -> None:
        # Streams end elsewhere (another task, a finalizer): attribute with the caller's context.
        context = None if self.context is None else self.context.get(_CURRENT, _EMPTY_CONTEXT)
        self.meter._record_later(fields, context, complete)


def _rejects_stream_options(exc: BaseException) -> bool:
    status = getattr(exc, "status_code", None)
    return status in (400, 422) and "stream_options" in str(exc)


class LiteLLM:
    """LiteLLM with usage tracking: ``completion``, ``acompletion``, ``embedding``, ``responses`` ...

    Every keyword argument goes to litellm unchanged (the caller's dicts are never mutated) and
    the return value is litellm's own object; a stream yields litellm's own chunks. One event is
    recorded per call: after the response, or when a stream ends, is closed, abandoned or raises.

    Args:
        meter: where events go; None follows the global meter (``init_sync()`` / ``init()``).
        include_usage: ask for stream usage with ``stream_options={"include_usage": True}`` when the
            caller did not set ``stream_options`` (the usage-only chunk this adds is not yielded).
        raw_usage: keep litellm's usage object as a dict in ``event.raw_usage`` (for audit). False
            saves about a third of the wrapper's own per-call cost.

    Raises:
        TrackerNotInitializedError: *meter* is None and there is no global meter.

    .. versionadded:: 0.1
    """

    def __init__(self, meter: Meter | None = None, *, include_usage: bool = True, raw_usage: bool = True) -> None:
        _check_meter("LiteLLM", meter)
        if meter is None and not is_initialized():
            raise TrackerNotInitializedError(
                "LiteLLM(meter=None) follows the global meter, but there is none: call "
                "a2a_llm_tracker.init_sync(...) or await a2a_llm_tracker.init(...) first, or pass meter=Meter(...)")
        self._meter = meter
        self.include_usage = include_usage
        self.raw_usage = raw_usage
        self._no_stream_options: set[tuple[Any, Any]] = set()

    @property
    def meter(self) -> Meter:
        """The meter this wrapper records into."""
        return self._meter if self._meter is not None else get_meter()

    # -- public API: one line each ------------------------------------------------------------------
    def completion(self, *args: Any, **kwargs: Any) -> Any:
        """``litellm.completion`` (``stream=True`` returns an iterator of litellm chunks)."""
        return self._call(litellm.completion, "chat", args, kwargs)

    async def acompletion(self, *args: Any, **kwargs: Any) -> Any:
        """``litellm.acompletion`` (``stream=True`` returns an async iterator of litellm chunks)."""
        return await self._acall(litellm.acompletion, "chat", args, kwargs)

    def embedding(self, *args: Any, **kwargs: Any) -> Any:
        """``litellm.embedding``."""
        return self._call(litellm.embedding, "embedding", args, kwargs)

    async def aembedding(self, *args: Any, **kwargs: Any) -> Any:
        """``litellm.aembedding``."""
        return await self._acall(litellm.aembedding, "embedding", args, kwargs)

    def image_generation(self, *args: Any, **kwargs: Any) -> Any:
        """``litellm.image_generation``."""
        return self._call(litellm.image_generation, "image", args, kwargs)

    async def aimage_generation(self, *args: Any, **kwargs: Any) -> Any:
        """``litellm.aimage_generation``."""
        return await self._acall(litellm.aimage_generation, "image", args, kwargs)

    def responses(self, *args: Any, **kwargs: Any) -> Any:
        """``litellm.responses`` (OpenAI Responses API; ``stream=True`` yields litellm's events)."""
        return self._call(litellm.responses, "responses", args, kwargs)

    async def aresponses(self, *args: Any, **kwargs: Any) -> Any:
        """``litellm.aresponses``."""
        return await self._acall(litellm.aresponses, "responses", args, kwargs)

    # -- the machinery ----------------------------------------------------------------------------------
    def _resolve(self) -> Meter | None:
        if self._meter is not None:
            return self._meter
        try:
            return get_meter()
        except TrackerNotInitializedError:
            logger.warning("a2a_llm_tracker: no global meter; LiteLLM call not tracked")
            return None

    def _prepare(self, meter: Meter, operation: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Call:
        model = args[0] if args else kwargs.get("model")
        metadata = kwargs.get("metadata")
        attribution = _explicit_attribution(metadata)
        if meter._budgets:
            meter.check_budgets(**attribution)
        stream = kwargs.get("stream") is True
        # *kwargs* is this call's own dict (``completion(**kwargs)`` made it): adding keys to it never
        # touches the caller's objects (their metadata dict is copied before it is marked).
        kw = kwargs
        injected = False
        if operation != "responses":
            if _live_loggers:
                # Mark the call so a TrackerLogger skips it; a fresh dict, the caller's is not touched.
                # Only when a logger exists: litellm's metadata handling costs ~3 % of a mocked call.
                md = dict(metadata) if isinstance(metadata, Mapping) else {}
                ns = md.get(METADATA_KEY)
                md[METADATA_KEY] = {**(ns if isinstance(ns, Mapping) else {}), "recorded_by": "wrapper"}
                kw["metadata"] = md
            if (stream and operation == "chat" and self.include_usage and kwargs.get("stream_options") is None
                    and (model, kwargs.get("api_base")) not in self._no_stream_options):
                kw["stream_options"] = {"include_usage": True}
                injected = True
        context = contextvars.copy_context() if stream else None
        call = _Call(meter, operation, model, kw, stream, attribution, injected, context)
        call.keep_raw = self.raw_usage
        return call

    def _meter_for_call(self) -> Meter | None:
        """The meter to record this call into; None when it is untracked, the tracker's own, or an
        outer adapter (LangChain, ...) meters it."""
        meter = self._meter if self._meter is not None else self._resolve()
        outer = _ADAPTER.get()
        if meter is None or _SUPPRESS.get() or (outer is not None and outer.active):
            return None
        return meter

    def _start(self, meter: Meter, operation: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Call | None:
        """The call's bookkeeping; None if preparing failed (the call then runs untracked). Budgets raise."""
        try:
            return self._prepare(meter, operation, args, kwargs)
        except Exception as exc:
            if type(exc).__name__ == "BudgetExceededError":
                raise
            _report_failure(meter, "preparation")
            return None

    def _call(self, fn: Callable[..., Any], operation: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        meter = self._meter_for_call()
        if meter is None:
            return fn(*args, **kwargs)
        if not _live_loggers:
            return self._metered(meter, fn, operation, args, kwargs)
        with adapter_scope(FRAMEWORK):  # a TrackerLogger's hooks see the claim and skip the call
            return self._metered(meter, fn, operation, args, kwargs)

    def _metered(self, meter: Meter, fn: Callable[..., Any], operation: str, args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> Any:
        call = self._start(meter, operation, args, kwargs)
        if call is None:
            return fn(*args, **kwargs)
        try:
            result = fn(*args, **call.kwargs)
        except Exception as exc:
            if not (call.injected and _rejects_stream_options(exc)):
                self._record_error(call, exc)
                raise
            result = self._retry_without_stream_options(call, fn, args)
        return self._after(call, result, is_async=False)

    async def _acall(self, fn: Callable[..., Any], operation: str, args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> Any:
        meter = self._meter_for_call()
        if meter is None:
            return await fn(*args, **kwargs)
        if not _live_loggers:
            return await self._ametered(meter, fn, operation, args, kwargs)
        with adapter_scope(FRAMEWORK):
            return await self._ametered(meter, fn, operation, args, kwargs)

    async def _ametered(self, meter: Meter, fn: Callable[..., Any], operation: str, args: tuple[Any, ...],
                        kwargs: dict[str, Any]) -> Any:
        call = self._start(meter, operation, args, kwargs)
        if call is None:
            return await fn(*args, **kwargs)
        try:
            result = await fn(*args, **call.kwargs)
        except Exception as exc:
            if not (call.injected and _rejects_stream_options(exc)):
                self._record_error(call, exc)
                raise
            self._forget_stream_options(call)
            try:
                result = await fn(*args, **call.kwargs)
            except Exception as exc2:
                self._record_error(call, exc2)
                raise
        return self._after(call, result, is_async=True)

    def _forget_stream_options(self, call: _Call) -> None:
        # The endpoint rejects stream_options: remember it and call once more without them.
        logger.info("a2a_llm_tracker: %s rejected stream_options; retrying without (usage unknown)", call.model)
        self._no_stream_options.add((call.model, call.kwargs.get("api_base")))
        call.kwargs = {k: v for k, v in call.kwargs.items() if k != "stream_options"}
        call.injected = False

    def _retry_without_stream_options(self, call: _Call, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        self._forget_stream_options(call)
        try:
            return fn(*args, **call.kwargs)
        except Exception as exc:
            self._record_error(call, exc)
            raise

    def _after(self, call: _Call, result: Any, *, is_async: bool) -> Any:
        if call.stream:
            # litellm's CustomStreamWrapper is both sync and async iterable: follow the call style.
            if is_async and hasattr(result, "__anext__"):
                return _AsyncStream(result, _StreamState(call, result))
            if hasattr(result, "__next__"):
                return _SyncStream(result, _StreamState(call, result))
            if hasattr(result, "__anext__"):
                return _AsyncStream(result, _StreamState(call, result))
        try:
            self._record_result(call, result)
        except Exception:
            _report_failure(call.meter, "recording")
        return result

    def _record_error(self, call: _Call, exc: BaseException) -> None:
        try:
            fields = call.base_fields()
            fields.update(_error_fields(exc), accuracy="unknown",
                          latency_ms=(time.perf_counter() - call.started) * 1000.0,
                          provider=call.provider(getattr(exc, "llm_provider", None)))
            call.record(fields)
        except Exception:
            _report_failure(call.meter, "error recording")

    @staticmethod
    def _record_result(call: _Call, result: Any) -> None:
        fields = call.base_fields()
        fields["latency_ms"] = (time.perf_counter() - call.started) * 1000.0
        # Reading the response is most of the work: a snapshot of it now, the reading on the writer thread.
        call.record(fields, _ResultReading(call, result))


class _ResultReading:
    """Reads a non-streamed result into an event's fields, later, on the writer thread.

    What it reads is copied when the call returns (the result's fields and LiteLLM's hidden
    params, shallowly), so the caller may keep and change its response object. It holds neither
    the request (the prompt) nor the choices (the completion): only what the event needs.
    """

    __slots__ = ("api_base", "finish_reason", "hidden", "keep_raw", "model", "operation", "provider_hint",
                 "result")

    def __init__(self, call: _Call, result: Any) -> None:
        self.model, self.provider_hint, self.api_base = call.model, call.provider_hint, call.kwargs.get("api_base")
        self.operation, self.keep_raw = call.operation, call.keep_raw
        snapshot = _snapshot(result)
        choices = snapshot.pop("choices", None)
        if call.operation == "responses":
            snapshot.pop("output", None)  # the generated items: not needed, not kept
            status = snapshot.get("status")
            self.finish_reason = status if isinstance(status, str) else None
        else:
            first = choices[0] if choices else None
            data = getattr(first, "__dict__", None)
            reason = data.get("finish_reason") if data is not None else field(first, "finish_reason")
            self.finish_reason = reason if isinstance(reason, str) else None
        self.result = snapshot
        hidden = _private(result, "_hidden_params")
        self.hidden = dict(hidden) if isinstance(hidden, Mapping) else {}

    def __call__(self, fields: dict[str, Any]) -> None:
        result, hidden = self.result, self.hidden
        fields.update(_usage_fields(litellm_usage(result.get("usage"), keep_raw=self.keep_raw)))
        found = hidden.get("custom_llm_provider")
        fields["provider"] = found if isinstance(found, str) and found else _provider_for(
            self.model, self.provider_hint, self.api_base)
        model = result.get("model")
        if isinstance(model, str) and model:
            fields["response_model"] = model
        request_id = result.get("id")
        fields["request_id"] = _headers_request_id(hidden.get("additional_headers")) or (
            request_id if isinstance(request_id, str) else None)
        fields["finish_reason"] = self.finish_reason
        cost = _number(hidden.get("response_cost"))
        if cost is not None:
            fields["cost_usd"] = cost
            fields["cost_source"] = "provider"


def _snapshot(obj: Any) -> dict[str, Any]:
    """A shallow copy of a dict's or a pydantic object's fields (its extras included)."""
    data = getattr(obj, "__dict__", None)
    if data is None or isinstance(obj, Mapping):
        return dict(obj) if isinstance(obj, Mapping) else {}
    extra = getattr(obj, "__pydantic_extra__", None)
    return {**data, **extra} if extra else dict(data)


def _litellm_threads_busy() -> bool:
    """True while litellm's logging thread pool holds queued or running callbacks.

    A sync call hands its success callback to that pool just before it returns, so once the pool
    is idle every finished call's callback has run.
    """
    try:
        from litellm.litellm_core_utils.thread_pool_executor import executor
    except ImportError:  # older litellm: nothing to wait for that we can see
        return False
    slots, cap = getattr(executor, "_pending_slots", None), getattr(executor, "_max_pending_tasks", None)
    if isinstance(cap, int) and isinstance(getattr(slots, "_value", None), int):
        return slots._value < cap  # queued + running tasks hold a slot each
    queue = getattr(executor, "_work_queue", None)
    return queue is not None and not queue.empty()


def _private(obj: Any, name: str) -> Any:
    """A pydantic private attribute without the slow ``__getattr__`` path (any attribute otherwise)."""
    private = getattr(obj, "__pydantic_private__", None)
    if private and name in private:
        return private[name]
    return getattr(obj, name, None)


class _StreamState:
    """Accumulates what one stream showed; records exactly one event when it ends."""

    __slots__ = ("call", "done", "finalizer", "finish_reason", "first", "inner", "last_id", "lock", "model",
                 "response", "usage", "__weakref__")

    def __init__(self, call: _Call, inner: Any) -> None:
        self.call = call
        self.inner = inner
        self.usage: Any = None
        self.first: float | None = None
        self.finish_reason: str | None = None
        self.model: str | None = None
        self.last_id: str | None = None
        self.response: Any = None  # Responses API final response object
        self.done = False
        self.lock = threading.Lock()
        self.finalizer: weakref.finalize | None = None

    def detach(self) -> None:
        if self.finalizer is not None:
            self.finalizer.detach()

    def observe(self, chunk: Any) -> bool:
        """Note what *chunk* tells; False when the chunk is the usage-only one we asked for."""
        if self.first is None:
            self.first = time.perf_counter()
        if self.call.operation == "responses":
            kind = field(chunk, "type")
            if kind in _RESPONSES_END:
                self.response = field(chunk, "response")
            return True
        usage = field(chunk, "usage")
        choices = field(chunk, "choices")
        if self.model is None:
            model = field(chunk, "model")
            if isinstance(model, str) and model:
                self.model = model
                chunk_id = field(chunk, "id")
                self.last_id = chunk_id if isinstance(chunk_id, str) else None
        if choices:
            reason = field(choices[0], "finish_reason")
            if reason:
                self.finish_reason = reason
        if usage is not None:
            self.usage = usage
            if not choices and self.call.injected:
                return False  # the caller did not ask for this chunk
        return True

    def _provider_usage(self) -> Usage | None:
        if self.call.operation == "responses":
            resp = self.response
            return litellm_usage(field(resp, "usage"), keep_raw=self.call.keep_raw) if resp is not None else None
        if self.usage is None:
            return None
        chunks = getattr(self.inner, "chunks", None)
        if isinstance(chunks, list) and chunks:
            try:
                reported = any(c["usage"] is not None for c in chunks if "usage" in c)
            except Exception:  # noqa: BLE001 - litellm internals; assume reported
                reported = True
            if not reported:
                return None  # litellm's tokenizer estimate, not the provider's numbers
        return litellm_usage(self.usage, keep_raw=self.call.keep_raw)

    def finish(self, outcome: str, exc: BaseException | None = None) -> None:
        """Record the stream's event once: *outcome* is ``complete``, ``closed``, ``abandoned`` or ``error``."""
        with self.lock:
            if self.done:
                return
            self.done = True
        self.detach()
        call = self.call
        try:
            now = time.perf_counter()
            fields = call.base_fields()
            usage = self._provider_usage()
            fields.update(_usage_fields(usage))
            fields["latency_ms"] = (now - call.started) * 1000.0
            if self.first is not None:
                fields["time_to_first_token_ms"] = (self.first - call.started) * 1000.0
            hidden = getattr(self.inner, "_hidden_params", None)
            hidden = hidden if isinstance(hidden, Mapping) else {}
            fields["provider"] = call.provider(getattr(self.inner, "custom_llm_provider", None)
                                               or hidden.get("custom_llm_provider"))
            fields["request_id"] = _headers_request_id(hidden.get("additional_headers")) or self.last_id
            fields["finish_reason"] = self.finish_reason
            if self.model:
                fields["response_model"] = self.model
            resp = self.response
            if resp is not None:
                model, rid, status = field(resp, "model"), field(resp, "id"), field(resp, "status")
                fields["response_model"] = model if isinstance(model, str) else None
                fields["request_id"] = fields["request_id"] or (rid if isinstance(rid, str) else None)
                fields["finish_reason"] = status if isinstance(status, str) else None
            cost = litellm_usage_cost(self.usage if resp is None else field(resp, "usage"))
            if cost is not None and usage is not None:
                fields["cost_usd"] = cost
                fields["cost_source"] = "provider"
            if outcome != "complete":
                fields["metadata"] = {"stream_incomplete": outcome}
            if exc is not None:
                fields.update(_error_fields(exc))
            call.record(fields)
        except Exception:
            _report_failure(call.meter, "stream recording")


def _finalize(state: _StreamState) -> None:
    state.finish("abandoned")


class _SyncStream:
    """Iterates litellm's stream unchanged and records one event when it ends."""

    __slots__ = ("__weakref__", "_inner", "_state")

    def __init__(self, inner: Any, state: _StreamState) -> None:
        self._inner = inner
        self._state = state
        state.finalizer = weakref.finalize(self, _finalize, state)

    def __iter__(self) -> _SyncStream:
        return self

    def __next__(self) -> Any:
        state = self._state
        while True:
            try:
                chunk = next(self._inner)
            except StopIteration:
                state.finish("complete")
                raise
            except GeneratorExit:
                state.finish("closed")
                raise
            except BaseException as exc:
                state.finish("error", exc)
                raise
            try:
                keep = state.observe(chunk)
            except Exception:
                _report_failure(state.call.meter, "stream chunk")
                keep = True
            if keep:
                return chunk

    def close(self) -> None:
        """Stop the stream early (records the event now)."""
        self._state.finish("closed")
        close = getattr(self._inner, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> _SyncStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __repr__(self) -> str:
        return f"<tracked {self._inner!r}>"


class _AsyncStream:
    """Async-iterates litellm's stream unchanged and records one event when it ends."""

    __slots__ = ("__weakref__", "_inner", "_state")

    def __init__(self, inner: Any, state: _StreamState) -> None:
        self._inner = inner
        self._state = state
        state.finalizer = weakref.finalize(self, _finalize, state)

    def __aiter__(self) -> _AsyncStream:
        return self

    async def __anext__(self) -> Any:
        state = self._state
        while True:
            try:
                chunk = await self._inner.__anext__()
            except StopAsyncIteration:
                state.finish("complete")
                raise
            except (asyncio.CancelledError, GeneratorExit):
                state.finish("closed")
                raise
            except BaseException as exc:
                state.finish("error", exc)
                raise
            try:
                keep = state.observe(chunk)
            except Exception:
                _report_failure(state.call.meter, "stream chunk")
                keep = True
            if keep:
                return chunk

    async def aclose(self) -> None:
        """Stop the stream early (records the event now)."""
        self._state.finish("closed")
        aclose = getattr(self._inner, "aclose", None)
        if callable(aclose):
            await aclose()

    async def __aenter__(self) -> _AsyncStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __repr__(self) -> str:
        return f"<tracked {self._inner!r}>"


# ------------------------------------------------------------------------------------------------
# the callback
# ------------------------------------------------------------------------------------------------

_MAX_REMEMBERED = 10_000


class TrackerLogger(CustomLogger):
    """A LiteLLM ``CustomLogger`` that records one event per litellm call.

    Usage comes from LiteLLM's standard logging payload (cached, cache-write and reasoning tokens
    included); attribution from ``metadata={"agent_id": ..., "session_id": ..., "user_id": ...,
    "trace_id": ...}`` passed to litellm (or nested under ``metadata["a2a_tracker"]``), then from
    the ``meter_context`` in force when the call was made (captured on the calling thread, so it
    holds for streams whose callbacks run on litellm's worker threads). Calls the :class:`LiteLLM`
    wrapper or an outer framework adapter already meters are skipped; each call is recorded once.

    Args:
        meter: where events go; None follows the global meter.
        name: the public ``instance_id`` (unique by default, so several loggers with different
            meters all receive events despite litellm's de-duplication of loggers).

    Example::

        logger = TrackerLogger(meter).install()
        litellm.completion(model="openai/gpt-4.1", messages=..., metadata={"agent_id": "planner"})
        await logger.aflush()   # short async scripts: before the loop ends

    .. versionadded:: 0.1
    """

    def __init__(self, meter: Meter | None = None, *, name: str | None = None) -> None:
        _check_meter("TrackerLogger", meter)
        super().__init__()
        #: Public and unique: litellm de-duplicates loggers with equal public attributes.
        self.instance_id = name or f"a2a-tracker-{uuid.uuid4().hex[:12]}"
        self._meter = meter
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._calls: OrderedDict[str, tuple[TrackContext, bool]] = OrderedDict()
        global _live_loggers
        _live_loggers += 1
        weakref.finalize(self, _logger_gone)

    @property
    def meter(self) -> Meter:
        """The meter this logger records into."""
        return self._meter if self._meter is not None else get_meter()

    # -- registration ---------------------------------------------------------------------------------
    def install(self) -> TrackerLogger:
        """Register with litellm (``litellm.callbacks``); returns self."""
        litellm.logging_callback_manager.add_litellm_callback(self)
        return self

    def uninstall(self) -> None:
        """Remove this logger from every litellm callback list it was promoted into."""
        litellm.logging_callback_manager.remove_callback_from_all_lists(self)

    # -- litellm hooks (exact parameter names: litellm calls them with keywords) ---------------------
    def log_pre_api_call(self, model: Any, messages: Any, kwargs: Any) -> None:
        """Runs on the calling thread: remember its context and whether another adapter meters it."""
        try:
            call_id = kwargs.get("litellm_call_id") if isinstance(kwargs, Mapping) else None
            if not call_id:
                return
            ctx = get_context()
            skip = current_adapter() is not None or export_suppressed()
            if not skip and ctx.as_dict() == {}:
                return  # nothing to remember; the success hook reads what it needs
            with self._lock:
                self._calls[call_id] = (ctx, skip)
                if len(self._calls) > _MAX_REMEMBERED:
                    self._calls.popitem(last=False)
        except Exception:
            _report_failure(self._meter, "pre-call hook")

    def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        """Record a finished sync call (or an async one, for sync-only setups)."""
        self._handle(kwargs, response_obj, start_time, end_time, failed=False)

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        """Record a finished async call."""
        self._handle(kwargs, response_obj, start_time, end_time, failed=False)

    def log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        """Record a failed sync call."""
        self._handle(kwargs, response_obj, start_time, end_time, failed=True)

    async def async_log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        """Record a failed async call."""
        self._handle(kwargs, response_obj, start_time, end_time, failed=True)

    # -- flushing -----------------------------------------------------------------------------------------
    async def aflush(self, timeout: float = 5.0) -> bool:
        """Wait for litellm's pending logging work, then for the meter's writer.

        Call it before an ``asyncio.run()`` script ends right after a stream: litellm dispatches
        the stream's success callback as a fire-and-forget task that the loop would cancel, and a
        sync call's callback to its logging threads. Returns True when everything finished within
        *timeout* seconds (while other threads keep calling litellm, its threads may never be idle).
        """
        deadline = time.monotonic() + timeout
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current and not t.done() and _is_litellm_task(t)]
        ok = True
        if pending:
            _done, still = await asyncio.wait(pending, timeout=max(0.0, deadline - time.monotonic()))
            ok = not still
        try:
            from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER

            await asyncio.wait_for(GLOBAL_LOGGING_WORKER.flush(), timeout=max(0.01, deadline - time.monotonic()))
        except (ImportError, AttributeError):
            pass
        except TimeoutError:
            ok = False
        while _litellm_threads_busy():
            if time.monotonic() >= deadline:
                ok = False
                break
            await asyncio.sleep(0.002)
        meter = self._meter if self._meter is not None else (get_meter() if is_initialized() else None)
        if meter is not None:
            ok = await meter.aflush(max(0.01, deadline - time.monotonic())) and ok
        return ok

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait for litellm's logging threads to run the callbacks of finished calls, then flush the meter."""
        deadline = None if timeout is None else time.monotonic() + timeout
        ok = True
        while _litellm_threads_busy():
            if deadline is not None and time.monotonic() >= deadline:
                ok = False
                break
            time.sleep(0.002)
        meter = self._meter if self._meter is not None else (get_meter() if is_initialized() else None)
        if meter is None:
            return ok
        remaining = None if deadline is None else max(0.01, deadline - time.monotonic())
        return meter.flush(remaining) and ok

    # -- event building -------------------------------------------------------------------------------------
    def _handle(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any, *, failed: bool) -> None:
        meter: Meter | None = None
        try:
            if not isinstance(kwargs, Mapping):
                return
            slo = kwargs.get("standard_logging_object")
            slo = slo if isinstance(slo, Mapping) else {}
            call_id = kwargs.get("litellm_call_id") or slo.get("litellm_call_id") or slo.get("id")
            with self._lock:
                if call_id:
                    if call_id in self._seen:
                        return
                    self._seen[call_id] = None
                    if len(self._seen) > _MAX_REMEMBERED:
                        self._seen.popitem(last=False)
                remembered = self._calls.pop(call_id, None) if call_id else None
            params = kwargs.get("litellm_params")
            params = params if isinstance(params, Mapping) else {}
            metadata = params.get("metadata")
            metadata = metadata if isinstance(metadata, Mapping) else {}
            ns = metadata.get(METADATA_KEY)
            if isinstance(ns, Mapping) and ns.get("recorded_by") == "wrapper":
                return  # the LiteLLM wrapper records this call itself
            if remembered is not None and remembered[1]:
                return  # an outer adapter meters it, or the tracker's own export made it
            if remembered is None and (current_adapter() is not None or export_suppressed()):
                return
            meter = self._meter if self._meter is not None else get_meter()
            meter._record_fresh(self._event(kwargs, slo, params, metadata, response_obj, start_time, end_time,
                                            failed, remembered[0] if remembered else None))
        except Exception:
            _report_failure(meter or self._meter, "callback")

    @staticmethod
    def _event(kwargs: Mapping[str, Any], slo: Mapping[str, Any], params: Mapping[str, Any],
               metadata: Mapping[str, Any], response_obj: Any, start_time: Any, end_time: Any, failed: bool,
               ctx: TrackContext | None) -> UsageEvent:
        hidden = slo.get("hidden_params")
        hidden = hidden if isinstance(hidden, Mapping) else {}
        stream = slo.get("stream") is True or kwargs.get("stream") is True
        call_type = slo.get("call_type") or kwargs.get("call_type") or "completion"
        fields: dict[str, Any] = {
            "framework": FRAMEWORK, "operation": _OPERATIONS.get(str(call_type), str(call_type)), "stream": stream,
            "provider": slo.get("custom_llm_provider") or kwargs.get("custom_llm_provider"),
            "model": hidden.get("litellm_model_name") or slo.get("model") or kwargs.get("model"),
        }
        # attribution: explicit metadata > litellm's own ids > user= > context captured at call time
        attribution = _explicit_attribution(metadata)
        session = params.get("litellm_session_id")
        if "session_id" not in attribution and isinstance(session, str) and session:
            attribution["session_id"] = session
        user = kwargs.get("user")
        if "user_id" not in attribution and isinstance(user, str) and user:
            attribution["user_id"] = user
        if ctx is not None:
            for name in CONTEXT_FIELDS:
                value = getattr(ctx, name)
                if value is not None and name not in attribution:
                    attribution[name] = value
            if ctx.metadata:
                fields["metadata"] = dict(ctx.metadata)
        fields.update(attribution)
        if isinstance(start_time, datetime) and isinstance(end_time, datetime):
            fields["latency_ms"] = max(0.0, (end_time - start_time).total_seconds() * 1000.0)
        first, begin = slo.get("completionStartTime"), slo.get("startTime")
        if stream and isinstance(first, int | float) and isinstance(begin, int | float) and first >= begin:
            fields["time_to_first_token_ms"] = (first - begin) * 1000.0
        if failed:
            exc = kwargs.get("exception")
            if isinstance(exc, BaseException):
                fields.update(_error_fields(exc))
            else:
                fields.update(status="error", error_type="LiteLLMError",
                              error_message=scrub_secrets(str(slo.get("error_str") or "litellm call failed")))
            fields["accuracy"] = "unknown"
            return event_from(fields)
        raw = slo.get("metadata", {}).get("usage_object") if isinstance(slo.get("metadata"), Mapping) else None
        usage = litellm_usage(raw) if raw else None
        if usage is None:
            usage = litellm_usage(field(response_obj, "usage"))
        fields.update(_usage_fields(usage))
        if usage is not None and stream:
            opts = kwargs.get("stream_options") or (kwargs.get("optional_params") or {}).get("stream_options")
            if not (isinstance(opts, Mapping) and opts.get("include_usage")):
                fields["accuracy"] = "estimated"  # litellm counted the stream with a tokenizer
        model = field(response_obj, "model")
        if isinstance(model, str) and model:
            fields["response_model"] = model
        fields["request_id"] = _headers_request_id(hidden.get("additional_headers")) or (
            slo.get("id") if isinstance(slo.get("id"), str) else None)
        fields["finish_reason"] = _finish_reason(response_obj)
        cost = _number(slo.get("response_cost"))
        if cost is not None and usage is not None:
            fields["cost_usd"] = cost
            fields["cost_source"] = "provider"
        return event_from(fields)


def _is_litellm_task(task: asyncio.Task[Any]) -> bool:
    coro = task.get_coro()
    name = getattr(coro, "__qualname__", "") or ""
    return name.startswith(("Logging.", "CustomStreamWrapper."))
