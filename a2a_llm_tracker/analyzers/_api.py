"""analyze_response, track_stream, accumulate, parse: the public face of the analyzers."""

from __future__ import annotations as _annotations

import logging
import time
from collections.abc import AsyncIterable, Iterable, Mapping
from enum import StrEnum
from typing import Any

from .._events import Usage, UsageEvent
from ..exceptions import ConfigurationError
from ._common import Analysis, Payload, as_str, is_mapping, payload, unknown_analysis
from .anthropic import parse_anthropic
from .bedrock import parse_bedrock_raw
from .cohere import parse_cohere
from .gemini import parse_gemini
from .groq import parse_groq
from .litellm import parse_litellm
from .mistral import parse_mistral
from .openai import parse_openai
from .streams import make_accumulator
from .together import parse_together
from .vertex import parse_vertex

__all__ = ["AsyncTrackedStream", "ResponseType", "TrackedStream", "accumulate", "analyze_response", "analyze_response_async", "build_event", "parse",
           "parse_stream", "track_stream"]

logger = logging.getLogger("a2a_llm_tracker")

_ATTRIBUTION = ("agent_id", "user_id", "session_id", "trace_id")
_MODEL_KEYS = ("model_id", "modelId", "model")


class ResponseType(StrEnum):
    """The wire format of a response passed to :func:`analyze_response`.

    The string forms (``"openai"``, ``"Anthropic"`` ...) are accepted case-insensitively.

    .. versionadded:: 0.1
    """

    OPENAI = "openai"
    GEMINI = "gemini"
    ANTHROPIC = "anthropic"
    COHERE = "cohere"
    MISTRAL = "mistral"
    GROQ = "groq"
    TOGETHER = "together"
    BEDROCK = "bedrock"
    VERTEX = "vertex"
    LITELLM = "litellm"

    @classmethod
    def coerce(cls, value: Any) -> ResponseType:
        """*value* as a ResponseType.

        Raises:
            ConfigurationError: not a ResponseType or one of its names/values.
        """
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            key = value.strip().lower()
            for member in cls:
                if key in (member.value, member.name.lower()):
                    return member
        valid = ", ".join(m.value for m in cls)
        raise ConfigurationError(f"unknown response_type {value!r}; expected a ResponseType or one of: {valid}")

    def __str__(self) -> str:
        return self.value


_PARSERS = {
    ResponseType.OPENAI: parse_openai,
    ResponseType.ANTHROPIC: parse_anthropic,
    ResponseType.GEMINI: parse_gemini,
    ResponseType.COHERE: parse_cohere,
    ResponseType.MISTRAL: parse_mistral,
    ResponseType.GROQ: parse_groq,
    ResponseType.TOGETHER: parse_together,
    ResponseType.VERTEX: parse_vertex,
    ResponseType.LITELLM: parse_litellm,
}
_PROVIDERS = {ResponseType.VERTEX: "vertex_ai"}


def _provider_of(rtype: ResponseType) -> str:
    return _PROVIDERS.get(rtype, rtype.value)


# -- parsing -----------------------------------------------------------------------------------------------
def parse(response: Any, response_type: ResponseType | str, *, strict: bool = False) -> Analysis:
    """Read one provider response (dict or SDK object) into an :class:`Analysis`, without a Meter.

    A list of chunks is read as a whole stream. Never raises on odd input unless *strict*;
    an unreadable payload gives ``readable=False`` and empty usage.

    Raises:
        ConfigurationError: *response_type* is not a known :class:`ResponseType`.
    """
    rtype = ResponseType.coerce(response_type)
    try:
        return _parse(response, rtype)
    except Exception as exc:
        if strict:
            raise
        return unknown_analysis(_provider_of(rtype), f"analyzer failed ({type(exc).__name__}: {exc})"[:300])


def _parse(response: Any, rtype: ResponseType) -> Analysis:
    if response is None:
        return unknown_analysis(_provider_of(rtype), "the response is None")
    if isinstance(response, BaseException):
        return _parse_exception(response, rtype)
    if rtype is ResponseType.BEDROCK:
        return parse_bedrock_raw(response)
    if isinstance(response, list | tuple):
        return parse_stream(response, rtype)
    if isinstance(response, str | bytes | bytearray):
        return _parse_text(response, rtype)
    if not isinstance(response, Mapping) and _is_iterator(response):
        return unknown_analysis(_provider_of(rtype), f"got a stream ({type(response).__name__}); pass it to "
                                "track_stream() instead so its chunks reach you unchanged")
    p = payload(response)
    if not is_mapping(p.data):
        return unknown_analysis(_provider_of(rtype), f"cannot read a {type(response).__name__} as a response")
    return _PARSERS[rtype](p)


