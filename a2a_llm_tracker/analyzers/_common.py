"""Shared helpers for the analyzers: reading SDK objects without importing SDKs, safe number
extraction, and the :class:`Analysis` every wire-format module returns.

Nothing here imports a provider SDK. An SDK object is turned into a plain dict through the
methods it already has (``model_dump``, ``to_dict``, proto ``to_dict``) or plain attribute reads.
"""

from __future__ import annotations as _annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeGuard

from .._events import TOKEN_FIELDS, Usage

__all__ = [
    "MAX_COUNT",
    "Analysis",
    "Payload",
    "as_count",
    "as_number",
    "as_str",
    "dig",
    "finalize_usage",
    "first",
    "first_count",
    "get",
    "is_mapping",
    "payload",
    "to_plain",
    "unknown_analysis",
]

#: Counts above this are treated as garbage (no real call bills 2**53 tokens).
MAX_COUNT = 2**53

_MAX_DEPTH = 30


@dataclass(frozen=True, slots=True)
class Analysis:
    """What an analyzer read from one provider response (or one whole stream).

    Attributes:
        provider: provider name for the event (``openai``, ``anthropic``, ``gemini`` ...).
        operation: ``chat``, ``responses``, ``embedding``, ``image``, ``completion``.
        usage: normalised token usage (inclusive convention; None = not reported).
        model: the model the response names (used as the event's ``model`` when the caller
            gives no ``model_override``).
        response_model: the model string exactly as the response reported it.
        finish_reason: why generation stopped, as the provider spells it.
        request_id: the provider's request id (SDK header value when known, else the body id).
        status: ``ok`` or ``error``.
        error_type / error_message: for error bodies.
        metadata: extra facts (service tier, safety ratings, ...).
        stream: True when built from stream chunks.
        latency_ms: a latency the provider reported (Bedrock ``metrics.latencyMs``).
        cost_usd: a cost the provider or framework reported (LiteLLM ``response_cost``).
        warnings: problems met while reading (logged once by the caller).
        readable: False when nothing recognisable was found in the payload.

    .. versionadded:: 0.1
    """

    provider: str | None = None
    operation: str = "chat"
    usage: Usage = field(default_factory=Usage)
    model: str | None = None
    response_model: str | None = None
    finish_reason: str | None = None
    request_id: str | None = None
    status: str = "ok"
    error_type: str | None = None
    error_message: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    latency_ms: float | None = None
    cost_usd: float | None = None
    warnings: tuple[str, ...] = ()
    readable: bool = True

    def with_(self, **changes: Any) -> Analysis:
        """A copy with *changes* applied."""
        return replace(self, **changes)


def unknown_analysis(provider: str | None, reason: str, *, operation: str = "chat",
                     stream: bool = False) -> Analysis:
    """An analysis for a payload that could not be read: no tokens, ``accuracy="unknown"``."""
    return Analysis(provider=provider, operation=operation, stream=stream, warnings=(reason,), readable=False)


# -- converting SDK objects ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Payload:
    """A response as plain data plus what only the SDK object knew."""

    data: Any
    sdk: str | None = None  #: top-level module of the SDK object (``openai``, ``google.generativeai`` ...)
    request_id: str | None = None  #: the SDK's ``_request_id`` (from the response headers)
    hidden: Mapping[str, Any] | None = None  #: LiteLLM ``_hidden_params``


def _module(obj: Any) -> str:
    return getattr(type(obj), "__module__", "") or ""


def _sdk_root(module: str) -> str | None:
    if not module or module == "builtins":
        return None
    for legacy in ("google.generativeai", "google.ai.generativelanguage"):
        if module.startswith(legacy):
            return legacy
    if module.startswith("google.genai"):
        return "google.genai"
    return module.split(".", 1)[0]


def payload(obj: Any) -> Payload:
    """Turn a response (dict or SDK object) into plain data, remembering SDK-only facts."""
    if isinstance(obj, Mapping):
        return Payload(to_plain(obj))
    module = _module(obj)
    sdk = _sdk_root(module)
    request_id = None
    rid = _safe_getattr(obj, "_request_id")
    if isinstance(rid, str) and rid:
        request_id = rid
    hidden = _safe_getattr(obj, "_hidden_params")
    return Payload(to_plain(obj), sdk=sdk, request_id=request_id,
                   hidden=hidden if isinstance(hidden, Mapping) else None)


def _safe_getattr(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name, None)
    except Exception:  # a property that raises must not break tracking
        return None


