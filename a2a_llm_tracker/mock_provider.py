"""A local mock LLM provider for tests, benchmarks and the offline demo.

`MockProvider` is a small threaded HTTP server (stdlib only, no third-party dependency) on
``127.0.0.1`` with a random port. It speaks enough of the OpenAI, Anthropic and Gemini wire formats
that the real SDKs (``openai``, ``anthropic``, ``google-genai``) and frameworks (LiteLLM, LangChain,
LlamaIndex, AutoGen) can be pointed at it, and it reports **deterministic** token usage so a test can
assert that the tracker recorded exactly what the "provider" billed.

Example:
    ```python
    from a2a_llm_tracker.mock_provider import MockProvider
    import openai

    with MockProvider(reply="Hi there", cached_tokens=4, reasoning_tokens=2) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test")
        resp = client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "Hello"}])
        assert resp.usage.prompt_tokens == server.billed[-1]["input_tokens"]
    ```

Endpoints (routed by path *suffix*, so ``/v1/...``, ``/openai/deployments/x/...`` or a doubled prefix all work):

* OpenAI ``POST .../chat/completions``: non-stream, and SSE stream (``stream=true``). The stream ends with
  a finish chunk and, **only when** ``stream_options.include_usage`` is true, one extra chunk with
  ``"choices": []`` and the usage (earlier chunks then carry ``"usage": null``); then ``data: [DONE]``.
  Usage has ``prompt_tokens_details.cached_tokens`` and ``completion_tokens_details.reasoning_tokens``.
* OpenAI ``POST .../completions`` (legacy text completions, non-stream and stream).
* OpenAI ``POST .../embeddings`` (``encoding_format`` ``float`` or ``base64``, as the ``openai`` SDK requests).
* OpenAI ``POST .../images/generations`` (1x1 PNG as ``b64_json``; gpt-image-style ``usage`` with
  ``input_tokens`` = prompt words + overhead and ``output_tokens`` = 272 per image).
* OpenAI ``POST .../responses``: non-stream, and SSE stream of typed events ending with
  ``response.completed`` whose ``response.usage`` has ``input_tokens_details.cached_tokens`` and
  ``output_tokens_details.reasoning_tokens``.
* Anthropic ``POST .../messages``: non-stream, and SSE stream (``message_start`` with input and cache
  counts and a placeholder ``output_tokens: 1``, ``content_block_*``, ``ping``, ``message_delta`` with the
  final cumulative ``output_tokens``, ``message_stop``). ``input_tokens`` is the uncached part only;
  ``cache_read_input_tokens`` / ``cache_creation_input_tokens`` are separate, as Anthropic reports them.
* Gemini ``POST .../models/{model}:generateContent`` and ``:streamGenerateContent`` (``?alt=sse`` gives
  SSE; without it a JSON array). ``usageMetadata`` is on every stream chunk and cumulative;
  ``thoughtsTokenCount`` sits beside ``candidatesTokenCount`` (not inside it), ``cachedContentTokenCount``
  inside ``promptTokenCount``.
* ``GET .../models`` lists the configured models (OpenAI shape).

Token counts (deterministic, derived from the request):

* visible input = number of whitespace-separated words in the request's text (message contents, system
  prompt, Responses ``input``/``instructions``, Gemini ``contents``/``systemInstruction``, embedding input)
  plus ``prompt_overhead`` (default 3).
* total input = visible input + ``cached_tokens`` + ``cache_write_tokens`` (the cached prefix is modelled
  as extra tokens in front of the prompt, so the counts are always consistent), unless the model config
  fixes ``prompt_tokens``.
* output = words of the reply (after ``max_tokens`` truncation, which sets finish reason ``length`` /
  ``max_tokens`` / ``MAX_TOKENS``) + ``reasoning_tokens``, unless ``completion_tokens`` is fixed.
* ``cache_write_tokens`` is reported by Anthropic only (OpenAI and Gemini do not report cache writes);
  ``reasoning_tokens`` by OpenAI (chat, responses) and Gemini (``thoughtsTokenCount``) only (Anthropic
  folds thinking into ``output_tokens`` without a separate count, so there it is ignored).

Every knob can be set for all models in the constructor, or per model through ``models={"gpt-4.1":
{"cached_tokens": 64, ...}}`` (keys: ``reply``, ``prompt_tokens``, ``completion_tokens``, ``cached_tokens``,
``cache_write_tokens``, ``reasoning_tokens``, ``response_model``, ``report_usage``,
``reject_stream_options``). A model name is matched as given, then without a ``models/`` or
``provider/`` prefix. ``report_usage=False`` simulates a provider that never returns usage;
``reject_stream_options=True`` one that answers 400 to any ``stream_options``. Attributes such as
``server.reply`` or ``server.models`` may be changed while the server runs; they are read per request.

What the server remembers (thread-safe; lists grow in arrival order):

* ``server.requests``: every request received, as `RecordedRequest` (``path``, ``method``, ``query``,
  ``headers`` with ``Authorization``, ``x-api-key``, ``api-key``, ``x-goog-api-key``, cookies and similar
  removed, ``json`` (alias ``body``), ``status`` answered). Items also support ``req["path"]``.
* ``server.usages``: for each successful model call, the usage object **in the provider's own shape**
  exactly as it was (or, for a stream without ``include_usage``, would have been) sent: the OpenAI
  ``usage`` dict, the Anthropic ``usage`` (stream: ``message_start`` usage with the final
  ``output_tokens``), Gemini's final ``usageMetadata``.
* ``server.billed``: the same calls normalised to the tracker's usage contract: ``input_tokens``
  (inclusive of cache reads and writes), ``output_tokens`` (inclusive of reasoning),
  ``cached_input_tokens``, ``cache_write_tokens``, ``reasoning_tokens`` (None where the provider does not
  report the detail), ``total_tokens``, plus ``provider``, ``endpoint``, ``model``, ``stream``,
  ``usage_reported`` (False when the usage was not sent, e.g. a stream without ``include_usage``) and
  ``request_id``.

Failures and latency:

* ``server.fail_next(n, status=500, body=None)``: the next ``n`` model calls answer ``status`` with the
  provider's error shape (OpenAI ``{"error": {message, type, param, code}}``, Anthropic ``{"type": "error",
  "error": {type, message}, "request_id"}``, Gemini ``{"error": {code, message, status}}``) or ``body``
  (dict as JSON, str as is). Failed calls are not billed. Note that SDKs retry 5xx/429 by default
  (``openai`` twice): pass ``max_retries=0`` or fail more calls.
* ``delay`` (seconds before the response starts) and ``chunk_delay`` (seconds between stream events).
* ``server.reset()`` clears requests, usages, billed and pending failures.

Every response carries an ``x-request-id`` header (Anthropic also ``request-id``), ``req_mock_<n>``.
"""

