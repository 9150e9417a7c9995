"""Carry the tracker's context from one agent to another over HTTP (W3C ``traceparent`` + ``baggage``).

The caller adds its context to the outgoing headers with :func:`inject_context`; the callee
opens a :func:`~a2a_llm_tracker.meter_context` from the incoming headers with
:func:`extract_context` (or :class:`a2a_llm_tracker.integrations.asgi.TrackerMiddleware` does it
per request), so a session's cost rolls up across agents and services.

What travels, and how:

* ``traceparent: 00-<trace-id>-<parent-id>-01``. *trace-id* is the tracker ``trace_id`` when it is
  a W3C trace id (32 lowercase hex digits, not all zero); a non-W3C ``trace_id`` such as
  ``"run-42"`` travels in baggage (``a2a.trace_id``) and the traceparent gets a fresh id.
  *parent-id* is the caller's ``call_id`` when it is a 16-hex span id, else a fresh span id.
  A ``traceparent`` already present (e.g. set by OpenTelemetry instrumentation) is kept.
* ``baggage`` (W3C Baggage, values percent-encoded): ``a2a.session_id``, ``a2a.user_id``,
  ``a2a.project``, ``a2a.call_id`` (the caller's ``call_id``, whatever its form),
  ``a2a.agent_chain`` (the agents the request went through, the caller last) and ``a2a.trace_id``
  (see above). Other vendors' baggage entries are kept.

On the receiving side the new context has the caller's ``trace_id``, ``session_id``, ``user_id``
and ``project``; ``parent_call_id`` = the caller's ``call_id`` (``a2a.call_id``, else the
traceparent's parent-id), so **the callee's events point at the call the caller recorded**; and
a fresh 16-hex ``call_id`` for the request, which the callee's events carry and which becomes the
``parent_call_id`` of whatever the callee calls next. ``metadata["agent_chain"]`` lists the
upstream agents.

The link holds for events that take their ``call_id`` from the context (``meter.record`` and
``analyze_response`` do; adapters that assign their own per-call ids keep those). Malformed or
oversized headers are ignored (per W3C: an invalid ``traceparent`` is dropped, bad baggage
entries are skipped), never raised. This module does not use the OpenTelemetry API.
"""

from __future__ import annotations as _annotations

import logging
import re
import secrets
import urllib.parse
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any, TypeVar

from ._context import get_context, meter_context

__all__ = [
    "BAGGAGE_KEYS",
    "context_fields",
    "extract_context",
    "format_baggage",
    "inject_context",
    "new_span_id",
    "new_trace_id",
    "parse_baggage",
    "parse_traceparent",
]

logger = logging.getLogger("a2a_llm_tracker")

H = TypeVar("H")

#: context field -> baggage key
BAGGAGE_KEYS = {
    "session_id": "a2a.session_id",
    "user_id": "a2a.user_id",
    "project": "a2a.project",
    "call_id": "a2a.call_id",
    "trace_id": "a2a.trace_id",
    "agent_chain": "a2a.agent_chain",
}
_OURS = frozenset(BAGGAGE_KEYS.values())

_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_HEX16 = re.compile(r"^[0-9a-f]{16}$")
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_MAX_BAGGAGE = 8192  # W3C: at least 8192 bytes must be supported; we send no more and read no more
_MAX_ENTRIES = 180
_MAX_VALUE = 256  # one attribution value; longer ones are ignored
_MAX_CHAIN = 32
# baggage-octet minus "%", "+" kept encoded too (some decoders read it as a space)
_SAFE = "!#$&'()*/:<=>?@[]^_`{|}~-."


def new_trace_id() -> str:
    """A fresh W3C trace id (32 lowercase hex digits)."""
    while (value := secrets.token_hex(16)) == "0" * 32:
        pass
    return value


def new_span_id() -> str:
    """A fresh W3C span id (16 lowercase hex digits); used for ``call_id``."""
    while (value := secrets.token_hex(8)) == "0" * 16:
        pass
    return value


# -- parsing ---------------------------------------------------------------------------------------------
def parse_traceparent(value: str | None) -> tuple[str, str, str] | None:
    """``(trace_id, parent_id, flags)`` from a W3C ``traceparent`` value, or None if it is invalid."""
    if not value or not isinstance(value, str) or len(value) > 512:
        return None
    match = _TRACEPARENT.match(value.strip())
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    return trace_id, parent_id, flags