def to_plain(obj: Any, _depth: int = 0) -> Any:
    """Recursively convert *obj* into dicts, lists, str, numbers, bools and None.

    Uses only methods the object already has (pydantic ``model_dump``, proto-plus ``to_dict``,
    ``to_dict()``, ``dict()``) or its public attributes; never imports an SDK.
    """
    if _depth > _MAX_DEPTH:
        return None
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, bytes | bytearray):
        return None  # binary payloads (images, audio) carry no usage
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            out[str(key)] = to_plain(value, _depth + 1)
        extra = out.pop("additional_properties", None)  # mistralai keeps unknown keys here
        if isinstance(extra, dict):
            for key, value in extra.items():
                out.setdefault(key, value)
        return out
    if isinstance(obj, list | tuple | set | frozenset):
        return [to_plain(v, _depth + 1) for v in obj]
    if isinstance(obj, enum.Enum):
        return to_plain(obj.value, _depth + 1)
    converted = _convert_object(obj)
    if converted is not None and converted is not obj:
        return to_plain(converted, _depth + 1)
    return None


def _convert_object(obj: Any) -> Any:
    """One conversion step for an SDK object; None when nothing works."""
    dump = getattr(obj, "model_dump", None)  # pydantic v2 (openai, anthropic, google-genai, cohere, groq ...)
    if callable(dump):
        for kwargs in ({"mode": "json", "warnings": False}, {"mode": "json"}, {}):
            try:
                return dump(**kwargs)
            except TypeError:
                continue
            except Exception:
                break
    module = _module(obj)
    if module.startswith("google.generativeai") or module.startswith("google.ai.generativelanguage"):
        converted = _convert_legacy_gemini(obj)
        if converted is not None:
            return converted
    pb = getattr(type(obj), "pb", None)  # proto-plus message: Message.to_dict(msg)
    if pb is not None and callable(getattr(type(obj), "to_dict", None)):
        try:
            return type(obj).to_dict(obj)
        except Exception:
            pass
    for name in ("to_dict", "dict", "_asdict"):
        method = getattr(obj, name, None)
        if callable(method):
            try:
                result = method()
            except Exception:
                continue
            if isinstance(result, Mapping):
                return result
    try:
        attrs = vars(obj)
    except TypeError:
        return None
    return {k: v for k, v in attrs.items() if not k.startswith("_")}


def _convert_legacy_gemini(obj: Any) -> Any:
    # google.generativeai GenerateContentResponse: to_dict() gives the proto as snake_case dict.
    method = getattr(obj, "to_dict", None)
    if callable(method):
        try:
            result = method()
            if isinstance(result, Mapping):
                return result
        except Exception:
            pass
    inner = getattr(obj, "_result", None)
    if inner is not None and callable(getattr(type(inner), "to_dict", None)):
        try:
            return type(inner).to_dict(inner)
        except Exception:
            return None
    return None


# -- reading values --------------------------------------------------------------------------------------
def is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    """True for a dict-like value."""
    return type(value) is dict or isinstance(value, Mapping)  # plain dicts skip the ABC check (hot path)


def get(obj: Any, key: str, default: Any = None) -> Any:
    """``obj[key]`` for mappings, ``obj.key`` for objects; *default* when absent. Never raises.

    Hot path (called for every stream chunk): plain dicts and pydantic models are read directly.
    """
    cls = type(obj)
    if cls is dict:
        value = obj.get(key)
        return default if value is None else value
    fields = getattr(cls, "__pydantic_fields__", None)
    if fields is not None:
        # pydantic models (most SDKs): read __dict__ and the extras directly; a missing attribute
        # would go through BaseModel.__getattr__, which builds an exception (slow, per chunk).
        try:
            value = obj.__dict__.get(key)
            if value is None and key not in fields:
                extra = obj.__pydantic_extra__
                value = extra.get(key) if extra else None
                if value is None and key in _properties(cls):
                    value = _safe_getattr(obj, key)
        except Exception:
            value = _safe_getattr(obj, key)
        return default if value is None else value
    if isinstance(obj, Mapping):
        try:
            value = obj.get(key, default)
        except Exception:
            return default
        return default if value is None else value
    if obj is None or isinstance(obj, str | int | float | bool | list | tuple):
        return default
    value = _safe_getattr(obj, key)
    return default if value is None else value


_PROPERTIES: dict[type, frozenset[str]] = {}


def _properties(cls: type) -> frozenset[str]:
    """Names a class answers through properties/descriptors rather than fields (cached per class)."""
    names = _PROPERTIES.get(cls)
    if names is None:
        names = frozenset(name for klass in cls.__mro__ for name, attr in vars(klass).items()
                          if isinstance(attr, property) or hasattr(attr, "__get__") and not callable(attr))
        _PROPERTIES[cls] = names
    return names


def first(obj: Any, *keys: str) -> Any:
    """The first of *keys* present (not None) in *obj*."""
    for key in keys:
        value = get(obj, key)
        if value is not None:
            return value
    return None


