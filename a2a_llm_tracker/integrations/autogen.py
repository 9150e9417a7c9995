"""AutoGen adapter: a ``ChatCompletionClient`` that meters the client it wraps.

``TrackedChatCompletionClient(inner)`` is a full :class:`autogen_core.models.ChatCompletionClient`
and a serialisable AutoGen ``Component``: give it to an ``AssistantAgent`` (or share one between the
agents of a team) and every ``create`` / ``create_stream`` becomes one :class:`UsageEvent`::

    from autogen_ext.models.openai import OpenAIChatCompletionClient
    from a2a_llm_tracker.integrations.autogen import TrackedChatCompletionClient

    client = TrackedChatCompletionClient(OpenAIChatCompletionClient(model="gpt-4o-mini"), meter)
    agent = AssistantAgent("alice", model_client=client)

Where the usage comes from (AutoGen's ``RequestUsage`` has only prompt and completion counts):

* non-stream calls: the raw provider response AutoGen logs as an ``LLMCallEvent`` on the
  ``autogen_core.events`` logger (cached, cache-write and reasoning tokens, the served model, the
  request id). To see it the adapter sets that logger to INFO and swallows, in a logger filter, every
  record the user's logging set-up would not have shown (see :func:`_EventTap`), so nothing new is printed.
* streams: the final ``CreateResult``; for OpenAI-family clients the adapter asks for the usage chunk
  (``stream_options.include_usage``) per call. Cached/reasoning details of streams need the opt-in
  ``usage_tap=True``, which wraps the inner client's private ``openai.AsyncOpenAI`` instance.

Only this module imports AutoGen; ``import a2a_llm_tracker`` does not.
"""

from __future__ import annotations as _annotations

import asyncio
import contextvars
import logging
import threading
import time
import warnings
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .._context import adapter_scope, current_adapter, export_suppressed, get_context
from .._events import TOKEN_FIELDS, UsageEvent
from .._setup import resolve_meter
from ..exceptions import AdapterUnavailable, BudgetExceededError, TrackerNotInitializedError
from ._common import usage_from_raw

try:
    from autogen_core import (
        EVENT_LOGGER_NAME,
        CancellationToken,
        Component,
        ComponentModel,
        MessageHandlerContext,
    )
    from autogen_core.models import (
        ChatCompletionClient,
        CreateResult,
        LLMMessage,
        ModelCapabilities,  # type: ignore[attr-defined]
        ModelInfo,
        RequestUsage,
    )
    from autogen_core.tools import Tool, ToolSchema
except ImportError as exc:  # pragma: no cover - exercised by the missing-dependency test
    raise AdapterUnavailable(
        "the AutoGen adapter needs autogen-core: pip install a2a-llm-tracker[autogen]") from exc

from pydantic import BaseModel

__all__ = ["TrackedChatCompletionClient", "TrackedChatCompletionClientConfig"]

logger = logging.getLogger("a2a_llm_tracker")

_FRAMEWORK = "autogen"
#: ``price_id`` of a cache hit's $0 cost (shared with the LangChain adapter).
_CACHE_HIT_PRICE_ID = "llm-cache-hit"

# Inner client class name (anywhere in its MRO) → provider name used for pricing. Matched by name so
# this module never imports autogen_ext (or openai / anthropic) itself.
_PROVIDERS: tuple[tuple[str, str], ...] = (
    ("AzureOpenAIChatCompletionClient", "azure"),
    ("AnthropicBedrockChatCompletionClient", "bedrock"),
    ("AnthropicChatCompletionClient", "anthropic"),
    ("BaseAnthropicChatCompletionClient", "anthropic"),
    ("OpenAIChatCompletionClient", "openai"),
    ("BaseOpenAIChatCompletionClient", "openai"),
    ("OllamaChatCompletionClient", "ollama"),
    ("AzureAIChatCompletionClient", "azure_ai"),
    ("LlamaCppChatCompletionClient", "llama_cpp"),
    ("ReplayChatCompletionClient", "replay"),
)


class TrackedChatCompletionClientConfig(BaseModel):
    """Serialised form of :class:`TrackedChatCompletionClient` (the meter is not serialised)."""

    client: ComponentModel
    agent_id: str | None = None
    provider: str | None = None
    model: str | None = None
    usage_events: bool = True
    usage_tap: bool = False
    request_stream_usage: bool = True