def parse_baggage(value: str | None) -> dict[str, str]:
    """The entries of a W3C ``baggage`` value (percent-decoded, properties dropped); bad entries skipped."""
    out: dict[str, str] = {}
    if not value or not isinstance(value, str) or len(value) > 4 * _MAX_BAGGAGE:
        return out
    for raw in value.split(",")[:_MAX_ENTRIES]:
        key, sep, rest = raw.partition("=")
        key = key.strip(" \t")
        if not sep or not _TOKEN.match(key):
            continue
        encoded = rest.split(";", 1)[0].strip(" \t")
        try:
            out[key] = urllib.parse.unquote(encoded, errors="strict")
        except UnicodeDecodeError:
            continue
    return out


def _clean(value: Any, limit: int = _MAX_VALUE) -> str | None:
    if not isinstance(value, str) or not value or len(value) > limit or _CONTROL.search(value):
        return None
    return value


def _encode(value: str) -> str:
    return urllib.parse.quote(value, safe=_SAFE)


def _encode_chain(chain: Iterable[str]) -> str:
    # each agent id is encoded first, so a comma inside an id cannot split it
    return ",".join(_encode(a) for a in chain)


def _decode_chain(value: str) -> list[str]:
    chain = []
    for part in value.split(",")[-_MAX_CHAIN:]:
        try:
            agent = _clean(urllib.parse.unquote(part, errors="strict"), 128)
        except UnicodeDecodeError:
            agent = None
        if agent:
            chain.append(agent)
    return chain


def format_baggage(entries: Mapping[str, str]) -> str:
    """A W3C ``baggage`` value from *entries* (values percent-encoded)."""
    return ",".join(f"{key}={_encode(value)}" for key, value in entries.items())


# -- header access (dict, httpx.Headers, ASGI raw pairs) -------------------------------------------------
def _header(headers: Any, name: str) -> str | None:
    """Case-insensitive lookup; repeated headers are joined with ',' (as HTTP combines them)."""
    if headers is None:
        return None
    if isinstance(headers, Mapping):
        getter = getattr(headers, "get_list", None)  # httpx/starlette Headers keep repeats apart
        if callable(getter):
            try:
                values = getter(name)
            except Exception:
                values = None
            if values is not None:
                return ",".join(values) if values else None
        items: Iterable[tuple[Any, Any]] = headers.items()
    else:
        items = headers
    found = []
    for pair in items:
        try:
            key, value = pair
        except (TypeError, ValueError):
            continue
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        if not isinstance(key, str) or key.lower() != name:
            continue
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if isinstance(value, str):
            found.append(value)
    return ",".join(found) if found else None


def _set_header(headers: MutableMapping[str, str], name: str, value: str) -> None:
    if type(headers) is dict:  # a plain dict is case-sensitive: replace any other spelling
        for key in [k for k in headers if isinstance(k, str) and k.lower() == name and k != name]:
            del headers[key]
    headers[name] = value


# -- the API ---------------------------------------------------------------------------------------------
def inject_context(headers: H | None = None) -> H | dict[str, str]:
    """Add the current tracker context to *headers* as ``traceparent`` and ``baggage``.

    *headers* may be a dict, an ``httpx.Headers`` or any mutable mapping; it is changed in place
    and returned (a new dict when None). Nothing is added when no context is set. An existing
    ``traceparent`` is kept; existing baggage entries of other vendors are kept.

    Example::

        with meter_context(session_id="s-1", agent_id="planner", call_id=new_span_id()):
            httpx.post(url, json=task, headers=inject_context({}))
    """
    target: Any = {} if headers is None else headers
    try:
        _inject(target)
    except Exception:  # propagation must never break the caller's request
        logger.warning("a2a_llm_tracker: could not add the tracker context to the headers", exc_info=True)
    return target  # type: ignore[no-any-return]