def dig(obj: Any, *path: str | int) -> Any:
    """Follow *path* (keys, or list indexes) through mappings/objects/lists; None on any miss."""
    current = obj
    for step in path:
        if current is None:
            return None
        if isinstance(step, int):
            if isinstance(current, list | tuple) and -len(current) <= step < len(current):
                current = current[step]
            else:
                return None
        else:
            current = get(current, step)
    return current


def as_count(value: Any, name: str = "count", warnings: list[str] | None = None) -> int | None:
    """A token count as a non-negative int, or None.

    Accepts ints, integral floats (Cohere's SDK sends ``58.0``) and digit strings. Anything else
    (bools, negatives, fractions, NaN, absurdly large numbers, other types) becomes None with a
    warning appended to *warnings*.
    """
    if value is None:
        return None
    result: int | None = None
    if isinstance(value, bool):
        result = None
    elif isinstance(value, int):
        result = value
    elif isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            result = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.isdigit() and len(text) < 20:
            result = int(text)
    if result is not None and 0 <= result <= MAX_COUNT:
        return result
    if warnings is not None:
        warnings.append(f"ignored {name}={_short(value)} (not a valid token count)")
    return None


def first_count(obj: Any, keys: Iterable[str], warnings: list[str] | None, name: str | None = None) -> int | None:
    """The first of *keys* in *obj* that holds a valid count."""
    for key in keys:
        raw = get(obj, key)
        if raw is not None:
            count = as_count(raw, name or key, warnings)
            if count is not None:
                return count
    return None


def as_number(value: Any) -> float | None:
    """A finite non-negative float, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def as_str(value: Any, limit: int = 500) -> str | None:
    """A non-empty string (cut to *limit*), or None. Numbers become strings; other types None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value:
        return value[:limit]
    if isinstance(value, enum.Enum):
        return as_str(getattr(value, "value", None) or getattr(value, "name", None), limit)
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# -- enforcing the usage contract ------------------------------------------------------------------------
def finalize_usage(*, input_tokens: int | None = None, output_tokens: int | None = None,
                   total_tokens: int | None = None, cached_input_tokens: int | None = None,
                   cache_write_tokens: int | None = None, reasoning_tokens: int | None = None,
                   token_details: Mapping[str, Any] | None = None, raw_usage: Any = None,
                   warnings: list[str] | None = None) -> Usage:
    """Build a :class:`Usage` that always satisfies the contract.

    Subsets that exceed their totals are dropped (set to None) with a warning rather than
    producing an invalid event; ``total_tokens`` defaults to input + output.
    """
    warn = warnings if warnings is not None else []
    counts = {"input_tokens": input_tokens, "output_tokens": output_tokens, "total_tokens": total_tokens,
              "cached_input_tokens": cached_input_tokens, "cache_write_tokens": cache_write_tokens,
              "reasoning_tokens": reasoning_tokens}
    for name in TOKEN_FIELDS:  # defensive: callers pass counts, but never trust
        value = counts[name]
        if value is None or (type(value) is int and 0 <= value <= MAX_COUNT):  # the usual case, cheaply
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > MAX_COUNT:
            warn.append(f"dropped {name}={_short(value)}")
            counts[name] = None
    inp = counts["input_tokens"]
    if inp is not None:
        cached, write = counts["cached_input_tokens"], counts["cache_write_tokens"]
        if (cached or 0) + (write or 0) > inp:
            warn.append(f"cache counts (read {cached}, write {write}) exceed input_tokens {inp}; dropped them")
            counts["cached_input_tokens"] = counts["cache_write_tokens"] = None
    out = counts["output_tokens"]
    if out is not None and counts["reasoning_tokens"] is not None and counts["reasoning_tokens"] > out:
        warn.append(f"reasoning_tokens {counts['reasoning_tokens']} exceed output_tokens {out}; dropped it")
        counts["reasoning_tokens"] = None
    if counts["total_tokens"] is None and (inp is not None or out is not None):
        counts["total_tokens"] = (inp or 0) + (out or 0)
    details: dict[str, int | float] = {}
    for key, value in (token_details or {}).items():
        if value is None:
            continue
        if type(value) is int and 0 <= value <= MAX_COUNT and type(key) is str:  # the usual case, cheaply
            details[key] = value
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            warn.append(f"dropped token_details[{key!r}]={_short(value)}")
            continue
        if isinstance(value, float) and float(value).is_integer() and abs(value) <= MAX_COUNT:
            value = int(value)
        details[str(key)] = value
    raw = raw_usage if isinstance(raw_usage, dict) else None
    return Usage(input_tokens=counts["input_tokens"], output_tokens=counts["output_tokens"],
                 total_tokens=counts["total_tokens"], cached_input_tokens=counts["cached_input_tokens"],
                 cache_write_tokens=counts["cache_write_tokens"], reasoning_tokens=counts["reasoning_tokens"],
                 token_details=details, raw_usage=raw)