# -- per-call capture of the raw provider response ---------------------------------------------------
@dataclass(slots=True)
class _Capture:
    """Filled while one tracked call runs: the raw response (LLMCallEvent or tap) and stream usage."""

    raw: dict[str, Any] | None = None
    stream_usage: dict[str, Any] | None = None
    stream_model: str | None = None
    stream_id: str | None = None


_CAPTURE: contextvars.ContextVar[_Capture | None] = contextvars.ContextVar("a2a_llm_tracker.autogen.capture",
                                                                          default=None)


class _EventTap:
    """A filter on the ``autogen_core.events`` logger that hands ``LLMCallEvent`` payloads to the
    tracked call in progress (found through a ContextVar: the event is logged inside ``inner.create``,
    in the caller's task).

    AutoGen logs those events at INFO, and that logger is at WARNING unless the user configured it.
    If it is not enabled for INFO, the tap sets its level to INFO and then drops (returns False for)
    every record below the level the user's configuration would otherwise apply, so no handler sees a
    record it would not have seen before. If the user later sets a level on the logger themselves, the
    tap stops swallowing.
    """

    _lock = threading.Lock()
    _installed: _EventTap | None = None

    def __init__(self, event_logger: logging.Logger) -> None:
        self._logger = event_logger
        self._raised = False  # True while the level is the INFO we set

    @classmethod
    def install(cls) -> None:
        """Attach the tap once per process (idempotent)."""
        with cls._lock:
            if cls._installed is not None:
                cls._installed._ensure_level()
                return
            tap = cls(logging.getLogger(EVENT_LOGGER_NAME))
            tap._logger.addFilter(tap)
            tap._ensure_level()
            cls._installed = tap

    @classmethod
    def uninstall(cls) -> None:
        """Remove the tap and restore the logger's level (tests use this)."""
        with cls._lock:
            tap, cls._installed = cls._installed, None
            if tap is None:
                return
            tap._logger.removeFilter(tap)
            if tap._raised and tap._logger.level == logging.INFO:
                tap._logger.setLevel(logging.NOTSET)

    def _ensure_level(self) -> None:
        if not self._logger.isEnabledFor(logging.INFO):
            if self._logger.level not in (logging.NOTSET,):
                # The user set a level on this very logger: respect it, no details from events.
                return
            self._logger.setLevel(logging.INFO)
            self._raised = True

    def _user_threshold(self) -> int:
        """The level below which the user's configuration would not have emitted a record."""
        if not self._raised or self._logger.level != logging.INFO:
            self._raised = False
            return logging.NOTSET
        parent = self._logger.parent
        return parent.getEffectiveLevel() if parent is not None else logging.WARNING

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            capture = _CAPTURE.get()
            if capture is not None and capture.raw is None:
                msg = record.msg
                if type(msg).__name__ == "LLMCallEvent":
                    response = getattr(msg, "kwargs", {}).get("response")
                    if isinstance(response, dict):
                        capture.raw = response
        except Exception:  # never break AutoGen's logging
            logger.debug("a2a_llm_tracker: autogen event tap failed", exc_info=True)
        return record.levelno >= self._user_threshold()


# -- opt-in raw-usage tap on the inner openai.AsyncOpenAI instance ------------------------------------
class _TappedStream:
    """Proxy for an ``openai.AsyncStream`` that notes the usage chunk (AutoGen drops its details)."""

    def __init__(self, stream: Any, capture: _Capture) -> None:
        self._stream = stream
        self._capture = capture

    def __aiter__(self) -> _TappedStream:
        return self

    async def __anext__(self) -> Any:
        chunk = await self._stream.__anext__()
        try:
            usage = getattr(chunk, "usage", None)
            if usage is not None:
                self._capture.stream_usage = usage.model_dump()
            self._capture.stream_model = getattr(chunk, "model", None) or self._capture.stream_model
            self._capture.stream_id = getattr(chunk, "id", None) or self._capture.stream_id
        except Exception:
            logger.debug("a2a_llm_tracker: autogen usage tap failed on a chunk", exc_info=True)
        return chunk

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _attach_usage_tap(openai_client: Any) -> bool:
    """Wrap ``openai_client.chat.completions.create`` (and ``beta...parse``) on this instance only."""
    try:
        completions = openai_client.chat.completions
    except Exception:
        return False
    if getattr(completions.create, "_a2a_tapped", False):
        return True
    original = completions.create

    async def create(*args: Any, **kwargs: Any) -> Any:
        response = await original(*args, **kwargs)
        capture = _CAPTURE.get()
        if capture is None:
            return response
        if kwargs.get("stream"):
            return _TappedStream(response, capture)
        try:
            capture.raw = response.model_dump()
        except Exception:
            logger.debug("a2a_llm_tracker: autogen usage tap could not read a response", exc_info=True)
        return response

    create._a2a_tapped = True  # type: ignore[attr-defined]
    completions.create = create
    try:
        beta = openai_client.beta.chat.completions
        original_parse = beta.parse

        async def parse(*args: Any, **kwargs: Any) -> Any:
            response = await original_parse(*args, **kwargs)
            capture = _CAPTURE.get()
            if capture is not None:
                try:
                    capture.raw = response.model_dump()
                except Exception:
                    logger.debug("a2a_llm_tracker: autogen usage tap could not read a response", exc_info=True)
            return response

        beta.parse = parse
    except Exception:
        logger.debug("a2a_llm_tracker: no beta.chat.completions.parse to tap", exc_info=True)
    return True


