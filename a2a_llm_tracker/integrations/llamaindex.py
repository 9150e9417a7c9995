"""LlamaIndex adapter: record one event per LLM call through LlamaIndex's instrumentation.

Usage::

    from a2a_llm_tracker.integrations.llamaindex import instrument

    handle = instrument(meter)        # meter=None: the global meter
    ...                               # every LlamaIndex LLM call is recorded
    handle.remove()                   # or: with instrument(meter): ...

``instrument`` registers an event handler and a span handler on the root instrumentation
dispatcher (the API LlamaIndex recommends since 0.10.20; every ``llama_index.*`` dispatcher
propagates to it). For code still on the legacy ``CallbackManager`` there is
:class:`TrackerCallbackHandler`. Use one or the other: both see the same calls.

What is recorded, and where it comes from:

* usage: the provider's usage in ``LLMChatEndEvent`` / ``LLMCompletionEndEvent`` ``response.raw``
  (``raw.usage``, ``raw["usage"]``), else ``additional_kwargs["usage"]`` (OpenAI Responses), else
  the prompt/completion counts in ``additional_kwargs``. Only End events count (a streamed call's
  last chunk is also an InProgress event). A chat implemented through a completion (``CustomLLM``)
  fires nested LLM spans: only the outermost is recorded.
* identity: ``call_id`` = the LLM span id, ``parent_call_id`` = its parent span, ``trace_id`` = the
  workflow run id (``llamaindex.run_id`` tag, e.g. ``AgentWorkflow.run(run_id=...)``) else the root
  span, ``agent_id`` = the ``agent_id`` tag, else the name of the agent whose step made the call
  (``FunctionAgent(name=...)`` / ``AgentWorkflow``), ``session_id`` / ``user_id`` from the
  ``session_id`` / ``user_id`` tags (``with instrument_tags({...})``). Explicit arguments to
  ``instrument`` win over these, and these win over an ambient ``meter_context``.

Streams: LlamaIndex's ``OpenAI`` does not ask for usage on streams; pass
``OpenAI(..., additional_kwargs={"stream_options": {"include_usage": True}})``. Without it the call
is recorded with ``accuracy="unknown"`` and one warning says so. A stream the consumer drops before
its end gets no End event from LlamaIndex: it is recorded once when the stream object is collected,
with what was known (``metadata["stream_incomplete"] = "abandoned"``).

Handlers run in the caller's thread or task (LlamaIndex swallows their exceptions silently, so this
module logs its own failures). They are thread-safe.

.. versionadded:: 0.1
"""

from __future__ import annotations as _annotations

import contextvars
import logging
import threading
import time
import types
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from .._context import adapter_scope, current_adapter, export_suppressed, get_context
from .._meter import Meter
from .._setup import resolve_meter
from ..exceptions import AdapterUnavailable, ConfigurationError, TrackerNotInitializedError
from ._common import as_dict, endpoint_host, usage_from_raw

try:
    from llama_index.core.callbacks import CBEventType, EventPayload
    from llama_index.core.callbacks.base_handler import BaseCallbackHandler as _LegacyHandler
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler
    from llama_index.core.instrumentation.span import SimpleSpan
    from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
    from pydantic import PrivateAttr
except ImportError as _exc:  # pragma: no cover - exercised by the missing-dependency test
    raise AdapterUnavailable(
        "the LlamaIndex adapter needs llama-index-core: pip install a2a-llm-tracker[llamaindex]") from _exc

__all__ = ["InstrumentHandle", "TrackerCallbackHandler", "instrument", "usage_from_llamaindex"]

logger = logging.getLogger("a2a_llm_tracker")

FRAMEWORK = "llamaindex"
_MAX_SPANS = 50_000  # spans whose end never came are evicted beyond this (never grow without bound)
_START_EVENTS = {"LLMChatStartEvent": "chat", "LLMCompletionStartEvent": "completion"}
_END_EVENTS = {"LLMChatEndEvent", "LLMCompletionEndEvent"}
_PROGRESS_EVENTS = {"LLMChatInProgressEvent", "LLMCompletionInProgressEvent"}