from __future__ import annotations as _annotations

import base64
import hashlib
import json
import logging
import struct
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["MockProvider", "RecordedRequest"]

_SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "cookie",
        "set-cookie",
        "x-auth-token",
        "ocp-apim-subscription-key",
    }
)
_SECRET_QUERY = frozenset({"key", "api_key", "apikey", "access_token", "token"})
_MODEL_KEYS = frozenset(
    {
        "reply",
        "prompt_tokens",
        "completion_tokens",
        "cached_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "response_model",
        "report_usage",
        "reject_stream_options",
    }
)
_DEFAULT_REPLY = "Hello from the mock provider."
_log = logging.getLogger("a2a_llm_tracker.mock_provider")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-response is normal (abandoned streams); anything else is logged, not printed.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        _log.exception("MockProvider: error while handling a request from %s", client_address)


@dataclass
class RecordedRequest:
    """One request the mock received (secrets removed).

    Attributes:
        method: HTTP method.
        path: URL path without the query string.
        query: Query parameters (first value each; ``key`` and similar removed).
        headers: Lower-cased request headers without credentials.
        json: The parsed JSON body, or None when there was none / it was not JSON.
        status: HTTP status the mock answered.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    status: int = 200

    @property
    def body(self) -> Any:
        """Alias of `json`."""
        return self.json

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """Dict-style access, like `dict.get`."""
        return getattr(self, key, default)


@dataclass
class _Plan:
    """What one call answers and bills."""

    provider: str
    endpoint: str
    model: str
    response_model: str
    words: list[str]
    finish: str  # "stop" or "length"
    prompt_tokens: int
    completion_tokens: int
    cached: int
    cache_write: int
    reasoning: int
    report_usage: bool
    request_id: str
    stream: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return " ".join(self.words)

    @property
    def visible_output(self) -> int:
        return self.completion_tokens - self.reasoning


class _Failure(Exception):
    def __init__(self, status: int, body: Any = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _words(node: Any) -> int:
    """Count words of the text inside a request fragment (strings, content parts, messages)."""
    if isinstance(node, str):
        return len(node.split())
    if isinstance(node, list):
        return sum(_words(item) for item in node)
    if isinstance(node, dict):
        return sum(_words(node[k]) for k in ("text", "content", "parts", "input") if k in node)
    return 0


def _chunks(words: list[str]) -> list[str]:
    """Stream pieces: each word followed by a space except the last."""
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]


class MockProvider:
    """A threaded local HTTP server imitating OpenAI, Anthropic and Gemini (see the module docstring).

    Args:
        reply: The assistant text every call answers (per-model override: ``models[name]["reply"]``).
        cached_tokens: Cache-read input tokens reported per call.
        cache_write_tokens: Cache-write input tokens (Anthropic only).
        reasoning_tokens: Reasoning/thinking output tokens (OpenAI, Gemini).
        prompt_overhead: Constant added to the word count of the input.
        models: Per-model overrides, ``{model_name: {key: value}}``.
        embedding_dim: Length of the vectors ``/embeddings`` returns.
        delay: Seconds to wait before answering each request.
        chunk_delay: Seconds to wait between stream events.
        host: Interface to bind (default ``127.0.0.1``).
        port: Port to bind (default 0: a free port).

    Raises:
        ValueError: A negative count or an unknown per-model key.
    """

    def __init__(
        self,
        *,
        reply: str = _DEFAULT_REPLY,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
        reasoning_tokens: int = 0,
        prompt_overhead: int = 3,
        models: Mapping[str, Mapping[str, Any]] | None = None,
        embedding_dim: int = 8,
        delay: float = 0.0,
        chunk_delay: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        for name, value in (
            ("cached_tokens", cached_tokens),
            ("cache_write_tokens", cache_write_tokens),
            ("reasoning_tokens", reasoning_tokens),
            ("prompt_overhead", prompt_overhead),
            ("embedding_dim", embedding_dim),
        ):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"MockProvider: {name} must be a non-negative int, got {value!r}")
        self.reply = reply
        self.cached_tokens = cached_tokens
        self.cache_write_tokens = cache_write_tokens
        self.reasoning_tokens = reasoning_tokens
        self.prompt_overhead = prompt_overhead
        self.models: dict[str, dict[str, Any]] = {}
        for name, cfg in (models or {}).items():
            self.set_model(name, **cfg)
        self.embedding_dim = embedding_dim
        self.delay = delay
        self.chunk_delay = chunk_delay
        self.requests: list[RecordedRequest] = []
        self.usages: list[dict[str, Any]] = []
        self.billed: list[dict[str, Any]] = []
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._failures: list[tuple[int, Any]] = []
        self._counter = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> MockProvider:
        """Bind and serve in a daemon thread. Returns self. Starting twice is a no-op."""
        if self._server is not None:
            return self
        handler = type("_BoundHandler", (_Handler,), {"mock": self})
        server = _Server((self._host, self._port), handler)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="a2a-mock-provider", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket. Safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> MockProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (the server must be started)."""
        if self._server is None:
            raise RuntimeError("MockProvider is not started; use `with MockProvider() as server:` or start()")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Root URL, ``http://127.0.0.1:PORT`` (for Anthropic and Gemini clients)."""
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL, ``http://127.0.0.1:PORT/v1``."""
        return self.url + "/v1"

    # -- configuration ---------------------------------------------------------------------------

    def set_model(self, name: str, **config: Any) -> None:
        """Set per-model overrides (see the module docstring for the keys).

        Raises:
            ValueError: An unknown key or a negative count.
        """
        unknown = set(config) - _MODEL_KEYS
        if unknown:
            raise ValueError(f"MockProvider: unknown model config key(s) {sorted(unknown)}; allowed: {sorted(_MODEL_KEYS)}")
        for key in ("prompt_tokens", "completion_tokens", "cached_tokens", "cache_write_tokens", "reasoning_tokens"):
            value = config.get(key)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"MockProvider: models[{name!r}][{key!r}] must be a non-negative int, got {value!r}")
        self.models[name] = dict(config)

    def fail_next(self, n: int = 1, status: int = 500, body: Any = None) -> None:
        """Make the next `n` model calls fail with `status` (provider-shaped error body unless `body`)."""
        if n < 0 or not 100 <= status <= 599:
            raise ValueError(f"MockProvider.fail_next: need n >= 0 and an HTTP status, got n={n!r} status={status!r}")
        with self._lock:
            self._failures.extend([(status, body)] * n)

    def reset(self) -> None:
        """Forget recorded requests, usages, billed calls and pending failures."""
        with self._lock:
            self.requests.clear()
            self.usages.clear()
            self.billed.clear()
            self._failures.clear()

    # -- internals used by the handler -----------------------------------------------------------

    def _next_id(self) -> int:
        with self._lock:
            self._counter += 1
            return self._counter

    def _take_failure(self) -> tuple[int, Any] | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def _config(self, model: str) -> dict[str, Any]:
        models = self.models
        for candidate in (model, model.removeprefix("models/"), model.split("/", 1)[-1]):
            if candidate in models:
                return models[candidate]
        return {}

    def _plan(
        self, provider: str, endpoint: str, model: str, input_words: int, max_tokens: Any, request_id: str
    ) -> _Plan:
        cfg = self._config(model)
        cached = int(cfg.get("cached_tokens", self.cached_tokens))
        cache_write = int(cfg.get("cache_write_tokens", self.cache_write_tokens)) if provider == "anthropic" else 0
        reasoning = int(cfg.get("reasoning_tokens", self.reasoning_tokens)) if provider != "anthropic" else 0
        words = str(cfg.get("reply", self.reply)).split()
        finish = "stop"
        if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens >= 0:
            room = max(0, max_tokens - reasoning)
            if len(words) > room:
                words, finish = words[:room], "length"
        prompt = cfg.get("prompt_tokens")
        if prompt is None:
            prompt = input_words + self.prompt_overhead + cached + cache_write
        elif cached + cache_write > prompt:
            raise ValueError(f"MockProvider: {model}: cached + cache-write tokens exceed prompt_tokens={prompt}")
        completion = cfg.get("completion_tokens")
        if completion is None:
            completion = len(words) + reasoning
        elif reasoning > completion:
            raise ValueError(f"MockProvider: {model}: reasoning_tokens exceed completion_tokens={completion}")
        return _Plan(
            provider=provider,
            endpoint=endpoint,
            model=model,
            response_model=str(cfg.get("response_model") or model),
            words=words,
            finish=finish,
            prompt_tokens=int(prompt),
            completion_tokens=int(completion),
            cached=cached,
            cache_write=cache_write,
            reasoning=reasoning,
            report_usage=bool(cfg.get("report_usage", True)),
            request_id=request_id,
        )

    def _bill(self, plan: _Plan, native: dict[str, Any] | None, reported: bool) -> None:
        record = {
            "provider": plan.provider,
            "endpoint": plan.endpoint,
            "model": plan.model,
            "stream": plan.stream,
            "usage_reported": reported,
            "request_id": plan.request_id,
            "input_tokens": plan.prompt_tokens,
            "output_tokens": plan.completion_tokens,
            "total_tokens": plan.prompt_tokens + plan.completion_tokens,
            "cached_input_tokens": plan.cached,
            "cache_write_tokens": plan.cache_write if plan.provider == "anthropic" else None,
            "reasoning_tokens": plan.reasoning if plan.provider in ("openai", "gemini") else None,
        }
        if plan.endpoint == "embeddings":
            record.update(output_tokens=0, cached_input_tokens=None, reasoning_tokens=None)
        elif plan.endpoint == "images":
            record.update(cached_input_tokens=None, reasoning_tokens=None)
        with self._lock:
            self.usages.append(json.loads(json.dumps(native)) if native is not None else {})
            self.billed.append(record)