# -- helpers ----------------------------------------------------------------------------------------
def _class_names(obj: Any) -> set[str]:
    return {cls.__name__ for cls in type(obj).__mro__}


def _unwrap(client: Any) -> Any:
    """Look through autogen_ext's ChatCompletionCache (and our own wrapper) to the real client."""
    seen = 0
    while seen < 8:
        names = _class_names(client)
        if "ChatCompletionCache" in names and hasattr(client, "client"):
            client = client.client
        elif isinstance(client, TrackedChatCompletionClient):
            client = client.inner_client
        else:
            return client
        seen += 1
    return client


def _provider_of(client: Any) -> str | None:
    names = _class_names(client)
    for cls_name, provider in _PROVIDERS:
        if cls_name in names:
            return provider
    return None


def _model_of(client: Any) -> str | None:
    try:
        config = client.dump_component().config
        model = config.get("model") if isinstance(config, Mapping) else None
        if isinstance(model, str) and model:
            return model
    except Exception:
        pass
    create_args = getattr(client, "_create_args", None)
    if isinstance(create_args, Mapping) and isinstance(create_args.get("model"), str):
        return create_args["model"]
    return None


def _runtime_agent() -> tuple[str, str] | None:
    """``(name, full id)`` of the AutoGen agent whose message handler is running, if any.

    Teams register participants as type ``f"{name}_{team_id}"`` with key ``team_id``.
    """
    try:
        agent = MessageHandlerContext.agent_id()
    except (RuntimeError, LookupError):
        return None
    type_, key = str(agent.type), str(agent.key)
    name = type_.removesuffix("_" + key) if key and key != "default" else type_
    return name or type_, f"{type_}/{key}"


def _as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _usage_from_raw(usage: Mapping[str, Any]) -> dict[str, Any] | None:
    """The event fields of an OpenAI-chat or Anthropic ``usage`` dict, read by the shared analyzers."""
    normalised = usage_from_raw(usage)
    if normalised is None:
        return None
    return {name: getattr(normalised, name) for name in TOKEN_FIELDS} | {
        "token_details": dict(normalised.token_details)}


def _drop_none(value: Any) -> Any:
    """An SDK ``model_dump()`` without the None fields the SDK adds (closer to what was received)."""
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


def _consistent(fields: dict[str, Any]) -> bool:
    inp, out = fields.get("input_tokens"), fields.get("output_tokens")
    if inp is not None and (fields.get("cached_input_tokens") or 0) + (fields.get("cache_write_tokens") or 0) > inp:
        return False
    return not (out is not None and (fields.get("reasoning_tokens") or 0) > out)


def _finish_reason(result: CreateResult) -> str | None:
    reason = getattr(result, "finish_reason", None)
    return str(reason) if reason is not None else None


@dataclass(slots=True)
class _Call:
    """What a tracked call knows before it starts (captured before the first await)."""

    ctx: contextvars.Context
    meter: Any
    agent_id: str | None
    metadata: dict[str, Any]
    model: str | None
    stream: bool
    started: float = field(default_factory=time.perf_counter)
    first_token: float | None = None
    capture: _Capture = field(default_factory=_Capture)


