"""Stream accumulators: one per provider stream rule.

Each accumulator takes the chunks a provider SDK yields (dicts or SDK objects) and produces one
:class:`Analysis` at the end. ``add`` is cheap: it keeps references to the few chunks that carry
usage or a finish reason and converts only those when the stream ends.

Rules (see ``docs/analyze_response.md``):

* OpenAI Chat: usage only in the final chunk whose ``choices`` is empty, and only with
  ``stream_options={"include_usage": True}``; without it the usage stays None (not 0).
* OpenAI Responses: usage only in the terminal ``response.completed`` / ``response.incomplete`` /
  ``response.failed`` event.
* Anthropic (and Bedrock InvokeModel stream, Vertex streamRawPredict): input and cache counts in
  ``message_start``; ``message_delta.usage`` is cumulative and final and *replaces* the
  placeholder output count (never added); the 5m/1h cache split comes from ``message_start``.
* Gemini: every chunk carries cumulative ``usageMetadata``: the last one wins, never summed.
* Bedrock ConverseStream: usage only in the final ``metadata`` event; InvokeModel streams end
  with ``amazon-bedrock-invocationMetrics``.
* Cohere: v1 ``stream-end`` (``response.meta``), v2 ``message-end`` (``delta.usage``).
* Mistral, Groq (also ``x_groq.usage``), Together, LiteLLM: the final chunk carries usage.
"""

from __future__ import annotations as _annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from ._common import Analysis, Payload, dig, get, is_mapping, to_plain
from .anthropic import parse_anthropic_message
from .bedrock import PROVIDER as BEDROCK
from .bedrock import converse_analysis
from .cohere import parse_cohere_response
from .gemini import parse_gemini_response
from .groq import parse_groq
from .litellm import parse_litellm
from .mistral import parse_mistral
from .openai import error_analysis, parse_openai
from .together import parse_together

__all__ = ["Accumulator", "AnthropicStream", "BedrockStream", "CohereStream", "GeminiStream", "OpenAIStream",
           "VertexStream"]

_TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def _first_choice(chunk: Any) -> Any:
    choices = get(chunk, "choices")
    try:
        return choices[0] if choices else None
    except Exception:
        return None


class Accumulator:
    """Base class: ``add(chunk)`` for every chunk, then ``result()`` once."""

    provider: str | None = None

    def __init__(self) -> None:
        self.chunks = 0
        self._problems: list[str] = []

    def add(self, chunk: Any) -> None:
        """Take one chunk (never raises; odd chunks are noted and skipped)."""
        self.chunks += 1
        try:
            self._add(chunk)
        except Exception as exc:  # a malformed chunk must not break the user's stream
            if len(self._problems) < 3:
                self._problems.append(f"skipped a chunk ({type(exc).__name__})")

    def _add(self, chunk: Any) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def result(self) -> Analysis:
        """The analysis of everything added so far (stream=True)."""
        try:
            analysis = self._result()
        except Exception as exc:
            analysis = Analysis(provider=self.provider, readable=False,
                                warnings=(f"could not read the stream ({type(exc).__name__})",))
        if self.chunks == 0:
            analysis = analysis.with_(warnings=(*analysis.warnings, "the stream yielded no chunks"))
        if self._problems:
            analysis = analysis.with_(warnings=(*analysis.warnings, *self._problems))
        return analysis.with_(stream=True)

    def _result(self) -> Analysis:  # pragma: no cover - overridden
        raise NotImplementedError


