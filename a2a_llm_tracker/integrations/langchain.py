"""LangChain / LangGraph adapter: a callback handler that records one event per model call.

Usage::

    from a2a_llm_tracker.integrations.langchain import TrackerHandler

    handler = TrackerHandler(meter)                 # meter=None: the global meter
    llm = ChatOpenAI(model="gpt-4o-mini", callbacks=[handler])          # on a model, or
    agent.invoke(inputs, config={"callbacks": [handler], "configurable": {"thread_id": "t-1"}})

What is recorded, and where it comes from:

* usage: ``AIMessage.usage_metadata`` of the first generation (``input_tokens`` already includes
  cache reads and writes for every provider; cache_read / cache_creation, Anthropic's
  ``ephemeral_5m/1h_input_tokens``, ``priority_`` / ``flex_`` prefixed keys and reasoning are
  mapped), else ``llm_output["token_usage"]`` (legacy text LLMs). Only ``on_llm_end`` is counted,
  never the streamed chunks, so a call is counted once.
* model: requested (``ls_model_name`` / invocation params) and served (``response_metadata``);
  provider from ``response_metadata["model_provider"]`` / ``ls_provider``.
* identity: ``call_id`` = run id, ``parent_call_id`` = parent run id, ``trace_id`` = root run id,
  ``agent_id`` from metadata ``agent_id`` / ``lc_agent_name`` (``create_agent(name=...)``) /
  ``langgraph_node``; ``session_id`` from metadata ``session_id`` / LangGraph ``thread_id``;
  ``user_id`` from metadata ``user_id``. Arguments given to the handler win over all of these,
  and these win over an ambient ``meter_context`` (DESIGN.md's precedence rule).

Threads and async: the handler is synchronous and thread-safe (``batch`` calls it from pool
threads). It runs inline on the event loop under ``ainvoke``/``astream`` (``run_inline = True``;
it never blocks: ``Meter.record`` only queues) so that the adapter scope it opens reaches the model
call (see :func:`~a2a_llm_tracker._context.adapter_scope`): a LiteLLM call made by the model
(``ChatLiteLLM``) is then not counted a second time by the LiteLLM adapter.

Budgets: on model start the handler calls ``meter.check_budgets(...)``; a
:class:`BudgetExceededError` propagates (the handler sets ``raise_error = True``) and the model call
is not made. Every other failure inside the handler is logged and swallowed (raised only when the
meter is ``strict``).

.. versionadded:: 0.1
"""

from __future__ import annotations as _annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any
from uuid import UUID

from .._context import adapter_scope, current_adapter, export_suppressed
from .._meter import Meter
from .._setup import resolve_meter
from ..exceptions import AdapterUnavailable, BudgetExceededError, TrackerNotInitializedError
from ._common import endpoint_host, usage_from_raw

try:
    from langchain_core.callbacks import BaseCallbackHandler
except ImportError as _exc:  # pragma: no cover - exercised by the missing-dependency test
    raise AdapterUnavailable(
        "the LangChain adapter needs langchain-core: pip install a2a-llm-tracker[langchain]") from _exc

__all__ = ["TrackerHandler", "usage_from_langchain"]

logger = logging.getLogger("a2a_llm_tracker")

FRAMEWORK = "langchain"
_MAX_RUNS = 50_000  # runs whose end never came (abandoned) are evicted beyond this


class _Node:
    """A chain / tool / retriever run: kept only so a model call can walk up to its trace root and agent."""

    __slots__ = ("agent", "parent")

    def __init__(self, parent: UUID | None, agent: str | None = None) -> None:
        self.parent = parent
        self.agent = agent  # lc_agent_name, for child runs of an agent