def _is_iterator(obj: Any) -> bool:
    if hasattr(obj, "model_dump") or hasattr(obj, "to_dict"):
        return False
    return hasattr(obj, "__next__") or hasattr(obj, "__anext__")


def _parse_text(text: str | bytes | bytearray, rtype: ResponseType) -> Analysis:
    import json

    try:
        data = json.loads(text)
    except ValueError:
        return unknown_analysis(_provider_of(rtype), "the response is a string that is not JSON")
    return _parse(data, rtype) if isinstance(data, Mapping | list) else unknown_analysis(
        _provider_of(rtype), "the response JSON is not an object")


def _parse_exception(exc: BaseException, rtype: ResponseType) -> Analysis:
    """An SDK error (openai/anthropic/groq APIStatusError, google-genai APIError, botocore ClientError)."""
    provider = _provider_of(rtype)
    if rtype is ResponseType.BEDROCK:
        return parse_bedrock_raw(exc)
    body = getattr(exc, "body", None)
    if not is_mapping(body):
        body = getattr(exc, "details", None)  # google-genai APIError keeps the JSON body here
    request_id = as_str(getattr(exc, "request_id", None))
    status = getattr(exc, "status_code", None) or getattr(exc, "code", None)
    analysis: Analysis | None = None
    if is_mapping(body):
        data = dict(body)
        if "error" not in data and rtype not in (ResponseType.COHERE, ResponseType.MISTRAL):
            data = {"error": data}  # openai-python passes the inner "error" object as .body
        if rtype in (ResponseType.ANTHROPIC, ResponseType.VERTEX) and "type" not in data:
            data["type"] = "error"
        parsed = _PARSERS[rtype](Payload(data, request_id=request_id))
        if parsed.status == "error":
            analysis = parsed
    if analysis is None:
        analysis = Analysis(provider=provider, status="error", error_type=type(exc).__name__,
                            error_message=as_str(str(exc), 2000), request_id=request_id)
    if isinstance(status, int) and not isinstance(status, bool):
        analysis = analysis.with_(metadata={**analysis.metadata, "http_status": status})
    return analysis.with_(provider=analysis.provider or provider)


def parse_stream(chunks: Iterable[Any], response_type: ResponseType | str) -> Analysis:
    """Read a whole stream (any iterable of chunks) into one :class:`Analysis`."""
    rtype = ResponseType.coerce(response_type)
    accumulator = make_accumulator(rtype.value)
    for chunk in chunks:
        accumulator.add(chunk)
    return accumulator.result()


def accumulate(chunks: Iterable[Any], response_type: ResponseType | str) -> Usage:
    """The normalised :class:`Usage` of a stream's chunks, by the provider's stream rule (no Meter).

    Example::

        usage = accumulate(chunks, "anthropic")
        usage.input_tokens, usage.output_tokens

    .. versionadded:: 0.1
    """
    return parse_stream(chunks, response_type).usage


# -- building events -------------------------------------------------------------------------------------------
def _check_args(metadata: Any, attribution: Mapping[str, Any], model_override: Any, latency_ms: Any) -> None:
    if metadata is not None and not isinstance(metadata, Mapping):
        raise ConfigurationError(f"metadata must be a dict, got {type(metadata).__name__}")
    for name, value in attribution.items():
        if value is not None and not isinstance(value, str):
            raise ConfigurationError(f"{name} must be a str, got {type(value).__name__}")
    if model_override is not None and not isinstance(model_override, str):
        raise ConfigurationError(f"model_override must be a str, got {type(model_override).__name__}")
    if latency_ms is not None and (isinstance(latency_ms, bool) or not isinstance(latency_ms, int | float)
                                   or not latency_ms >= 0 or latency_ms == float("inf")):
        raise ConfigurationError(f"latency_ms must be a non-negative number, got {latency_ms!r}")