class OpenAIStream(Accumulator):
    """OpenAI Chat Completions and Responses streams, and the OpenAI-compatible providers."""

    def __init__(self, provider: str = "openai", parse: Callable[[Payload], Analysis] = parse_openai,
                 hint: str = "pass stream_options={'include_usage': True} to get usage in OpenAI streams") -> None:
        super().__init__()
        self.provider = provider
        self._parse = parse
        self._hint = hint
        self._first: Any = None
        self._usage_chunk: Any = None
        self._groq_usage: Any = None
        self._groq_id: Any = None
        self._finish: Any = None
        self._error: Any = None
        self._created: Any = None  # Responses: response.created payload
        self._final: Any = None  # Responses: terminal response payload
        self._final_type: str | None = None
        self._hidden: Any = None

    def _add(self, chunk: Any) -> None:
        kind = get(chunk, "type")
        if isinstance(kind, str) and kind.startswith("response."):
            if kind in _TERMINAL:
                self._final, self._final_type = get(chunk, "response"), kind
            elif kind == "response.created":
                self._created = get(chunk, "response")
            return
        if kind == "error" and get(chunk, "choices") is None:
            self._error = chunk
            return
        if self._first is None:
            self._first = chunk
        if get(chunk, "usage") is not None:
            self._usage_chunk = chunk
        x_groq = get(chunk, "x_groq")
        if x_groq is not None:
            self._groq_id = get(x_groq, "id") or self._groq_id
            if get(x_groq, "usage") is not None:
                self._groq_usage = get(x_groq, "usage")
        choice = _first_choice(chunk)
        if choice is not None:
            reason = get(choice, "finish_reason")
            if reason is not None:
                self._finish = reason
        if get(chunk, "error") is not None and choice is None:
            self._error = chunk
        if self.provider == "litellm" and not isinstance(chunk, Mapping):
            hidden = getattr(chunk, "_hidden_params", None)
            if isinstance(hidden, Mapping) and hidden:
                self._hidden = hidden

    def _result(self) -> Analysis:
        if self._error is not None:
            err = to_plain(self._error)
            inner = get(err, "error") if is_mapping(get(err, "error")) else err
            return error_analysis(self.provider or "openai", inner)
        if self._final is not None or self._created is not None:
            response = to_plain(self._final if self._final is not None else self._created)
            analysis = self._parse(Payload(response))
            if self._final is None:
                analysis = analysis.with_(warnings=(*analysis.warnings,
                                                    "the Responses stream ended before response.completed"))
            return analysis
        head = to_plain(self._first) if self._first is not None else {}
        tail = to_plain(self._usage_chunk) if self._usage_chunk is not None else {}
        head = head if is_mapping(head) else {}
        tail = tail if is_mapping(tail) else {}
        body: dict[str, Any] = {"object": "chat.completion"}
        for key in ("id", "model", "service_tier", "system_fingerprint"):
            value = get(tail, key) or get(head, key)
            if value is not None:
                body[key] = value
        body["choices"] = [{"index": 0, "finish_reason": to_plain(self._finish)}]
        usage = get(tail, "usage")
        if usage is not None:
            body["usage"] = usage
        if self._groq_id is not None or self._groq_usage is not None:
            body["x_groq"] = {"id": to_plain(self._groq_id), "usage": to_plain(self._groq_usage)}
        analysis = self._parse(Payload(body, hidden=self._hidden))
        if usage is None and self._groq_usage is None:
            warnings = tuple(w for w in analysis.warnings if "no usage" not in w)
            analysis = analysis.with_(warnings=(*warnings, f"the stream carried no usage ({self._hint})"))
        return analysis


def _merge_usage(base: dict[str, Any], update: Any) -> None:
    if not is_mapping(update):
        return
    for key, value in update.items():
        if value is not None:
            base[str(key)] = value


class AnthropicStream(Accumulator):
    """Anthropic Messages SSE events (message_start + cumulative message_delta)."""

    def __init__(self, provider: str = "anthropic") -> None:
        super().__init__()
        self.provider = provider
        self._message: Any = None
        self._usage: dict[str, Any] = {}
        self._stop: Any = None
        self._error: Any = None
        self.seen = False

    def _add(self, chunk: Any) -> None:
        kind = get(chunk, "type")
        if kind == "message_start":
            self.seen = True
            self._message = get(chunk, "message")
            _merge_usage(self._usage, to_plain(get(self._message, "usage")))
        elif kind == "message_delta":
            self.seen = True
            _merge_usage(self._usage, to_plain(get(chunk, "usage")))  # cumulative: replaces, never adds
            stop = get(get(chunk, "delta"), "stop_reason")
            if stop is not None:
                self._stop = stop
        elif kind == "error":
            self.seen = True
            self._error = chunk

    def use_totals(self, metrics: Any) -> None:
        """Let Bedrock's ``amazon-bedrock-invocationMetrics`` override the input/output/cache counts."""
        plain = to_plain(metrics)
        for source, target in (("inputTokenCount", "input_tokens"), ("outputTokenCount", "output_tokens"),
                               ("cacheReadInputTokenCount", "cache_read_input_tokens"),
                               ("cacheWriteInputTokenCount", "cache_creation_input_tokens")):
            value = get(plain, source)
            if value is not None:
                self._usage[target] = value

    def _result(self) -> Analysis:
        if self._error is not None:
            return parse_anthropic_message(to_plain(self._error), provider=self.provider or "anthropic",
                                           stream=True)
        message = to_plain(self._message) if self._message is not None else {}
        message = dict(message) if is_mapping(message) else {}
        if self._usage:
            message["usage"] = self._usage
        if self._stop is not None:
            message["stop_reason"] = to_plain(self._stop)
        return parse_anthropic_message(message, provider=self.provider or "anthropic", stream=True)