# ------------------------------------------------------------------------------------------------
# Wire formats
# ------------------------------------------------------------------------------------------------


def _openai_usage(p: _Plan) -> dict[str, Any]:
    return {
        "prompt_tokens": p.prompt_tokens,
        "completion_tokens": p.completion_tokens,
        "total_tokens": p.prompt_tokens + p.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": p.cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": p.reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _responses_usage(p: _Plan) -> dict[str, Any]:
    return {
        "input_tokens": p.prompt_tokens,
        "input_tokens_details": {"cached_tokens": p.cached},
        "output_tokens": p.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": p.reasoning},
        "total_tokens": p.prompt_tokens + p.completion_tokens,
    }


def _anthropic_usage(p: _Plan, output_tokens: int | None = None) -> dict[str, Any]:
    return {
        "input_tokens": p.prompt_tokens - p.cached - p.cache_write,
        "cache_creation_input_tokens": p.cache_write,
        "cache_read_input_tokens": p.cached,
        "output_tokens": p.completion_tokens if output_tokens is None else output_tokens,
    }


def _gemini_usage(p: _Plan, visible: int | None = None) -> dict[str, Any]:
    candidates = p.visible_output if visible is None else visible
    usage: dict[str, Any] = {
        "promptTokenCount": p.prompt_tokens,
        "candidatesTokenCount": candidates,
        "totalTokenCount": p.prompt_tokens + candidates + p.reasoning,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": p.prompt_tokens}],
    }
    if p.cached:
        usage["cachedContentTokenCount"] = p.cached
    if p.reasoning:
        usage["thoughtsTokenCount"] = p.reasoning
    return usage


def _openai_error(status: int) -> dict[str, Any]:
    kind = {400: "invalid_request_error", 401: "invalid_request_error", 403: "invalid_request_error",
            404: "invalid_request_error", 429: "rate_limit_exceeded"}.get(status, "server_error")
    return {"error": {"message": f"Mock provider error (HTTP {status})", "type": kind, "param": None, "code": None}}


def _anthropic_error(status: int, request_id: str) -> dict[str, Any]:
    kind = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
            404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
            529: "overloaded_error"}.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": f"Mock provider error (HTTP {status})"},
            "request_id": request_id}