def build_event(analysis: Analysis, response_type: ResponseType | str, *, model_override: str | None = None,
                latency_ms: float | None = None, time_to_first_token_ms: float | None = None,
                metadata: Mapping[str, Any] | None = None, **attribution: Any) -> UsageEvent:
    """Turn an :class:`Analysis` into a valid :class:`UsageEvent` (explicit arguments win)."""
    rtype = ResponseType.coerce(response_type)
    extra = dict(metadata or {})
    model = model_override or analysis.model
    if model is None:
        for key in _MODEL_KEYS:
            if isinstance(extra.get(key), str) and extra[key]:
                model = extra[key]
                break
    fields: dict[str, Any] = analysis.usage.event_fields()
    fields.update(
        provider=analysis.provider or (None if rtype is ResponseType.LITELLM else _provider_of(rtype)), model=model, response_model=analysis.response_model,
        operation=analysis.operation, stream=analysis.stream, status=analysis.status,
        error_type=analysis.error_type, error_message=analysis.error_message,
        latency_ms=latency_ms if latency_ms is not None else analysis.latency_ms,
        time_to_first_token_ms=time_to_first_token_ms, request_id=analysis.request_id,
        finish_reason=analysis.finish_reason, metadata={**analysis.metadata, **extra},
        **{k: v for k, v in attribution.items() if v is not None})
    if analysis.cost_usd is not None:
        fields.update(cost_usd=analysis.cost_usd, cost_source="provider")
    try:
        return UsageEvent(**fields)
    except ValueError as exc:  # never expected: the analyzers keep the contract; stay safe anyway
        logger.warning("a2a_llm_tracker: %s analysis gave an invalid event (%s); recording without usage",
                       rtype.value, str(exc).splitlines()[0][:200])
        for name in ("input_tokens", "output_tokens", "total_tokens", "cached_input_tokens", "cache_write_tokens",
                     "reasoning_tokens", "raw_usage", "cost_usd", "cost_source"):
            fields[name] = None
        fields.update(token_details={}, accuracy="unknown")
        try:
            return UsageEvent(**fields)
        except ValueError:
            fields["metadata"] = {}
            return UsageEvent(**fields)


def _log(analysis: Analysis, rtype: ResponseType) -> None:
    if not analysis.warnings and analysis.status == "ok" and analysis.usage.is_empty:
        analysis = analysis.with_(warnings=("no token counts found in the response",))
    if not analysis.warnings:
        return
    if not analysis.readable or analysis.usage.is_empty and analysis.status == "ok":
        logger.warning("a2a_llm_tracker: %s response without readable usage (recorded with accuracy=unknown): %s",
                       rtype.value, "; ".join(analysis.warnings)[:500])
    else:
        logger.warning("a2a_llm_tracker: %s response: %s", rtype.value, "; ".join(analysis.warnings)[:500])


def _resolve_meter(meter: Any) -> Any:
    if meter is None:
        from .._setup import resolve_meter

        return resolve_meter(None)
    if not callable(getattr(meter, "record", None)) or not callable(getattr(meter, "prepare", None)):
        raise ConfigurationError(f"meter must be a Meter, got {type(meter).__name__}")
    return meter


def analyze_response(response: Any, response_type: ResponseType | str, meter: Any = None, *,
                     model_override: str | None = None, latency_ms: float | None = None,
                     agent_id: str | None = None, user_id: str | None = None, session_id: str | None = None,
                     trace_id: str | None = None, metadata: Mapping[str, Any] | None = None,
                     record: bool = True) -> UsageEvent:
    """Read usage from a provider response you got yourself and record it.

    Args:
        response: the provider's response: the JSON dict or the SDK object (openai, anthropic,
            google-genai, google-generativeai, cohere, mistralai, groq, together, boto3 dict,
            LiteLLM ``ModelResponse``), an SDK error, or a list of stream chunks.
        response_type: a :class:`ResponseType` or its string form (``"openai"``).
        meter: the Meter that prices and records the event (default: the global meter).
        model_override: the model you requested (Cohere and Bedrock Converse responses name none).
        latency_ms: request latency you measured.
        agent_id, user_id, session_id, trace_id: attribution; they win over the ambient
            :func:`meter_context` and the Meter defaults.
        metadata: extra metadata (wins over what the analyzer found). For Bedrock Converse,
            ``metadata={"model_id": "..."}`` also names the model.
        record: False analyses and prices without writing to the sinks.

    Returns:
        The event as recorded (attributed and priced). An error body gives ``status="error"``;
        a payload without readable usage gives ``accuracy="unknown"`` and one logged warning.

    Raises:
        ConfigurationError: a wrong argument (unknown response_type, metadata not a dict ...).
            Odd *responses* never raise unless ``meter.strict``.

    .. versionadded:: 0.1
    """
    rtype = ResponseType.coerce(response_type)
    meter = _resolve_meter(meter)
    attribution = {"agent_id": agent_id, "user_id": user_id, "session_id": session_id, "trace_id": trace_id}
    _check_args(metadata, attribution, model_override, latency_ms)
    strict = bool(getattr(meter, "strict", False))
    analysis = parse(response, rtype, strict=strict)
    if strict and not analysis.readable:
        raise ValueError(f"cannot read the {rtype.value} response: {'; '.join(analysis.warnings)}")
    _log(analysis, rtype)
    event = build_event(analysis, rtype, model_override=model_override, latency_ms=latency_ms, metadata=metadata,
                        agent_id=agent_id, user_id=user_id, session_id=session_id, trace_id=trace_id)
    return _record(meter, event, record)