class GeminiStream(Accumulator):
    """Gemini streamGenerateContent chunks (cumulative usageMetadata: the last one wins)."""

    def __init__(self, provider: str = "gemini") -> None:
        super().__init__()
        self.provider = provider
        self._last: Any = None
        self._last_usage: Any = None
        self._last_finish: Any = None
        self._error: Any = None

    def _add(self, chunk: Any) -> None:
        if get(chunk, "error") is not None:
            self._error = chunk
            return
        self._last = chunk
        if get(chunk, "usageMetadata") is not None or get(chunk, "usage_metadata") is not None:
            self._last_usage = chunk
        candidate = _first_choice_of(chunk)
        if candidate is not None and (get(candidate, "finishReason") or get(candidate, "finish_reason")):
            self._last_finish = chunk

    def _result(self) -> Analysis:
        if self._error is not None:
            return parse_gemini_response(to_plain(self._error), provider=self.provider or "gemini", stream=True)
        last = _plain_map(self._last)
        usage_chunk = _plain_map(self._last_usage) if self._last_usage is not self._last else last
        finish_chunk = _plain_map(self._last_finish) if self._last_finish is not self._last else last
        body: dict[str, Any] = {}
        for camel, snake in (("modelVersion", "model_version"), ("responseId", "response_id"),
                             ("promptFeedback", "prompt_feedback")):
            value = get(last, camel) or get(last, snake) or get(usage_chunk, camel) or get(usage_chunk, snake)
            if value is not None:
                body[camel] = value
        meta = get(usage_chunk, "usageMetadata") or get(usage_chunk, "usage_metadata")
        if meta is not None:
            body["usageMetadata"] = meta
        candidate = dig(finish_chunk, "candidates", 0)
        if is_mapping(candidate):
            body["candidates"] = [{k: v for k, v in candidate.items() if k != "content"}]
        return parse_gemini_response(body, provider=self.provider or "gemini", stream=True)


def _first_choice_of(chunk: Any) -> Any:
    candidates = get(chunk, "candidates")
    try:
        return candidates[0] if candidates else None
    except Exception:
        return None


def _plain_map(chunk: Any) -> dict[str, Any]:
    plain = to_plain(chunk) if chunk is not None else None
    return dict(plain) if is_mapping(plain) else {}


class VertexStream(Accumulator):
    """Vertex streams: Anthropic events (streamRawPredict) or Gemini chunks, picked by the first chunk."""

    def __init__(self) -> None:
        super().__init__()
        self.provider = "vertex_ai"
        self._inner: Accumulator | None = None

    def _add(self, chunk: Any) -> None:
        if self._inner is None:
            kind = get(chunk, "type")
            anthropic = isinstance(kind, str) and (kind.startswith("message") or kind.startswith("content_block")
                                                   or kind in ("ping", "error"))
            self._inner = AnthropicStream("vertex_ai") if anthropic else GeminiStream("vertex_ai")
        self._inner.add(chunk)

    def _result(self) -> Analysis:
        if self._inner is None:
            return Analysis(provider=self.provider, readable=False)
        return self._inner.result()