def _inject(headers: Any) -> None:
    ctx = get_context()
    chain = [a for a in ctx.metadata.get("agent_chain", ()) if isinstance(a, str)] if ctx.metadata else []
    if ctx.agent_id:
        chain.append(ctx.agent_id)
    chain = chain[-_MAX_CHAIN:]
    values = {"session_id": ctx.session_id, "user_id": ctx.user_id, "project": ctx.project,
              "call_id": ctx.call_id}
    if not any(values.values()) and not ctx.trace_id and not chain:
        return
    w3c_trace = ctx.trace_id if ctx.trace_id and _HEX32.match(ctx.trace_id) and ctx.trace_id != "0" * 32 else None
    existing = parse_traceparent(_header(headers, "traceparent"))
    if existing is None:
        parent = ctx.call_id if ctx.call_id and _HEX16.match(ctx.call_id) and ctx.call_id != "0" * 16 \
            else new_span_id()
        _set_header(headers, "traceparent", f"00-{w3c_trace or new_trace_id()}-{parent}-01")
        carried_trace = w3c_trace
    else:
        carried_trace = existing[0]
    entries: dict[str, str] = {BAGGAGE_KEYS[k]: v for k, v in values.items() if v}
    if ctx.trace_id and ctx.trace_id != carried_trace:
        entries[BAGGAGE_KEYS["trace_id"]] = ctx.trace_id
    if chain:
        entries[BAGGAGE_KEYS["agent_chain"]] = _encode_chain(chain)
    kept = []
    old = _header(headers, "baggage")
    if old and len(old) <= 4 * _MAX_BAGGAGE:
        for raw in old.split(","):
            key = raw.partition("=")[0].strip(" \t")
            if raw.strip() and key not in _OURS:
                kept.append(raw.strip())
    parts = list(kept)
    size = sum(len(p) + 1 for p in parts)
    for key, value in entries.items():
        part = f"{key}={_encode(value)}"
        if size + len(part) + 1 > _MAX_BAGGAGE or len(parts) >= _MAX_ENTRIES:
            logger.debug("a2a_llm_tracker: baggage full; %s not sent", key)
            continue
        parts.append(part)
        size += len(part) + 1
    if parts:
        _set_header(headers, "baggage", ",".join(parts))


def context_fields(headers: Any) -> dict[str, Any]:
    """The context fields incoming *headers* carry (what :func:`extract_context` opens), never raising.

    Keys: ``trace_id``, ``parent_call_id``, ``session_id``, ``user_id``, ``project`` and
    ``agent_chain`` (a list), each only when present and valid.
    """
    try:
        return _fields(headers)
    except Exception:
        logger.warning("a2a_llm_tracker: ignoring unreadable tracing headers", exc_info=True)
        return {}


def _fields(headers: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    parent = parse_traceparent(_header(headers, "traceparent"))
    bag = parse_baggage(_header(headers, "baggage"))
    trace_id = _clean(bag.get(BAGGAGE_KEYS["trace_id"])) or (parent[0] if parent else None)
    if trace_id:
        fields["trace_id"] = trace_id
    parent_call = _clean(bag.get(BAGGAGE_KEYS["call_id"])) or (parent[1] if parent else None)
    if parent_call:
        fields["parent_call_id"] = parent_call
    for name in ("session_id", "user_id", "project"):
        value = _clean(bag.get(BAGGAGE_KEYS[name]))
        if value:
            fields[name] = value
    chain_value = bag.get(BAGGAGE_KEYS["agent_chain"])
    if chain_value and len(chain_value) <= _MAX_BAGGAGE:
        chain = _decode_chain(chain_value)
        if chain:
            fields["agent_chain"] = chain
    return fields


def extract_context(headers: Any, *, new_call_id: bool = True, defaults: Mapping[str, Any] | None = None,
                    **overrides: Any) -> meter_context:
    """A :func:`meter_context` opened from incoming *headers* (``with extract_context(request.headers):``).

    Args:
        headers: the incoming headers: a dict, ``httpx``/Starlette ``Headers``, or ASGI
            ``[(b"name", b"value"), ...]`` pairs. Malformed values are ignored.
        new_call_id: give the request a fresh 16-hex ``call_id`` (its events' ``call_id``; the
            ``parent_call_id`` of what it calls next). False keeps the ambient one.
        defaults: fields for when the headers carry none (e.g. ``{"project": "billing"}``).
        **overrides: fields that win over the headers (e.g. ``agent_id="researcher"``); other
            keywords become metadata, as with :func:`meter_context`.

    Example::

        async def handle(request):
            with extract_context(request.headers, agent_id="researcher"):
                ...  # LLM calls here are attributed to the caller's session and trace
    """
    fields = {k: v for k, v in (defaults or {}).items() if v is not None}
    fields.update(context_fields(headers))
    chain = fields.pop("agent_chain", None)
    if new_call_id:
        fields["call_id"] = new_span_id()
    fields.update({k: v for k, v in overrides.items() if v is not None})
    if chain and "agent_chain" not in fields:
        fields["agent_chain"] = chain
    return meter_context(**fields)