def _record(meter: Any, event: UsageEvent, record: bool) -> UsageEvent:
    try:
        return meter.record(event) if record else meter.prepare(event)
    except Exception:
        if getattr(meter, "strict", False):
            raise
        logger.warning("a2a_llm_tracker: recording the analyzed response failed", exc_info=True)
        return event


async def analyze_response_async(response: Any, response_type: ResponseType | str, meter: Any = None, *,
                                 model_override: str | None = None, latency_ms: float | None = None,
                                 agent_id: str | None = None, user_id: str | None = None,
                                 session_id: str | None = None, trace_id: str | None = None,
                                 metadata: Mapping[str, Any] | None = None, record: bool = True) -> UsageEvent:
    """:func:`analyze_response` for async code (same arguments; never blocks the event loop:
    recording only enqueues the event for the background writer).

    .. versionadded:: 0.1
    """
    return analyze_response(response, response_type, meter, model_override=model_override, latency_ms=latency_ms,
                            agent_id=agent_id, user_id=user_id, session_id=session_id, trace_id=trace_id,
                            metadata=metadata, record=record)


# -- streams -----------------------------------------------------------------------------------------------------
class _StreamRecorder:
    """Shared bookkeeping of the sync and async stream wrappers: records exactly once."""

    def __init__(self, response_type: ResponseType, meter: Any, options: dict[str, Any]) -> None:
        self.rtype = response_type
        self.meter = meter
        self.options = options
        self.accumulator = make_accumulator(response_type.value)
        self.started = time.perf_counter()
        self.first_chunk: float | None = None
        self.event: UsageEvent | None = None
        self.done = False

    def add(self, chunk: Any) -> None:
        if self.first_chunk is None:
            self.first_chunk = time.perf_counter()
        self.accumulator.add(chunk)

    def finish(self, error: BaseException | None = None, *, incomplete: bool = False) -> UsageEvent | None:
        if self.done:
            return self.event
        self.done = True
        try:
            analysis = self.accumulator.result()
            if error is not None:
                analysis = analysis.with_(status="error", error_type=type(error).__name__,
                                          error_message=as_str(str(error), 2000) or type(error).__name__)
            if incomplete:
                analysis = analysis.with_(metadata={**analysis.metadata, "stream_incomplete": True})
            if error is None and not incomplete:
                _log(analysis, self.rtype)
            now = time.perf_counter()
            options = dict(self.options)
            record = options.pop("record", True)
            latency = options.pop("latency_ms", None)
            ttft = (self.first_chunk - self.started) * 1000 if self.first_chunk is not None else None
            event = build_event(analysis, self.rtype, latency_ms=latency if latency is not None
                                else (now - self.started) * 1000, time_to_first_token_ms=ttft, **options)
            self.event = _record(self.meter, event, record)
        except Exception:
            if getattr(self.meter, "strict", False):
                raise
            logger.warning("a2a_llm_tracker: recording the %s stream failed", self.rtype.value, exc_info=True)
        return self.event


class _StreamProxy:
    """What both stream wrappers share: attribute pass-through and a finalizer that records once."""

    def __init__(self, stream: Any, recorder: _StreamRecorder) -> None:
        self._stream = stream
        self._recorder = recorder
        self._iterator: Any = None

    @property
    def usage_event(self) -> UsageEvent | None:
        """The recorded event (None until the stream has ended)."""
        return self._recorder.event

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_stream", "_recorder", "_iterator"):
            raise AttributeError(name)
        return getattr(self._stream, name)

    def __del__(self) -> None:
        try:
            recorder = self.__dict__.get("_recorder")
            if recorder is not None and not recorder.done:
                recorder.finish(incomplete=True)
        except Exception:  # pragma: no cover - never raise from a finalizer
            pass