def _gemini_error(status: int) -> dict[str, Any]:
    kind = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
            429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}.get(status, "INTERNAL")
    return {"error": {"code": status, "message": f"Mock provider error (HTTP {status})", "status": kind}}


def _embedding(text: str, dim: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    while len(digest) < dim:
        digest += hashlib.sha256(digest).digest()
    return [round(b / 255.0 - 0.5, 6) for b in digest[:dim]]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mock: MockProvider  # set on the bound subclass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence the default stderr access log."""

    # -- plumbing ---------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _record(self, parsed: Any) -> RecordedRequest:
        split = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(split.query).items() if k.lower() not in _SECRET_QUERY}
        headers = {k.lower(): v for k, v in self.headers.items() if k.lower() not in _SECRET_HEADERS}
        rec = RecordedRequest(method=self.command, path=split.path, query=query, headers=headers, json=parsed)
        with self.mock._lock:
            self.mock.requests.append(rec)
        return rec

    def _send_headers(self, status: int, request_id: str, content_type: str, length: int | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("x-request-id", request_id)
        self.send_header("request-id", request_id)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-cache")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send_json(self, status: int, payload: Any, request_id: str) -> None:
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self._send_headers(status, request_id, "application/json", len(data))
        self.wfile.write(data)

    def _send_stream(self, status: int, request_id: str, pieces: Iterator[bytes], content_type: str) -> None:
        self._send_headers(status, request_id, content_type, None)
        try:
            for i, piece in enumerate(pieces):
                if i and self.mock.chunk_delay:
                    time.sleep(self.mock.chunk_delay)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            # The client abandoned the stream; nothing to do.
            self.close_connection = True

    # -- dispatch ---------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._record(None)
        request_id = f"req_mock_{self.mock._next_id()}"
        if urlsplit(self.path).path.rstrip("/").endswith("/models"):
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "mock"} for m in self.mock.models]
            self._send_json(200, {"object": "list", "data": data}, request_id)
        else:
            self._send_json(404, _openai_error(404), request_id)

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        raw = self._read_body()
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        rec = self._record(parsed)
        mock = self.mock
        request_id = f"req_mock_{mock._next_id()}"
        path = urlsplit(self.path).path.rstrip("/")
        route = self._route(path)
        body = parsed if isinstance(parsed, dict) else {}
        if mock.delay:
            time.sleep(mock.delay)
        try:
            if route is None:
                raise _Failure(404)
            failure = mock._take_failure()
            if failure is not None:
                raise _Failure(*failure)
            if not isinstance(parsed, dict):
                raise _Failure(400, self._error_body(route, 400, request_id, "request body must be a JSON object"))
            getattr(self, "_" + route)(body, path, request_id)
        except ValueError as exc:
            # A configuration the counts cannot satisfy: answer 500 and say why.
            rec.status = 500
            self._send_json(500, self._error_body(route, 500, request_id, f"MockProvider misconfigured: {exc}"), request_id)
        except _Failure as exc:
            rec.status = exc.status
            payload = exc.body if exc.body is not None else self._error_body(route, exc.status, request_id)
            self._send_json(exc.status, payload, request_id)

    @staticmethod
    def _route(path: str) -> str | None:
        if path.endswith("/chat/completions"):
            return "chat"
        if path.endswith("/completions"):
            return "text_completion"
        if path.endswith("/embeddings"):
            return "embeddings"
        if path.endswith("/images/generations"):
            return "images"
        if path.endswith("/responses"):
            return "responses"
        if path.endswith("/messages"):
            return "messages"
        if path.endswith(":generateContent") or path.endswith(":streamGenerateContent"):
            return "gemini"
        return None

    @staticmethod
    def _error_body(route: str | None, status: int, request_id: str, message: str | None = None) -> dict[str, Any]:
        if route == "messages":
            body = _anthropic_error(status, request_id)
        elif route == "gemini":
            body = _gemini_error(status)
        else:
            body = _openai_error(status)
        if message:
            body["error"]["message"] = message
        return body

    def _check_stream_options(self, body: dict[str, Any], model: str, route: str, request_id: str) -> None:
        if "stream_options" in body and self.mock._config(model).get("reject_stream_options"):
            raise _Failure(400, self._error_body(route, 400, request_id, "Unrecognized request argument supplied: stream_options"))

    # -- OpenAI chat / completions ------------------------------------------------------------------

    def _chat(self, body: dict[str, Any], path: str, request_id: str) -> None:
        model = str(body.get("model", ""))
        self._check_stream_options(body, model, "chat", request_id)
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        plan = self.mock._plan("openai", "chat", model, _words(body.get("messages", [])), max_tokens, request_id)
        self._openai_like(body, plan, "chat.completion")

    def _text_completion(self, body: dict[str, Any], path: str, request_id: str) -> None:
        model = str(body.get("model", ""))
        self._check_stream_options(body, model, "text_completion", request_id)
        plan = self.mock._plan("openai", "completions", model, _words(body.get("prompt", "")), body.get("max_tokens"), request_id)
        self._openai_like(body, plan, "text_completion")

    def _openai_like(self, body: dict[str, Any], plan: _Plan, obj: str) -> None:
        usage = _openai_usage(plan)
        created = int(time.time())
        cid = ("chatcmpl-mock-" if obj == "chat.completion" else "cmpl-mock-") + plan.request_id.rsplit("_", 1)[-1]
        reported = plan.report_usage
        if not body.get("stream"):
            if obj == "chat.completion":
                choice: dict[str, Any] = {
                    "index": 0,
                    "message": {"role": "assistant", "content": plan.text, "refusal": None, "annotations": []},
                    "logprobs": None,
                    "finish_reason": plan.finish,
                }
            else:
                choice = {"index": 0, "text": plan.text, "logprobs": None, "finish_reason": plan.finish}
            payload: dict[str, Any] = {
                "id": cid, "object": obj, "created": created, "model": plan.response_model,
                "choices": [choice], "system_fingerprint": "fp_mock",
            }
            if obj == "chat.completion":
                payload["service_tier"] = "default"
            if reported:
                payload["usage"] = usage
            self.mock._bill(plan, usage, reported)
            self._send_json(200, payload, plan.request_id)
            return
        plan.stream = True
        opts = body.get("stream_options")
        include = bool(isinstance(opts, dict) and opts.get("include_usage")) and reported
        self.mock._bill(plan, usage, include)
        chunk_obj = "chat.completion.chunk" if obj == "chat.completion" else "text_completion"

        def chunk(choices: list[dict[str, Any]], usage_value: Any = None, with_usage: bool = include) -> bytes:
            data: dict[str, Any] = {"id": cid, "object": chunk_obj, "created": created, "model": plan.response_model,
                                    "system_fingerprint": "fp_mock", "choices": choices}
            if with_usage:
                data["usage"] = usage_value
            return b"data: " + json.dumps(data).encode() + b"\n\n"

        def pieces() -> Iterator[bytes]:
            if obj == "chat.completion":
                yield chunk([{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None},
                              "logprobs": None, "finish_reason": None}])
                for text in _chunks(plan.words):
                    yield chunk([{"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}])
                yield chunk([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": plan.finish}])
            else:
                for text in _chunks(plan.words):
                    yield chunk([{"index": 0, "text": text, "logprobs": None, "finish_reason": None}])
                yield chunk([{"index": 0, "text": "", "logprobs": None, "finish_reason": plan.finish}])
            if include:
                yield chunk([], usage)
            yield b"data: [DONE]\n\n"

        self._send_stream(200, plan.request_id, pieces(), "text/event-stream")

    # -- OpenAI embeddings ----------------------------------------------------------------------------

    def _embeddings(self, body: dict[str, Any], path: str, request_id: str) -> None:
        model = str(body.get("model", ""))
        inputs = body.get("input", "")
        items = inputs if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int) else [inputs]
        texts = [it if isinstance(it, str) else " ".join(map(str, it)) if isinstance(it, list) else str(it) for it in items]
        words = sum(len(t.split()) for t in texts)
        cfg = self.mock._config(model)
        prompt = int(cfg.get("prompt_tokens", words + self.mock.prompt_overhead))
        plan = _Plan("openai", "embeddings", model, str(cfg.get("response_model") or model), [], "stop",
                     prompt, 0, 0, 0, 0, bool(cfg.get("report_usage", True)), request_id)
        dim = int(body.get("dimensions") or self.mock.embedding_dim)
        b64 = body.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(texts):
            vec = _embedding(text, dim)
            value: Any = base64.b64encode(struct.pack(f"<{dim}f", *vec)).decode() if b64 else vec
            data.append({"object": "embedding", "index": i, "embedding": value})
        usage = {"prompt_tokens": prompt, "total_tokens": prompt}
        payload: dict[str, Any] = {"object": "list", "data": data, "model": plan.response_model}
        if plan.report_usage:
            payload["usage"] = usage
        self.mock._bill(plan, usage, plan.report_usage)
        self._send_json(200, payload, request_id)

    # -- OpenAI images --------------------------------------------------------------------------------

    def _images(self, body: dict[str, Any], path: str, request_id: str) -> None:
        model = str(body.get("model", ""))
        requested = body.get("n")
        n = requested if isinstance(requested, int) and requested > 0 else 1
        plan = self.mock._plan("openai", "images", model, _words(body.get("prompt", "")), None, request_id)
        # gpt-image-1 style usage; the output is counted per image (a constant per image here).
        plan.completion_tokens, plan.reasoning = 272 * n, 0
        plan.prompt_tokens, plan.cached = plan.prompt_tokens - plan.cached, 0
        usage = {"input_tokens": plan.prompt_tokens, "output_tokens": plan.completion_tokens,
                 "total_tokens": plan.prompt_tokens + plan.completion_tokens,
                 "input_tokens_details": {"text_tokens": plan.prompt_tokens, "image_tokens": 0}}
        pixel = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
        payload: dict[str, Any] = {"created": int(time.time()), "data": [{"b64_json": pixel} for _ in range(n)]}
        if plan.report_usage:
            payload["usage"] = usage
        self.mock._bill(plan, usage, plan.report_usage)
        self._send_json(200, payload, request_id)

    # -- OpenAI Responses -----------------------------------------------------------------------------

    def _responses(self, body: dict[str, Any], path: str, request_id: str) -> None:
        model = str(body.get("model", ""))
        words = _words(body.get("input", "")) + _words(body.get("instructions") or "")
        plan = self.mock._plan("openai", "responses", model, words, body.get("max_output_tokens"), request_id)
        num = request_id.rsplit("_", 1)[-1]
        rid, mid = f"resp_mock_{num}", f"msg_mock_{num}"
        usage = _responses_usage(plan)
        created = int(time.time())
        incomplete = plan.finish == "length"

        def response(status: str, output: list[dict[str, Any]], with_usage: bool) -> dict[str, Any]:
            return {
                "id": rid, "object": "response", "created_at": created, "status": status,
                "background": False, "error": None,
                "incomplete_details": {"reason": "max_output_tokens"} if incomplete and status == "incomplete" else None,
                "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
                "model": plan.response_model, "output": output, "parallel_tool_calls": True,
                "previous_response_id": None, "reasoning": {"effort": None, "summary": None},
                "service_tier": "default", "store": True, "temperature": 1.0,
                "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [], "top_p": 1.0,
                "truncation": "disabled", "usage": usage if with_usage else None, "user": None, "metadata": {},
            }

        part = {"type": "output_text", "text": plan.text, "annotations": [], "logprobs": []}
        item = {"id": mid, "type": "message", "status": "incomplete" if incomplete else "completed",
                "role": "assistant", "content": [part]}
        final_status = "incomplete" if incomplete else "completed"
        reported = plan.report_usage
        if not body.get("stream"):
            self.mock._bill(plan, usage, reported)
            self._send_json(200, response(final_status, [item], reported), request_id)
            return
        plan.stream = True
        self.mock._bill(plan, usage, reported)

        def pieces() -> Iterator[bytes]:
            seq = 0

            def event(kind: str, **data: Any) -> bytes:
                nonlocal seq
                payload = {"type": kind, "sequence_number": seq, **data}
                seq += 1
                return f"event: {kind}\ndata: {json.dumps(payload)}\n\n".encode()

            yield event("response.created", response=response("in_progress", [], False))
            yield event("response.in_progress", response=response("in_progress", [], False))
            yield event("response.output_item.added", output_index=0,
                        item={**item, "status": "in_progress", "content": []})
            yield event("response.content_part.added", item_id=mid, output_index=0, content_index=0,
                        part={**part, "text": ""})
            for text in _chunks(plan.words):
                yield event("response.output_text.delta", item_id=mid, output_index=0, content_index=0,
                            delta=text, logprobs=[])
            yield event("response.output_text.done", item_id=mid, output_index=0, content_index=0,
                        text=plan.text, logprobs=[])
            yield event("response.content_part.done", item_id=mid, output_index=0, content_index=0, part=part)
            yield event("response.output_item.done", output_index=0, item=item)
            yield event("response.incomplete" if incomplete else "response.completed",
                        response=response(final_status, [item], reported))

        self._send_stream(200, request_id, pieces(), "text/event-stream")

    # -- Anthropic Messages ----------------------------------------------------------------------------

    def _messages(self, body: dict[str, Any], path: str, request_id: str) -> None:
        model = str(body.get("model", ""))
        words = _words(body.get("messages", [])) + _words(body.get("system") or "")
        plan = self.mock._plan("anthropic", "messages", model, words, body.get("max_tokens"), request_id)
        stop = "max_tokens" if plan.finish == "length" else "end_turn"
        mid = "msg_mock_" + request_id.rsplit("_", 1)[-1]
        usage = _anthropic_usage(plan)
        reported = plan.report_usage
        if not body.get("stream"):
            payload: dict[str, Any] = {
                "id": mid, "type": "message", "role": "assistant", "model": plan.response_model,
                "content": [{"type": "text", "text": plan.text}], "stop_reason": stop, "stop_sequence": None,
            }
            if reported:
                payload["usage"] = usage
            self.mock._bill(plan, usage, reported)
            self._send_json(200, payload, request_id)
            return
        plan.stream = True
        self.mock._bill(plan, usage, reported)

        def event(kind: str, data: dict[str, Any]) -> bytes:
            return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()

        def pieces() -> Iterator[bytes]:
            start_usage = _anthropic_usage(plan, output_tokens=1) if reported else None
            message: dict[str, Any] = {"id": mid, "type": "message", "role": "assistant",
                                       "model": plan.response_model, "content": [], "stop_reason": None,
                                       "stop_sequence": None}
            if start_usage is not None:
                message["usage"] = start_usage
            yield event("message_start", {"message": message})
            yield event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
            yield event("ping", {})
            for text in _chunks(plan.words):
                yield event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": text}})
            yield event("content_block_stop", {"index": 0})
            delta: dict[str, Any] = {"delta": {"stop_reason": stop, "stop_sequence": None}}
            if reported:
                delta["usage"] = {"output_tokens": plan.completion_tokens}
            yield event("message_delta", delta)
            yield event("message_stop", {})

        self._send_stream(200, request_id, pieces(), "text/event-stream")

    # -- Gemini ------------------------------------------------------------------------------------------

    def _gemini(self, body: dict[str, Any], path: str, request_id: str) -> None:
        name, _, method = path.rsplit("/", 1)[-1].partition(":")
        words = _words(body.get("contents", [])) + _words(body.get("systemInstruction") or {})
        gen = body.get("generationConfig") or {}
        plan = self.mock._plan("gemini", "generateContent", name, words, gen.get("maxOutputTokens"), request_id)
        finish = "MAX_TOKENS" if plan.finish == "length" else "STOP"
        reported = plan.report_usage
        resp_id = "mock-" + request_id.rsplit("_", 1)[-1]

        def chunk(text: str, visible: int, last: bool) -> dict[str, Any]:
            cand: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
            if last:
                cand["finishReason"] = finish
            data: dict[str, Any] = {"candidates": [cand], "modelVersion": plan.response_model, "responseId": resp_id}
            if reported:
                data["usageMetadata"] = _gemini_usage(plan, visible)
            return data

        usage = _gemini_usage(plan)
        if method != "streamGenerateContent":
            self.mock._bill(plan, usage, reported)
            self._send_json(200, chunk(plan.text, plan.visible_output, True), request_id)
            return
        plan.stream = True
        self.mock._bill(plan, usage, reported)
        texts = _chunks(plan.words) or [""]
        # Cumulative candidate counts, ending exactly at the billed visible output.
        counts = [min(plan.visible_output, i + 1) for i in range(len(texts))]
        counts[-1] = plan.visible_output
        chunks = [chunk(t, c, i == len(texts) - 1) for i, (t, c) in enumerate(zip(texts, counts, strict=True))]
        if self.query_alt() == "sse":
            pieces: Iterator[bytes] = (b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in chunks)
            self._send_stream(200, request_id, pieces, "text/event-stream")
        else:
            parts = [("[" if i == 0 else ",") + json.dumps(c) for i, c in enumerate(chunks)]
            self._send_stream(200, request_id, (p.encode() for p in [*parts, "]"]), "application/json")

    def query_alt(self) -> str:
        """The ``alt`` query parameter (Gemini streaming format)."""
        return parse_qs(urlsplit(self.path).query).get("alt", [""])[0]