def usage_from_llamaindex(response: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Event fields (usage, served model, request id, finish reason) from a ChatResponse/CompletionResponse.

    Returns ``(usage_fields, other_fields)``; ``usage_fields`` is empty when the response has no usage.
    """
    raw = getattr(response, "raw", None)
    extra = getattr(response, "additional_kwargs", None) or {}
    raw_dict = raw if isinstance(raw, dict) else None
    usage_obj = getattr(raw, "usage", None) if raw_dict is None else raw_dict.get("usage")
    if usage_obj is None and raw_dict is not None:
        usage_obj = raw_dict.get("usage_metadata") or raw_dict.get("usageMetadata")
    if usage_obj is None and raw is not None and raw_dict is None:
        usage_obj = getattr(raw, "usage_metadata", None)
    if usage_obj is None:
        usage_obj = extra.get("usage")
    if usage_obj is None and ("prompt_tokens" in extra or "completion_tokens" in extra):
        usage_obj = {k: extra[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens") if k in extra}
    usage = usage_from_raw(usage_obj)
    other: dict[str, Any] = {}
    get = raw_dict.get if raw_dict is not None else (lambda key, default=None: getattr(raw, key, default))
    model = get("model", None) or get("model_version", None) or get("modelVersion", None)
    if isinstance(model, str) and model:
        other["response_model"] = model
    rid = get("id", None) or get("response_id", None)
    if isinstance(rid, str) and rid:
        other["request_id"] = rid
    choices = get("choices", None)
    if choices:
        first = choices[0]
        finish = first.get("finish_reason") if isinstance(first, dict) else getattr(first, "finish_reason", None)
        if isinstance(finish, str) and finish:
            other["finish_reason"] = finish
    elif isinstance(get("stop_reason", None), str):
        other["finish_reason"] = get("stop_reason", None)
    return (usage.event_fields() if usage is not None else {}), other


def _provider(model_dict: dict[str, Any] | None) -> str | None:
    name = (model_dict or {}).get("class_name")
    if not isinstance(name, str) or not name:
        return None
    name = name.lower()
    return name[: -len("_llm")] if name.endswith("_llm") else name


@dataclass(slots=True)
class _Span:
    parent: str | None
    agent: str | None = None
    llm: bool = False  # an LLM Start event happened in this span
    nested: bool = False  # ... inside another LLM span: not recorded
    exited: bool = False
    done: bool = False  # End (or error) recorded
    skip: bool = False  # an outer adapter meters this call
    operation: str = "chat"
    model: str | None = None
    provider: str | None = None
    started: float = 0.0
    first_token: float | None = None
    context: Any = None  # the ambient TrackContext when the call started
    last_response: Any = None  # the latest InProgress response of a stream (usage, if the end never comes)
    fields: dict[str, Any] = field(default_factory=dict)
    scope: Any = None


class _Tracker:
    """State shared by the event and span handlers of one :func:`instrument` call."""

    def __init__(self, meter: Meter | None, explicit: dict[str, str], metadata: dict[str, Any]) -> None:
        self.meter = meter
        self.explicit = explicit
        self.metadata = metadata
        self.spans: OrderedDict[str, _Span] = OrderedDict()
        self.lock = threading.Lock()
        self.warned_stream = False
        self.warned_meter = False

    def resolve(self) -> Meter | None:
        try:
            return resolve_meter(self.meter)
        except TrackerNotInitializedError:
            if not self.warned_meter:
                self.warned_meter = True
                logger.warning("a2a_llm_tracker: LlamaIndex instrumentation has no meter (call init_sync() or "
                               "pass meter=); LLM calls are not recorded")
            return None

    def fail(self, where: str) -> None:
        meter = self.meter
        if meter is None:
            try:
                meter = resolve_meter(None)
            except TrackerNotInitializedError:
                meter = None
        # LlamaIndex swallows handler exceptions silently, so always log, even when strict
        logger.warning("a2a_llm_tracker: LlamaIndex %s failed; the call is not affected", where, exc_info=True)
        if meter is not None and meter.strict:
            raise

    # -- spans -----------------------------------------------------------------------------------------
    def span_enter(self, id_: str, bound_args: Any, instance: Any, parent: str | None) -> None:
        agent = None
        ev = bound_args.arguments.get("ev") if bound_args is not None else None
        name = getattr(ev, "current_agent_name", None)
        if isinstance(name, str) and name:
            agent = name
        elif instance is not None and _is_agent(instance):
            agent = getattr(instance, "name", None)
        with self.lock:
            if len(self.spans) >= _MAX_SPANS:
                self.spans.popitem(last=False)
            self.spans[id_] = _Span(parent, agent)

    def span_exit(self, id_: str, result: Any = None) -> None:
        with self.lock:
            span = self.spans.get(id_)
            if span is None:
                return
            span.exited = True
            if not span.llm or span.done:  # an LLM span waits for its End event (streams end later)
                del self.spans[id_]
            elif _is_stream(result):
                # The call returned its stream: LlamaIndex sends End when it is used up, nothing when
                # the consumer drops it. Record then (once) what is known, when the stream is collected.
                weakref.finalize(result, self._abandoned, id_)
        if span.scope is not None:
            _close_scope(span)

    def _abandoned(self, id_: str) -> None:
        try:
            self._end(id_, None, incomplete="abandoned")
        except Exception:
            self.fail("abandoned stream")

    def span_drop(self, id_: str, err: BaseException | None) -> None:
        with self.lock:
            span = self.spans.pop(id_, None)
        if span is None:
            return
        if span.scope is not None:
            _close_scope(span)
        if span.llm and not span.done and not span.nested and not span.skip:
            span.done = True
            self.record(span, None, err or RuntimeError("LLM span dropped"))

    # -- events ----------------------------------------------------------------------------------------
    def on_start(self, event: Any, operation: str) -> None:
        span_id = event.span_id
        if span_id is None or export_suppressed():
            return
        with self.lock:
            span = self.spans.get(span_id)
            if span is None:  # an LLM method without a span (not decorated): track it anyway
                span = self.spans[span_id] = _Span(None)
            span.llm, span.operation = True, operation
            ancestors = self._ancestors(span.parent)
        span.nested = any(a.llm for _, a in ancestors)
        if span.nested:
            return
        outer = current_adapter()
        if outer is not None and outer != FRAMEWORK:
            span.skip = True
            return
        if outer is None:
            scope = adapter_scope(FRAMEWORK)
            if scope.__enter__():
                span.scope = scope
        model_dict = getattr(event, "model_dict", None) or {}
        span.model = model_dict.get("model_name") if model_dict.get("model_name") not in (None, "unknown") else None
        span.provider = _provider(model_dict)
        span.started = time.perf_counter()
        span.context = get_context()
        span.fields = self._attribution(span_id, span, ancestors, event.tags or {})

    def _ancestors(self, parent: str | None) -> list[tuple[str, _Span]]:
        out: list[tuple[str, _Span]] = []
        while parent is not None and len(out) < 1000:
            entry = self.spans.get(parent)
            if entry is None:
                break
            out.append((parent, entry))
            parent = entry.parent
        return out

    def _attribution(self, span_id: str, span: _Span, ancestors: list[tuple[str, _Span]],
                     tags: dict[str, Any]) -> dict[str, Any]:
        agent = tags.get("agent_id") or next((a.agent for _, a in ancestors if a.agent), None)
        if ancestors:
            last_id, last = ancestors[-1]
            root = last.parent or last_id  # the chain may continue into spans we never saw
        else:
            root = span.parent or span_id
        run_id = tags.get("llamaindex.run_id")
        fields = {"agent_id": agent, "session_id": tags.get("session_id") or tags.get("thread_id"),
                  "user_id": tags.get("user_id"), "call_id": span_id, "parent_call_id": span.parent,
                  "trace_id": run_id or root}
        fields = {k: str(v) for k, v in fields.items() if v is not None}
        fields.update(self.explicit)
        extra = dict(self.metadata)
        if run_id is not None:
            extra["llamaindex_run_id"] = str(run_id)
        fields["metadata"] = extra
        return fields

    def on_progress(self, event: Any) -> None:
        span = self.spans.get(event.span_id) if event.span_id else None
        if span is not None and span.llm:
            if span.first_token is None:
                span.first_token = time.perf_counter()
            span.last_response = getattr(event, "response", None)

    def on_end(self, event: Any) -> None:
        self._end(event.span_id, getattr(event, "response", None))

    def _end(self, span_id: str | None, response: Any, incomplete: str | None = None) -> None:
        """Record an LLM span once: from its End event, or (*incomplete*) when its stream was dropped."""
        with self.lock:
            span = self.spans.get(span_id) if span_id else None
            if span is None or span.done:
                return
            span.done = True
            if span.exited:
                del self.spans[span_id]
        if span.nested or span.skip or not span.llm:
            return
        self.record(span, span.last_response if incomplete else response, None, incomplete)

    def record(self, span: _Span, response: Any, error: BaseException | None, incomplete: str | None = None) -> None:
        meter = self.resolve()
        if meter is None:
            return
        ended = time.perf_counter()
        usage, other = usage_from_llamaindex(response) if response is not None else ({}, {})
        fields = dict(span.fields)
        fields["metadata"] = dict(fields.get("metadata") or {})
        fields.update(usage)
        fields.update(other)
        stream = span.first_token is not None or incomplete is not None
        if incomplete is not None:
            fields["metadata"]["stream_incomplete"] = incomplete
        fields.update(framework=FRAMEWORK, provider=span.provider, model=span.model or other.get("response_model"),
                      operation=span.operation, stream=stream,
                      latency_ms=(ended - span.started) * 1000.0 if span.started else None,
                      time_to_first_token_ms=((span.first_token - span.started) * 1000.0
                                              if span.first_token is not None and span.started else None))
        if error is not None:
            fields.update(status="error", error_type=type(error).__name__, error_message=str(error) or None)
        if not usage:
            fields["accuracy"] = "unknown"
            if stream and error is None and incomplete is None and not self.warned_stream:
                self.warned_stream = True
                logger.warning(
                    "a2a_llm_tracker: a streamed LlamaIndex call to %s returned no token usage, so it was recorded "
                    "with accuracy='unknown'. For OpenAI pass additional_kwargs={'stream_options': "
                    "{'include_usage': True}} to the LLM so the provider reports usage on streams.", span.model)
        # the attribution in force when the call started (an abandoned stream is recorded by the GC)
        meter._record_later({k: v for k, v in fields.items() if v is not None or k == "metadata"}, span.context)


def _is_stream(result: Any) -> bool:
    return isinstance(result, types.GeneratorType | types.AsyncGeneratorType)


def _is_agent(instance: Any) -> bool:
    try:
        from llama_index.core.agent.workflow import BaseWorkflowAgent
    except ImportError:  # pragma: no cover - older llama-index without workflow agents
        return False
    return isinstance(instance, BaseWorkflowAgent)


def _close_scope(span: _Span) -> None:
    scope, span.scope = span.scope, None
    try:
        scope.__exit__(None, None, None)
    except (ValueError, RuntimeError):
        pass  # exited in another context (async future callback): that context's copy is dropped


class _TrackerEventHandler(BaseEventHandler):
    _tracker: Any = PrivateAttr()

    @classmethod
    def class_name(cls) -> str:
        return "A2ATrackerEventHandler"

    def handle(self, event: Any, **kwargs: Any) -> None:
        name = type(event).__name__
        try:
            if name in _PROGRESS_EVENTS:
                self._tracker.on_progress(event)
            elif name in _END_EVENTS:
                self._tracker.on_end(event)
            elif name in _START_EVENTS:
                self._tracker.on_start(event, _START_EVENTS[name])
        except Exception:
            self._tracker.fail(f"event handler ({name})")


class _TrackerSpanHandler(BaseSpanHandler[SimpleSpan]):
    _tracker: Any = PrivateAttr()

    @classmethod
    def class_name(cls) -> str:
        return "A2ATrackerSpanHandler"

    def new_span(self, id_: str, bound_args: Any, instance: Any | None = None, parent_span_id: str | None = None,
                 tags: dict[str, Any] | None = None, **kwargs: Any) -> None:
        try:
            self._tracker.span_enter(id_, bound_args, instance, parent_span_id)
        except Exception:
            self._tracker.fail("span handler (enter)")
        return None  # keep our own map; the base class's span lists would grow forever

    def prepare_to_exit_span(self, id_: str, bound_args: Any, instance: Any | None = None, result: Any | None = None,
                             **kwargs: Any) -> None:
        try:
            self._tracker.span_exit(id_, result)
        except Exception:
            self._tracker.fail("span handler (exit)")
        return None

    def prepare_to_drop_span(self, id_: str, bound_args: Any, instance: Any | None = None,
                             err: BaseException | None = None, **kwargs: Any) -> None:
        try:
            self._tracker.span_drop(id_, err)
        except Exception:
            self._tracker.fail("span handler (drop)")
        return None


class InstrumentHandle:
    """What :func:`instrument` returns: ``remove()`` (idempotent) or use it as a context manager."""

    def __init__(self, tracker: _Tracker, key: Any) -> None:
        self._tracker = tracker
        self._key = key
        self.event_handler = _TrackerEventHandler()
        self.event_handler._tracker = tracker
        self.span_handler = _TrackerSpanHandler()
        self.span_handler._tracker = tracker
        self._active = False

    @property
    def active(self) -> bool:
        """True while the handlers are registered."""
        return self._active

    def _add(self) -> None:
        root = get_dispatcher()
        root.add_event_handler(self.event_handler)
        root.add_span_handler(self.span_handler)
        self._active = True

    def remove(self) -> None:
        """Unregister both handlers (safe to call twice)."""
        with _registry_lock:
            if not self._active:
                return
            root = get_dispatcher()
            root.event_handlers = [h for h in root.event_handlers if h is not self.event_handler]
            root.span_handlers = [h for h in root.span_handlers if h is not self.span_handler]
            self._active = False
            if _registry.get(self._key) is self:
                del _registry[self._key]

    def __enter__(self) -> InstrumentHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"InstrumentHandle(meter={self._tracker.meter!r}, active={self._active})"


_registry: dict[Any, InstrumentHandle] = {}
# The legacy LLM event open in this context (see TrackerCallbackHandler.on_event_start).
_LEGACY_OPEN: contextvars.ContextVar[str | None] = contextvars.ContextVar("a2a_llm_tracker.llamaindex_legacy",
                                                                          default=None)
_registry_lock = threading.Lock()


def instrument(meter: Meter | None = None, *, agent_id: str | None = None, session_id: str | None = None,
               user_id: str | None = None, project: str | None = None,
               metadata: dict[str, Any] | None = None) -> InstrumentHandle:
    """Record every LlamaIndex LLM call into *meter* (None: the global meter, looked up per call).

    Idempotent: instrumenting again with the same meter and arguments returns the active handle
    instead of registering a second pair of handlers (which would count every call twice).

    Args:
        meter: where to record.
        agent_id: attribute every call to this agent (wins over tags and agent names).
        session_id: attribute every call to this session.
        user_id: attribute every call to this user.
        project: the project of every call.
        metadata: extra metadata stored on every event.

    Returns:
        A handle; ``handle.remove()`` (or leaving ``with instrument(...):``) unregisters the handlers.

    .. versionadded:: 0.1
    """
    if meter is not None and not isinstance(meter, Meter):
        raise ConfigurationError(f"instrument(meter=...) takes a Meter or None, got {type(meter).__name__}")
    explicit = {k: v for k, v in {"agent_id": agent_id, "session_id": session_id, "user_id": user_id,
                                   "project": project}.items() if v is not None}
    key = (id(meter), tuple(sorted(explicit.items())), repr(sorted((metadata or {}).items())))
    with _registry_lock:
        existing = _registry.get(key)
        if existing is not None and existing.active and existing._tracker.meter is meter:
            return existing
        handle = InstrumentHandle(_Tracker(meter, explicit, dict(metadata or {})), key)
        handle._add()
        _registry[key] = handle
    return handle


class TrackerCallbackHandler(_LegacyHandler):
    """A handler for LlamaIndex's legacy ``CallbackManager`` (for code that still uses it).

    ``Settings.callback_manager = CallbackManager([TrackerCallbackHandler(meter)])`` or
    ``OpenAI(..., callback_manager=CallbackManager([...]))``. It records one event per LLM event
    (nested chat→complete counted once), with ``call_id`` = the event id and ``parent_call_id``
    = its parent event. The legacy callbacks carry no workflow or agent identity: prefer
    :func:`instrument`, and do not use both (each would record the call).

    .. versionadded:: 0.1
    """

    def __init__(self, meter: Meter | None = None, *, agent_id: str | None = None, session_id: str | None = None,
                 user_id: str | None = None, project: str | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        super().__init__(event_starts_to_ignore=[], event_ends_to_ignore=[])
        if meter is not None and not isinstance(meter, Meter):
            raise ConfigurationError(f"TrackerCallbackHandler(meter=...) takes a Meter or None, got "
                                     f"{type(meter).__name__}")
        explicit = {k: v for k, v in {"agent_id": agent_id, "session_id": session_id, "user_id": user_id,
                                       "project": project}.items() if v is not None}
        self._tracker = _Tracker(meter, explicit, dict(metadata or {}))

    def on_event_start(self, event_type: Any, payload: dict[str, Any] | None = None, event_id: str = "",
                       parent_id: str = "", **kwargs: Any) -> str:
        if event_type != CBEventType.LLM:
            return event_id
        try:
            tracker = self._tracker
            parent = parent_id if parent_id and parent_id != "root" else None
            span = _Span(parent, llm=True)
            # The legacy events of a chat implemented through complete() are both children of "root":
            # nesting shows only as an LLM event still open in this context. The innermost one is
            # recorded and its open parent skipped, so a stale (abandoned) outer never hides a call.
            outer_id = _LEGACY_OPEN.get()
            with tracker.lock:
                outer = tracker.spans.get(outer_id) if outer_id else None
                if outer is not None and not outer.done:
                    outer.nested = True  # here "nested" means "has an inner LLM event that records"
                if len(tracker.spans) >= _MAX_SPANS:
                    tracker.spans.popitem(last=False)
                tracker.spans[event_id] = span
            span.scope = _LEGACY_OPEN.set(event_id)
            payload = payload or {}
            serialized = payload.get(EventPayload.SERIALIZED) or {}
            span.operation = "chat" if EventPayload.MESSAGES in payload else "completion"
            model = serialized.get("model_name") or serialized.get("model")
            span.model = model if model not in (None, "unknown") else None
            span.provider = _provider(serialized)
            span.started = time.perf_counter()
            fields: dict[str, Any] = {"call_id": event_id, "parent_call_id": parent, **tracker.explicit}
            endpoint = endpoint_host(serialized.get("api_base"))
            fields["metadata"] = {**tracker.metadata, **({"endpoint": endpoint} if endpoint else {})}
            span.fields = {k: v for k, v in fields.items() if v is not None}
        except Exception:
            self._tracker.fail("legacy on_event_start")
        return event_id

    def on_event_end(self, event_type: Any, payload: dict[str, Any] | None = None, event_id: str = "",
                     **kwargs: Any) -> None:
        if event_type != CBEventType.LLM:
            return
        try:
            tracker = self._tracker
            with tracker.lock:
                span = tracker.spans.pop(event_id, None)
            if span is None:
                return
            span.done = True
            token, span.scope = span.scope, None
            if token is not None:
                try:
                    _LEGACY_OPEN.reset(token)
                except ValueError:
                    pass  # ended in another context
            if span.nested:  # an inner LLM event recorded this call
                return
            payload = payload or {}
            error = payload.get(EventPayload.EXCEPTION)
            response = payload.get(EventPayload.RESPONSE) or payload.get(EventPayload.COMPLETION)
            if as_dict(response) is None and response is not None and not hasattr(response, "raw"):
                response = None  # a plain string completion: no usage
            tracker.record(span, response, error if isinstance(error, BaseException) else None)
        except Exception:
            self._tracker.fail("legacy on_event_end")

    def start_trace(self, trace_id: str | None = None) -> None:
        """Nothing to do: the events carry their own ids."""

    def end_trace(self, trace_id: str | None = None, trace_map: dict[str, list[str]] | None = None) -> None:
        """Nothing to do: the events carry their own ids."""