class TrackedStream(_StreamProxy):
    """Wraps a sync stream: yields every chunk unchanged, records one event when it ends.

    It also ends (and records) on ``close()``, on leaving a ``with`` block, when the stream
    raises, or when the wrapper is garbage-collected before the end. Other attributes are
    passed through to the wrapped stream. ``usage_event`` is the recorded event once done.
    """

    def __iter__(self) -> TrackedStream:
        return self

    def __next__(self) -> Any:
        if self._iterator is None:
            self._iterator = iter(self._stream)
        try:
            chunk = next(self._iterator)
        except StopIteration:
            self._recorder.finish()
            raise
        except BaseException as exc:
            self._recorder.finish(exc)
            raise
        self._recorder.add(chunk)
        return chunk

    def close(self) -> None:
        """Close the wrapped stream (if it can be closed) and record what was seen."""
        try:
            closer = getattr(self._stream, "close", None)
            if callable(closer):
                closer()
        finally:
            self._recorder.finish(incomplete=not self._recorder.done)

    def __enter__(self) -> TrackedStream:
        enter = getattr(self._stream, "__enter__", None)
        if callable(enter):
            enter()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        exit_ = getattr(self._stream, "__exit__", None)
        try:
            if callable(exit_):
                exit_(*exc_info)
            else:
                closer = getattr(self._stream, "close", None)
                if callable(closer):
                    closer()
        finally:
            self._recorder.finish(incomplete=not self._recorder.done)


class AsyncTrackedStream(_StreamProxy):
    """The async twin of :class:`TrackedStream` (``async for``, ``aclose()``, ``async with``)."""

    def __aiter__(self) -> AsyncTrackedStream:
        return self

    async def __anext__(self) -> Any:
        if self._iterator is None:
            self._iterator = self._stream.__aiter__()
        try:
            chunk = await self._iterator.__anext__()
        except StopAsyncIteration:
            self._recorder.finish()
            raise
        except BaseException as exc:
            self._recorder.finish(exc)
            raise
        self._recorder.add(chunk)
        return chunk

    async def aclose(self) -> None:
        """Close the wrapped stream (if it can be closed) and record what was seen."""
        try:
            closer = getattr(self._stream, "aclose", None) or getattr(self._stream, "close", None)
            if callable(closer):
                result = closer()
                if hasattr(result, "__await__"):
                    await result
        finally:
            self._recorder.finish(incomplete=not self._recorder.done)

    async def __aenter__(self) -> AsyncTrackedStream:
        enter = getattr(self._stream, "__aenter__", None)
        if callable(enter):
            await enter()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            exit_ = getattr(self._stream, "__aexit__", None)
            if callable(exit_):
                await exit_(*exc_info)
            else:
                await self.aclose()
        finally:
            self._recorder.finish(incomplete=not self._recorder.done)



def track_stream(stream: Iterable[Any] | AsyncIterable[Any], response_type: ResponseType | str, meter: Any = None,
                 *, model_override: str | None = None, agent_id: str | None = None, user_id: str | None = None,
                 session_id: str | None = None, trace_id: str | None = None,
                 metadata: Mapping[str, Any] | None = None, latency_ms: float | None = None,
                 record: bool = True) -> TrackedStream | AsyncTrackedStream:
    """Wrap a provider stream so its usage is recorded once, when it ends.

    Works with sync iterables (``for chunk in track_stream(...)``) and async ones (``async for``),
    and as a (async) context manager. Every chunk is yielded unchanged. Latency is measured from
    this call to the end of the stream, time to first token to the first chunk.

    Example::

        stream = client.chat.completions.create(model="gpt-4.1", messages=msgs, stream=True,
                                                stream_options={"include_usage": True})
        for chunk in track_stream(stream, ResponseType.OPENAI, meter, agent_id="planner"):
            ...

    Raises:
        ConfigurationError: a wrong argument, or *stream* is not iterable (e.g. an un-awaited
            coroutine).

    .. versionadded:: 0.1
    """
    rtype = ResponseType.coerce(response_type)
    meter = _resolve_meter(meter)
    attribution = {"agent_id": agent_id, "user_id": user_id, "session_id": session_id, "trace_id": trace_id}
    _check_args(metadata, attribution, model_override, latency_ms)
    options: dict[str, Any] = {"model_override": model_override, "metadata": metadata, "latency_ms": latency_ms,
                               "record": record, **attribution}
    recorder = _StreamRecorder(rtype, meter, options)
    if hasattr(stream, "__aiter__"):
        return AsyncTrackedStream(stream, recorder)
    if hasattr(stream, "__iter__") and not isinstance(stream, str | bytes | Mapping):
        return TrackedStream(stream, recorder)
    if hasattr(stream, "__await__"):
        raise ConfigurationError("track_stream got an awaitable: await the SDK call first, then wrap the stream")
    raise ConfigurationError(f"track_stream needs an iterable of chunks, got {type(stream).__name__}")