class TrackedChatCompletionClient(ChatCompletionClient, Component[TrackedChatCompletionClientConfig]):
    """Wrap any AutoGen ``ChatCompletionClient`` so each call is recorded once.

    Args:
        inner_client: the client that makes the calls (``OpenAIChatCompletionClient``,
            ``AnthropicChatCompletionClient``, ``ChatCompletionCache(...)`` ...).
        meter: where events go; None uses the global meter (``init_sync()``) at call time.
        agent_id: attribute every call to this agent. Without it: the ambient
            ``meter_context(agent_id=...)``, else the AutoGen agent whose handler makes the call
            (inside a team/runtime), else the Meter's defaults.
        provider: provider name for pricing (default: derived from the inner client's class).
        model: model name (default: the inner client's configured ``model``).
        usage_events: read cached/reasoning tokens and the served model of non-stream calls from
            AutoGen's ``LLMCallEvent`` (sets the ``autogen_core.events`` logger to INFO without
            printing anything new; see the module docstring).
        usage_tap: also read them for streams, by wrapping the inner OpenAI client's private
            ``openai.AsyncOpenAI`` instance (opt-in: relies on AutoGen internals).
        request_stream_usage: for OpenAI-family inner clients, add
            ``stream_options={"include_usage": True}`` to streamed calls that did not set it.

    Cache hits (``CreateResult.cached=True``, e.g. an inner ``ChatCompletionCache``) made no provider
    call: they are recorded with the cached result's tokens, ``cost_usd=0.0``
    (``price_id="llm-cache-hit"``) and ``metadata["cached"] = True``, so they are never billed twice.

    .. versionadded:: 0.1
    """

    component_type = "model"
    component_config_schema = TrackedChatCompletionClientConfig
    component_provider_override = "a2a_llm_tracker.integrations.autogen.TrackedChatCompletionClient"

    def __init__(self, inner_client: ChatCompletionClient, meter: Any = None, agent_id: str | None = None, *,
                 provider: str | None = None, model: str | None = None, usage_events: bool = True,
                 usage_tap: bool = False, request_stream_usage: bool = True) -> None:
        if not isinstance(inner_client, ChatCompletionClient):
            raise TypeError(f"TrackedChatCompletionClient wraps an autogen_core.models.ChatCompletionClient, "
                            f"got {type(inner_client).__name__}")
        if agent_id is not None and not isinstance(agent_id, str):
            raise TypeError(f"agent_id must be a str, got {type(agent_id).__name__}")
        if meter is not None and not callable(getattr(meter, "record", None)):
            raise TypeError(f"meter must be a Meter (or None for the global one), got {type(meter).__name__}")
        self.inner_client = inner_client
        self._meter = meter
        self._agent_id = agent_id
        self._usage_events = usage_events
        self._usage_tap = usage_tap
        self._request_stream_usage = request_stream_usage
        self._real = _unwrap(inner_client)
        self._provider_override, self._model_override = provider, model
        self._provider = provider or _provider_of(self._real)
        self._model = model or _model_of(self._real)
        self._openai_family = "BaseOpenAIChatCompletionClient" in _class_names(self._real)
        self._warned_no_meter = False
        if usage_events:
            _EventTap.install()
        if usage_tap:
            openai_client = getattr(self._real, "_client", None)
            if not (self._openai_family and openai_client is not None and _attach_usage_tap(openai_client)):
                logger.warning("a2a_llm_tracker: usage_tap=True needs an OpenAI-family inner client; "
                               "got %s, tap not attached", type(self._real).__name__)

    @property
    def meter(self) -> Any:
        """The meter given to the constructor (None: the global meter is used)."""
        return self._meter

    @property
    def agent_id(self) -> str | None:
        """The constructor's agent id, if any."""
        return self._agent_id

    # -- the two calls ---------------------------------------------------------------------------------
    async def create(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = [],
                     tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
                     json_output: bool | type[BaseModel] | None = None,
                     extra_create_args: Mapping[str, Any] = {},
                     cancellation_token: CancellationToken | None = None, **kwargs: Any) -> CreateResult:
        """Forward to the inner client's ``create`` and record one event."""
        call = self._begin(extra_create_args, stream=False)
        if call is None:
            return await self.inner_client.create(
                messages, tools=tools, tool_choice=tool_choice, json_output=json_output,
                extra_create_args=extra_create_args, cancellation_token=cancellation_token, **kwargs)
        token = _CAPTURE.set(call.capture)
        try:
            with adapter_scope(_FRAMEWORK):
                result = await self.inner_client.create(
                    messages, tools=tools, tool_choice=tool_choice, json_output=json_output,
                    extra_create_args=extra_create_args, cancellation_token=cancellation_token, **kwargs)
        except BaseException as exc:
            self._record_error(call, exc)
            raise
        finally:
            _CAPTURE.reset(token)
        self._record_result(call, result)
        return result

    def create_stream(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = [],
                      tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
                      json_output: bool | type[BaseModel] | None = None,
                      extra_create_args: Mapping[str, Any] = {},
                      cancellation_token: CancellationToken | None = None,
                      **kwargs: Any) -> AsyncGenerator[str | CreateResult, None]:
        """Forward to the inner client's ``create_stream``; record once when the final result passes
        (or once when the stream is abandoned, cancelled or fails)."""
        call = self._begin(extra_create_args, stream=True)
        if call is not None and self._should_request_usage(extra_create_args, kwargs):
            options = dict(extra_create_args.get("stream_options") or {})
            options["include_usage"] = True
            extra_create_args = {**extra_create_args, "stream_options": options}
        if call is None:
            return self.inner_client.create_stream(
                messages, tools=tools, tool_choice=tool_choice, json_output=json_output,
                extra_create_args=extra_create_args, cancellation_token=cancellation_token, **kwargs)
        with adapter_scope(_FRAMEWORK):  # a wrapper that starts work in create_stream itself must see it
            inner = self.inner_client.create_stream(
                messages, tools=tools, tool_choice=tool_choice, json_output=json_output,
                extra_create_args=extra_create_args, cancellation_token=cancellation_token, **kwargs)
        return self._tracked_stream(inner, call)

    async def _tracked_stream(self, inner: AsyncGenerator[str | CreateResult, None],
                              call: _Call) -> AsyncGenerator[str | CreateResult, None]:
        recorded = False
        iterator = inner.__aiter__()
        try:
            while True:
                # Claim the call and expose the capture only while the inner generator runs, so
                # neither ContextVar leaks into the consumer's context between chunks.
                token = _CAPTURE.set(call.capture)
                try:
                    with adapter_scope(_FRAMEWORK):
                        item = await iterator.__anext__()
                except StopAsyncIteration:
                    break
                finally:
                    _CAPTURE.reset(token)
                if isinstance(item, CreateResult):
                    if not recorded:
                        recorded = True
                        self._record_result(call, item)
                elif call.first_token is None:
                    call.first_token = time.perf_counter()
                yield item
        except GeneratorExit:
            if not recorded:
                recorded = True
                self._record_incomplete(call, None)
            raise
        except BaseException as exc:
            if not recorded:
                recorded = True
                if isinstance(exc, asyncio.CancelledError):
                    self._record_incomplete(call, exc)
                else:
                    self._record_error(call, exc)
            raise
        finally:
            if not recorded:  # ended without a CreateResult
                self._record_incomplete(call, None)
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:
                    logger.debug("a2a_llm_tracker: closing the inner AutoGen stream failed", exc_info=True)

    # -- recording ---------------------------------------------------------------------------------
    def _begin(self, extra_create_args: Mapping[str, Any], *, stream: bool) -> _Call | None:
        """Capture attribution before the first await; None when this call must not be recorded."""
        if export_suppressed() or current_adapter() is not None:
            return None  # the tracker's own export, or an outer adapter meters this call
        try:
            meter = resolve_meter(self._meter)
        except TrackerNotInitializedError:
            if not self._warned_no_meter:
                self._warned_no_meter = True
                logger.warning("a2a_llm_tracker: TrackedChatCompletionClient has no meter and no global meter "
                               "exists (call init_sync() or pass meter=); calls are not recorded")
            return None
        try:
            runtime = _runtime_agent()
            metadata: dict[str, Any] = {}
            if runtime is not None:
                metadata["autogen_agent"] = runtime[0]
                metadata["autogen_agent_id"] = runtime[1]
            # agent_id: constructor > ambient meter_context > AutoGen runtime agent > Meter defaults.
            agent_id = self._agent_id
            if agent_id is None and get_context().agent_id is None and runtime is not None:
                agent_id = runtime[0]
            model = extra_create_args.get("model") if isinstance(extra_create_args.get("model"), str) else None
            call = _Call(ctx=contextvars.copy_context(), meter=meter, agent_id=agent_id, metadata=metadata,
                         model=model or self._model, stream=stream)
        except Exception:
            if getattr(meter, "strict", False):
                raise
            logger.warning("a2a_llm_tracker: AutoGen adapter could not prepare a call", exc_info=True)
            return None
        check = getattr(meter, "check_budgets", None)
        if check is not None:
            try:
                check(agent_id=agent_id)
            except BudgetExceededError:
                raise
            except Exception:
                if getattr(meter, "strict", False):
                    raise
                logger.warning("a2a_llm_tracker: budget check failed", exc_info=True)
        return call

    def _should_request_usage(self, extra_create_args: Mapping[str, Any], kwargs: Mapping[str, Any]) -> bool:
        if not (self._request_stream_usage and self._openai_family):
            return False
        if "include_usage" in kwargs:  # the caller chose (note: AutoGen sends include_usage=True even for False)
            return False
        options = extra_create_args.get("stream_options")
        if isinstance(options, Mapping) and "include_usage" in options:
            return False
        configured = getattr(self._real, "_create_args", {}).get("stream_options")
        return not (isinstance(configured, Mapping) and "include_usage" in configured)

    def _base_fields(self, call: _Call) -> dict[str, Any]:
        now = time.perf_counter()
        fields: dict[str, Any] = {
            "provider": self._provider, "model": call.model, "operation": "chat", "stream": call.stream,
            "framework": _FRAMEWORK, "agent_id": call.agent_id, "metadata": dict(call.metadata),
            "latency_ms": (now - call.started) * 1000.0,
        }
        if call.first_token is not None:
            fields["time_to_first_token_ms"] = (call.first_token - call.started) * 1000.0
        return fields

    def _usage_fields(self, call: _Call, result: CreateResult) -> dict[str, Any]:
        cap = call.capture
        raw = cap.raw
        raw_usage = raw.get("usage") if isinstance(raw, dict) else None
        if not isinstance(raw_usage, dict) and isinstance(cap.stream_usage, dict):
            raw_usage = cap.stream_usage
        fields: dict[str, Any] = {}
        if isinstance(raw, dict):
            if isinstance(raw.get("model"), str):
                fields["response_model"] = raw["model"]
            if isinstance(raw.get("id"), str):
                fields["request_id"] = raw["id"]
        else:
            if cap.stream_model:
                fields["response_model"] = cap.stream_model
            if cap.stream_id:
                fields["request_id"] = cap.stream_id
        if isinstance(raw_usage, dict):
            normalised = _usage_from_raw(raw_usage)
            if normalised is not None and _consistent(normalised):
                fields.update(normalised)
                fields["raw_usage"] = _drop_none(raw_usage)
                fields["accuracy"] = "exact"
                return fields
        usage = getattr(result, "usage", None)
        prompt = _as_int(getattr(usage, "prompt_tokens", None))
        completion = _as_int(getattr(usage, "completion_tokens", None))
        if not prompt and not completion:
            # AutoGen fills 0/0 when the provider sent no usage (e.g. a stream without include_usage).
            fields["accuracy"] = "unknown"
            return fields
        fields.update(input_tokens=prompt, output_tokens=completion, accuracy="exact",
                      raw_usage={"prompt_tokens": prompt, "completion_tokens": completion})
        if self._provider in ("anthropic", "bedrock"):
            # AutoGen's prompt_tokens is Anthropic's input_tokens, which excludes cache reads/writes.
            fields["metadata"] = {**fields.get("metadata", {}), "input_may_exclude_cache": True}
        return fields

    def _record_result(self, call: _Call, result: CreateResult) -> None:
        try:
            fields = self._base_fields(call)
            fields["finish_reason"] = _finish_reason(result)
            if getattr(result, "cached", False):
                # A cache hit made no provider call: keep its tokens, bill nothing (same convention as
                # the LangChain adapter's LLM-cache hits).
                usage = getattr(result, "usage", None)
                prompt = _as_int(getattr(usage, "prompt_tokens", None))
                completion = _as_int(getattr(usage, "completion_tokens", None))
                if prompt or completion:
                    fields.update(input_tokens=prompt, output_tokens=completion, accuracy="exact")
                else:
                    fields["accuracy"] = "unknown"
                fields.update(input_cost_usd=0.0, output_cost_usd=0.0, cost_usd=0.0, cost_source="pricing",
                              price_id=_CACHE_HIT_PRICE_ID)
                fields["metadata"].update(cached=True, llm_cache_hit=True)
            else:
                usage_fields = self._usage_fields(call, result)
                extra_meta = usage_fields.pop("metadata", None)
                fields.update(usage_fields)
                if extra_meta:
                    fields["metadata"].update(extra_meta)
            self._emit(call, fields)
        except Exception:
            if getattr(call.meter, "strict", False):
                raise
            logger.warning("a2a_llm_tracker: AutoGen adapter could not record a call", exc_info=True)

    def _record_incomplete(self, call: _Call, exc: BaseException | None) -> None:
        """A stream that ended without its final CreateResult (abandoned, cancelled)."""
        try:
            fields = self._base_fields(call)
            fields["metadata"]["stream_incomplete"] = True
            cap = call.capture
            if isinstance(cap.stream_usage, dict):
                normalised = _usage_from_raw(cap.stream_usage)
                if normalised is not None and _consistent(normalised):
                    fields.update(normalised, raw_usage=_drop_none(cap.stream_usage), accuracy="exact")
            if "accuracy" not in fields:
                fields["accuracy"] = "unknown"
            if exc is not None:
                fields.update(status="error", error_type=type(exc).__name__, error_message=str(exc) or None)
            self._emit(call, fields)
        except Exception:
            if getattr(call.meter, "strict", False):
                raise
            logger.warning("a2a_llm_tracker: AutoGen adapter could not record a stream", exc_info=True)

    def _record_error(self, call: _Call, exc: BaseException) -> None:
        try:
            fields = self._base_fields(call)
            fields.update(status="error", error_type=type(exc).__name__, error_message=str(exc) or None,
                          accuracy="unknown")
            request_id = getattr(exc, "request_id", None)
            if isinstance(request_id, str):
                fields["request_id"] = request_id
            self._emit(call, fields)
        except Exception:
            if getattr(call.meter, "strict", False):
                raise
            logger.warning("a2a_llm_tracker: AutoGen adapter could not record an error", exc_info=True)

    @staticmethod
    def _emit(call: _Call, fields: dict[str, Any]) -> None:
        event = UsageEvent(**fields)
        # Record in the context captured when the call started, so an abandoned stream closed later
        # (by the event loop's async-generator finaliser) keeps the caller's attribution.
        call.ctx.run(call.meter.record, event)

    # -- forwarded members -----------------------------------------------------------------------------
    async def close(self) -> None:
        """Close the inner client."""
        await self.inner_client.close()

    def actual_usage(self) -> RequestUsage:
        """The inner client's ``actual_usage()``."""
        return self.inner_client.actual_usage()

    def total_usage(self) -> RequestUsage:
        """The inner client's ``total_usage()``."""
        return self.inner_client.total_usage()

    def count_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        """The inner client's ``count_tokens()``."""
        return self.inner_client.count_tokens(messages, tools=tools)

    def remaining_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        """The inner client's ``remaining_tokens()``."""
        return self.inner_client.remaining_tokens(messages, tools=tools)

    @property
    def capabilities(self) -> ModelCapabilities:  # type: ignore[override]
        """The inner client's (deprecated) ``capabilities``."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            value = self.inner_client.capabilities
        warnings.warn("capabilities is deprecated, use model_info instead", DeprecationWarning, stacklevel=2)
        return value

    @property
    def model_info(self) -> ModelInfo:
        """The inner client's ``model_info``."""
        return self.inner_client.model_info

    # -- serialisation -------------------------------------------------------------------------------
    def _to_config(self) -> TrackedChatCompletionClientConfig:
        return TrackedChatCompletionClientConfig(
            client=self.inner_client.dump_component(), agent_id=self._agent_id, provider=self._provider_override,
            model=self._model_override, usage_events=self._usage_events, usage_tap=self._usage_tap,
            request_stream_usage=self._request_stream_usage)

    @classmethod
    def _from_config(cls, config: TrackedChatCompletionClientConfig) -> TrackedChatCompletionClient:
        inner = ChatCompletionClient.load_component(config.client)
        return cls(inner, None, config.agent_id, provider=config.provider, model=config.model,
                   usage_events=config.usage_events, usage_tap=config.usage_tap,
                   request_stream_usage=config.request_stream_usage)

    def __repr__(self) -> str:
        return (f"TrackedChatCompletionClient({self.inner_client!r}, provider={self._provider!r}, "
                f"model={self._model!r}, agent_id={self._agent_id!r})")