class _Run(_Node):
    """A model run in progress (its fields are owned by whoever pops it from the run table)."""

    __slots__ = ("chunk_usages", "first_token", "model", "operation", "provider", "scope", "skip", "started",
                 "stream", "fields")

    def __init__(self, parent: UUID | None, *, started: float = 0.0, model: str | None = None,
                 provider: str | None = None, operation: str = "chat", stream: bool = False,
                 fields: dict[str, Any] | None = None, skip: bool = False) -> None:
        self.parent = parent
        self.agent = None
        self.started = started
        self.first_token: float | None = None
        self.model = model
        self.provider = provider
        self.operation = operation
        self.stream = stream
        self.fields: dict[str, Any] = fields if fields is not None else {}
        self.chunk_usages: list[Mapping[str, Any]] | None = None
        self.scope: Any = None  # the adapter_scope context manager this run opened
        self.skip = skip  # an outer adapter meters this call


_EMPTY: Mapping[str, Any] = MappingProxyType({})
_now = time.perf_counter
_GRAPH_KEYS = ("langgraph_node", "langgraph_step", "checkpoint_ns")


def _int(value: Any) -> int | None:
    if type(value) is int:
        return value
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def usage_from_langchain(usage_metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Event fields from a LangChain ``UsageMetadata`` dict (inclusive convention, like ours).

    ``cache_read`` / ``*_cache_read`` → ``cached_input_tokens``; ``cache_creation`` and Anthropic's
    ``ephemeral_5m/1h_input_tokens`` → ``cache_write_tokens`` (TTL split in ``token_details``);
    ``reasoning`` / ``*_reasoning`` → ``reasoning_tokens``; other numeric detail keys go to
    ``token_details`` as ``input_<key>`` / ``output_<key>`` (audio as ``input_audio_tokens``, as the analyzers name it).
    """
    fields: dict[str, Any] = dict.fromkeys(_USAGE_KEYS)
    fields["token_details"] = {}
    _usage_into(usage_metadata, fields)
    return fields


_USAGE_KEYS = ("input_tokens", "output_tokens", "total_tokens", "cached_input_tokens", "cache_write_tokens",
               "reasoning_tokens", "token_details", "raw_usage")


def _usage_into(usage_metadata: Mapping[str, Any], fields: dict[str, Any]) -> None:
    """Set the usage fields of *usage_metadata* that are reported (not None) on *fields* (the hot path)."""
    in_d = usage_metadata.get("input_token_details")
    out_d = usage_metadata.get("output_token_details")
    cached = write = reasoning = ttl5 = ttl1 = None
    details: dict[str, int] = {}
    if in_d and isinstance(in_d, Mapping):
        for key, value in in_d.items():
            count = value if type(value) is int else _int(value)
            if count is None:
                continue
            if key == "cache_read" or key.endswith("_cache_read"):
                cached = (cached or 0) + count
            elif key == "cache_creation" or key.endswith("_cache_creation"):
                write = (write or 0) + count
            elif key == "ephemeral_5m_input_tokens":
                ttl5 = count
            elif key == "ephemeral_1h_input_tokens":
                ttl1 = count
            elif key == "audio":
                details["input_audio_tokens"] = count
            else:
                details[f"input_{key}"] = count
    if out_d and isinstance(out_d, Mapping):
        for key, value in out_d.items():
            count = value if type(value) is int else _int(value)
            if count is None:
                continue
            if key == "reasoning" or key.endswith("_reasoning"):
                reasoning = (reasoning or 0) + count
            elif key == "audio":
                details["output_audio_tokens"] = count
            else:
                details[f"output_{key}"] = count
    if ttl5 is not None or ttl1 is not None:
        # langchain-anthropic sets cache_creation=0 when it reports the TTL split instead
        if ttl5 is not None:
            details["cache_write_5m"] = ttl5
        if ttl1 is not None:
            details["cache_write_1h"] = ttl1
        write = max(write or 0, (ttl5 or 0) + (ttl1 or 0))
    for name, value in (("input_tokens", _int(usage_metadata.get("input_tokens"))),
                        ("output_tokens", _int(usage_metadata.get("output_tokens"))),
                        ("total_tokens", _int(usage_metadata.get("total_tokens"))),
                        ("cached_input_tokens", cached), ("cache_write_tokens", write),
                        ("reasoning_tokens", reasoning)):
        if value is not None:
            fields[name] = value
    if details:
        fields["token_details"] = details
    fields["raw_usage"] = ({k: v for k, v in usage_metadata.items() if k != "total_cost"}
                           if "total_cost" in usage_metadata else dict(usage_metadata))


def _cumulative_fix(merged: Mapping[str, Any], chunks: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """Undo LangChain's summing of chunk usage when a server sent *running* totals on each chunk.

    Input tokens are reported once per request by honest servers (OpenAI's final chunk, Anthropic's
    message_start). The same non-zero input count on two or more chunks means cumulative usage, and
    the last chunk then holds the true totals.
    """
    inputs = [_int(c.get("input_tokens")) for c in chunks]
    nonzero = [i for i in inputs if i]
    if len(nonzero) >= 2 and len(set(nonzero)) == 1:
        return chunks[-1]
    return merged


class TrackerHandler(BaseCallbackHandler):
    """A LangChain callback handler that records one :class:`UsageEvent` per model call.

    Args:
        meter: where to record; None uses the global meter (``init_sync()`` / ``set_meter()``),
            looked up at each call, so the handler may be built before the meter.
        agent_id: attribute every call to this agent (wins over what LangChain reports).
        session_id: attribute every call to this session (wins over LangGraph's ``thread_id``).
        user_id: attribute every call to this user (wins over metadata ``user_id``).
        project: the project of every call (else the ambient context / the meter's project).
        metadata: extra metadata stored on every event.
        check_budgets: call ``meter.check_budgets`` before each model call (default True).
        record_cache_hits: LLM-cache hits (``llm.cache``) made no provider call: True (default)
            records them with their tokens and ``cost_usd=0.0`` (``price_id="llm-cache-hit"``,
            ``metadata["llm_cache_hit"]=True``), False skips them.

    .. versionadded:: 0.1
    """

    raise_error = True  # only BudgetExceededError (or anything, on a strict meter) escapes; see _fail
    run_inline = True  # keep it on the caller's task/thread so the adapter scope reaches the model call
    # hooks this handler does not implement: LangChain then skips the no-op calls. Chains, tools and
    # retrievers stay on (their runs give a model call its trace root and agent name).
    ignore_agent = True
    ignore_retry = True
    ignore_custom_event = True

    def __init__(self, meter: Meter | None = None, *, agent_id: str | None = None, session_id: str | None = None,
                 user_id: str | None = None, project: str | None = None,
                 metadata: Mapping[str, Any] | None = None, check_budgets: bool = True,
                 record_cache_hits: bool = True) -> None:
        super().__init__()
        if meter is not None and not isinstance(meter, Meter):
            from ..exceptions import ConfigurationError

            raise ConfigurationError(f"TrackerHandler(meter=...) takes a Meter or None, got {type(meter).__name__}")
        self._meter = meter
        self._explicit = {k: v for k, v in {"agent_id": agent_id, "session_id": session_id, "user_id": user_id,
                                             "project": project}.items() if v is not None}
        self._metadata = dict(metadata or {})
        self._check_budgets = check_budgets
        self._record_cache_hits = record_cache_hits
        self._runs: dict[UUID, _Node] = {}
        self._lock = threading.Lock()
        self._warned_stream = False
        self._warned_meter = False

    # -- helpers ---------------------------------------------------------------------------------------
    def _resolve(self) -> Meter | None:
        try:
            return resolve_meter(self._meter)
        except TrackerNotInitializedError:
            if not self._warned_meter:
                self._warned_meter = True
                logger.warning("a2a_llm_tracker: TrackerHandler has no meter (call init_sync() or pass meter=); "
                               "LangChain calls are not recorded")
            return None

    def _fail(self, where: str) -> None:
        meter = self._meter
        if meter is None:
            try:
                meter = resolve_meter(None)
            except TrackerNotInitializedError:
                meter = None
        if meter is not None and meter.strict:
            raise
        logger.warning("a2a_llm_tracker: LangChain %s failed; the call is not affected", where, exc_info=True)

    def _put(self, run_id: UUID, run: _Node) -> None:
        runs = self._runs
        if len(runs) >= _MAX_RUNS:  # never grow without bound if ends go missing
            with self._lock:  # the one multi-step change of the table; set/get/pop alone are atomic
                while len(runs) >= _MAX_RUNS:
                    try:
                        runs.pop(next(iter(runs)), None)
                    except (RuntimeError, StopIteration):  # changed by another thread meanwhile: retry
                        continue
        runs[run_id] = run

    def _pop(self, run_id: UUID) -> _Node | None:
        return self._runs.pop(run_id, None)

    def _ancestry(self, parent: UUID) -> tuple[UUID, str | None]:
        """The root run id (the farthest ancestor seen, or the unseen parent) and the nearest agent name."""
        root, agent = parent, None
        get = self._runs.get  # a stored entry's parent and agent never change: reading needs no lock
        for _ in range(1000):
            root = parent
            entry = get(parent)
            if entry is None:
                break
            if agent is None and entry.agent:
                agent = entry.agent
            if entry.parent is None:
                break
            parent = entry.parent
        return root, agent

    # -- chains / tools: only kept for parent walks (trace root, agent name) ---------------------------
    def on_chain_start(self, serialized: dict[str, Any] | None, inputs: Any, *, run_id: UUID,
                       parent_run_id: UUID | None = None, metadata: dict[str, Any] | None = None,
                       **kwargs: Any) -> None:
        agent = metadata.get("lc_agent_name") if metadata else None
        self._put(run_id, _Node(parent_run_id, str(agent) if agent else None))

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._pop(run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._pop(run_id)

    def on_tool_start(self, serialized: dict[str, Any], input_str: str, *, run_id: UUID,
                      parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._put(run_id, _Node(parent_run_id))

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._pop(run_id)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._pop(run_id)

    def on_retriever_start(self, serialized: dict[str, Any], query: str, *, run_id: UUID,
                           parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._put(run_id, _Node(parent_run_id))

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._pop(run_id)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._pop(run_id)

    # -- model runs ------------------------------------------------------------------------------------
    def on_chat_model_start(self, serialized: dict[str, Any], messages: list[list[Any]], *, run_id: UUID,
                            parent_run_id: UUID | None = None, tags: list[str] | None = None,
                            metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._model_start("chat", serialized, run_id, parent_run_id, metadata, kwargs)

    def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], *, run_id: UUID,
                     parent_run_id: UUID | None = None, tags: list[str] | None = None,
                     metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._model_start("completion", serialized, run_id, parent_run_id, metadata, kwargs)

    def _model_start(self, operation: str, serialized: dict[str, Any] | None, run_id: UUID,
                     parent_run_id: UUID | None, metadata: dict[str, Any] | None, kwargs: dict[str, Any]) -> None:
        try:
            meter = self._meter if self._meter is not None else self._resolve()
            if meter is None or export_suppressed():
                return
            outer = current_adapter()
            if outer is not None and outer != FRAMEWORK:
                self._put(run_id, _Run(parent_run_id, skip=True))
                return
            run = self._new_model_run(operation, serialized, run_id, parent_run_id, metadata or _EMPTY, kwargs)
            if self._check_budgets and meter.budgets:
                get = run.fields.get
                meter.check_budgets(project=get("project"), agent_id=get("agent_id"), user_id=get("user_id"),
                                    session_id=get("session_id"), trace_id=get("trace_id"))
            if outer is None:  # claim the call so an inner adapter (LiteLLM) skips it
                scope = adapter_scope(FRAMEWORK)
                if scope.__enter__():
                    run.scope = scope
            self._put(run_id, run)
            run.started = _now()
        except BudgetExceededError:
            raise
        except Exception:
            self._fail("on_llm_start")

    def _new_model_run(self, operation: str, serialized: dict[str, Any] | None, run_id: UUID,
                       parent: UUID | None, md: Mapping[str, Any], kwargs: Mapping[str, Any]) -> _Run:
        """The run of a model call, with every attribution field it already knows (only non-None values)."""
        params = kwargs.get("invocation_params") or _EMPTY
        ser_kwargs = (serialized.get("kwargs") if serialized else None) or _EMPTY
        model = (md.get("ls_model_name") or params.get("model") or params.get("model_name")
                 or ser_kwargs.get("model_name") or ser_kwargs.get("model"))
        run_str = str(run_id)
        fields: dict[str, Any] = {"call_id": run_str}
        ancestor_agent = None
        if parent is None:
            fields["trace_id"] = run_str
        else:
            root, ancestor_agent = self._ancestry(parent)
            fields["trace_id"] = str(root)
            fields["parent_call_id"] = str(parent)
        if md:
            agent = md.get("agent_id") or md.get("lc_agent_name") or ancestor_agent or md.get("langgraph_node")
            session, user = md.get("session_id") or md.get("thread_id"), md.get("user_id")
        else:
            agent, session, user = ancestor_agent, None, None
        if agent is not None:
            fields["agent_id"] = agent if type(agent) is str else str(agent)
        if session is not None:
            fields["session_id"] = session if type(session) is str else str(session)
        if user is not None:
            fields["user_id"] = user if type(user) is str else str(user)
        if self._explicit:
            fields.update(self._explicit)
        extra = dict(self._metadata) if self._metadata else {}
        if md:
            for key in _GRAPH_KEYS:
                value = md.get(key)
                if value is not None:
                    extra[key] = value
        name = kwargs.get("name")
        if name:
            extra["run_name"] = name
        if ser_kwargs:
            endpoint = endpoint_host(ser_kwargs.get("openai_api_base") or ser_kwargs.get("base_url")
                                     or ser_kwargs.get("anthropic_api_url") or ser_kwargs.get("api_base"))
            if endpoint:
                extra["endpoint"] = endpoint
        if extra:
            fields["metadata"] = extra
        provider = md.get("ls_provider")
        return _Run(parent, model=str(model) if model else None, provider=str(provider) if provider else None,
                    operation=operation, stream=bool(params.get("stream")), fields=fields)

    def on_llm_new_token(self, token: Any, *, chunk: Any = None, run_id: UUID, **kwargs: Any) -> None:
        run = self._runs.get(run_id)  # one run's tokens arrive in order; a dict read needs no lock
        if run is None or type(run) is not _Run:
            return
        if run.first_token is None:
            run.first_token = _now()
            run.stream = True
        message = getattr(chunk, "message", None)
        usage = getattr(message, "usage_metadata", None)
        if usage:
            if run.chunk_usages is None:
                run.chunk_usages = []
            run.chunk_usages.append(usage)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        ended = _now()
        run = self._pop(run_id)
        if run is None or type(run) is not _Run:
            return
        try:
            if run.scope is not None:
                self._close_scope(run)
            if not run.skip:
                self._record(run, response, None, ended)
        except Exception:
            self._fail("on_llm_end")

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        ended = _now()
        run = self._pop(run_id)
        if run is None or type(run) is not _Run:
            return
        try:
            self._close_scope(run)
            if not run.skip:
                self._record(run, kwargs.get("response"), error, ended)
        except Exception:
            self._fail("on_llm_error")

    @staticmethod
    def _close_scope(run: _Run) -> None:
        if run.scope is not None:
            try:
                run.scope.__exit__(None, None, None)
            except (ValueError, RuntimeError):
                pass  # ended in another context (a thread hop): that context's copy is simply dropped
            run.scope = None

    # -- building the event ----------------------------------------------------------------------------
    def _record(self, run: _Run, response: Any, error: BaseException | None, ended: float) -> None:
        meter = self._meter if self._meter is not None else self._resolve()
        if meter is None:
            return
        gen = _first_generation(response)
        message = getattr(gen, "message", None)
        usage_md = getattr(message, "usage_metadata", None)
        resp_md = getattr(message, "response_metadata", None) or _EMPTY
        llm_output = getattr(response, "llm_output", None) or _EMPTY
        fields = run.fields  # the run was popped: its fields are ours to fill (only non-None values)
        cache_hit = False
        if usage_md:
            if run.chunk_usages and len(run.chunk_usages) > 1:
                usage_md = _cumulative_fix(usage_md, run.chunk_usages)
            _usage_into(usage_md, fields)
            cache_hit = usage_md.get("total_cost") == 0 and not llm_output and not run.stream
        else:
            usage = usage_from_raw(llm_output.get("token_usage") or llm_output.get("usage")
                                   or resp_md.get("token_usage") or resp_md.get("usage"))
            if usage is not None:
                fields.update((k, v) for k, v in usage.event_fields().items() if v is not None)
        if cache_hit:
            if not self._record_cache_hits:
                return
            fields.update(input_cost_usd=0.0, output_cost_usd=0.0, cost_usd=0.0, cost_source="pricing",
                          price_id="llm-cache-hit")
            fields.setdefault("metadata", {})["llm_cache_hit"] = True
        response_model = resp_md.get("model_name") or resp_md.get("model") or llm_output.get("model_name")
        provider = resp_md.get("model_provider") or llm_output.get("model_provider") or run.provider
        service_tier = resp_md.get("service_tier") or llm_output.get("service_tier")
        if service_tier and service_tier != "default":
            fields.setdefault("metadata", {})["service_tier"] = service_tier
        finish = (resp_md.get("finish_reason") or resp_md.get("stop_reason")
                  or (getattr(gen, "generation_info", None) or _EMPTY).get("finish_reason"))
        request_id = resp_md.get("id") or llm_output.get("id")
        fields["framework"] = FRAMEWORK
        if provider:
            fields["provider"] = provider if type(provider) is str else str(provider)
        if response_model:
            fields["response_model"] = response_model = str(response_model)
        model = run.model or response_model
        if model:
            fields["model"] = model
        if run.operation != "chat":
            fields["operation"] = run.operation
        if run.stream:
            fields["stream"] = True
        if run.started:
            fields["latency_ms"] = (ended - run.started) * 1000.0
            if run.first_token is not None:
                fields["time_to_first_token_ms"] = max(run.first_token - run.started, 0.0) * 1000.0
        if finish:
            fields["finish_reason"] = str(finish)
        if request_id:
            fields["request_id"] = str(request_id)
        if error is not None:
            fields.update(status="error", error_type=type(error).__name__)
            message_text = str(error)
            if message_text:
                fields["error_message"] = message_text
        if "input_tokens" not in fields and "output_tokens" not in fields:
            fields["accuracy"] = "unknown"
            if run.stream and error is None:
                self._warn_stream(run)
        meter._record_later(fields)

    def _warn_stream(self, run: _Run) -> None:
        if self._warned_stream:
            return
        self._warned_stream = True
        logger.warning(
            "a2a_llm_tracker: a streamed LangChain call to %s returned no token usage, so it was recorded with "
            "accuracy='unknown'. Set stream_usage=True on the chat model (e.g. ChatOpenAI(..., stream_usage=True); "
            "it is off by default when base_url is set) so the provider reports usage on streams.", run.model)

    def __repr__(self) -> str:
        return f"TrackerHandler(meter={self._meter!r})"


def _first_generation(response: Any) -> Any:
    generations = getattr(response, "generations", None)
    if not generations:
        return None
    first = generations[0]
    if isinstance(first, list):
        return first[0] if first else None
    return first