class BedrockStream(Accumulator):
    """Bedrock ConverseStream events, or InvokeModelWithResponseStream ``{"chunk": {"bytes"}}`` events."""

    def __init__(self) -> None:
        super().__init__()
        self.provider = BEDROCK
        self._anthropic = AnthropicStream(BEDROCK)
        self._metrics: Any = None
        self._metadata: Any = None
        self._stop: Any = None
        self._error: Any = None

    def _add(self, chunk: Any) -> None:
        inner = get(chunk, "chunk")
        if inner is not None:
            raw = get(inner, "bytes")
            event = json.loads(raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw)
            metrics = get(event, "amazon-bedrock-invocationMetrics")
            if metrics is not None:
                self._metrics = metrics
            self._anthropic.add(event)
            return
        if get(chunk, "metadata") is not None:
            self._metadata = get(chunk, "metadata")
        stop = get(get(chunk, "messageStop"), "stopReason")
        if stop is not None:
            self._stop = stop
        if is_mapping(chunk):
            for key, value in chunk.items():
                if str(key).endswith("Exception"):
                    self._error = (key, value)

    def _result(self) -> Analysis:
        if self._error is not None:
            key, value = self._error
            return Analysis(provider=BEDROCK, status="error", error_type=str(key)[0].upper() + str(key)[1:],
                            error_message=str(get(value, "message") or "")[:2000] or None)
        if self._anthropic.seen:
            if is_mapping(self._metrics):
                # Bedrock bills what invocationMetrics says; the Anthropic events keep the details.
                self._anthropic.use_totals(self._metrics)
            return self._anthropic.result()
        meta = to_plain(self._metadata) if self._metadata is not None else {}
        body = {"usage": get(meta, "usage"), "stopReason": to_plain(self._stop), "metrics": get(meta, "metrics")}
        if body["usage"] is None and is_mapping(self._metrics):
            body["usage"] = _metrics_usage(self._metrics)
        return converse_analysis(body, None)


def _metrics_usage(metrics: Any) -> dict[str, Any]:
    return {"inputTokens": get(metrics, "inputTokenCount"), "outputTokens": get(metrics, "outputTokenCount"),
            "cacheReadInputTokens": get(metrics, "cacheReadInputTokenCount"),
            "cacheWriteInputTokens": get(metrics, "cacheWriteInputTokenCount")}


class CohereStream(Accumulator):
    """Cohere v1 (``stream-end``) and v2 (``message-end``) stream events."""

    def __init__(self) -> None:
        super().__init__()
        self.provider = "cohere"
        self._id: Any = None
        self._end: Any = None
        self._v2 = False

    def _add(self, chunk: Any) -> None:
        kind = get(chunk, "type") or get(chunk, "event_type")
        if kind == "message-start":
            self._id, self._v2 = get(chunk, "id"), True
        elif kind == "stream-start":
            self._id = get(chunk, "generation_id")
        elif kind in ("message-end", "stream-end"):
            self._end, self._v2 = chunk, kind == "message-end"

    def _result(self) -> Analysis:
        end = to_plain(self._end) if self._end is not None else {}
        end = end if is_mapping(end) else {}
        if self._v2:
            delta = get(end, "delta") or {}
            body = {"id": get(end, "id") or to_plain(self._id), "finish_reason": get(delta, "finish_reason"),
                    "usage": get(delta, "usage")}
            if get(delta, "error") is not None:
                body["error_message"] = get(delta, "error")
        else:
            response = get(end, "response") if is_mapping(get(end, "response")) else {}
            body = {**response, "finish_reason": get(end, "finish_reason") or get(response, "finish_reason")}
            body.setdefault("generation_id", to_plain(self._id))
        if self._end is None:
            body["meta"] = None
        return parse_cohere_response(body, stream=True)


def make_accumulator(kind: str) -> Accumulator:
    """A fresh accumulator for a :class:`ResponseType` value (``"openai"``, ``"anthropic"`` ...)."""
    factories: dict[str, Callable[[], Accumulator]] = {
        "openai": OpenAIStream,
        "anthropic": AnthropicStream,
        "gemini": GeminiStream,
        "cohere": CohereStream,
        "mistral": lambda: OpenAIStream("mistral", parse_mistral, "Mistral puts usage on the final chunk"),
        "groq": lambda: OpenAIStream("groq", parse_groq, "Groq puts usage on the final chunk"),
        "together": lambda: OpenAIStream("together", parse_together, "Together puts usage on the final chunk"),
        "bedrock": BedrockStream,
        "vertex": VertexStream,
        "litellm": lambda: OpenAIStream("litellm", parse_litellm,
                                        "pass stream_options={'include_usage': True} to LiteLLM"),
    }
    return factories[kind]()
