"""UsageEvent: the one schema every adapter produces and every sink stores.

The usage contract (see DESIGN.md): ``input_tokens`` and ``output_tokens`` are inclusive;
``cached_input_tokens`` and ``cache_write_tokens`` are subsets of the input,
``reasoning_tokens`` a subset of the output. ``None`` means "not reported", never 0.
"""

from __future__ import annotations as _annotations

import itertools
import logging
import math
import operator
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

from ._redact import redact_mapping, scrub_secrets

__all__ = [
    "TOKEN_FIELDS",
    "Accuracy",
    "CostSource",
    "Status",
    "Usage",
    "UsageEvent",
    "new_event_id",
]

#: The integer token fields of the usage contract.
TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)

_MAX_ERROR_MESSAGE = 2000
_SUBSET_FIELDS = ("cached_input_tokens", "cache_write_tokens", "reasoning_tokens")

logger = logging.getLogger("a2a_llm_tracker")


class Accuracy(StrEnum):
    """How the token counts were obtained."""

    EXACT = "exact"  #: reported by the provider
    ESTIMATED = "estimated"  #: counted by the tracker (for example a tokenizer); always labelled
    UNKNOWN = "unknown"  #: no usage was available


class CostSource(StrEnum):
    """Where ``cost_usd`` came from. ``None`` on an event means unpriced."""

    PRICING = "pricing"  #: the user's own prices
    CATALOG = "catalog"  #: the bundled list-price catalog (genai-prices), enabled by the user
    PROVIDER = "provider"  #: a cost the provider or framework reported (for example LiteLLM's), enabled by the user


class Status(StrEnum):
    """Outcome of the call."""

    OK = "ok"
    ERROR = "error"


class _EventIds:
    """32-hex ids: 16 random hex per process (renewed after fork) + a 16-hex counter.

    Unique like uuid4 (the random part tells processes apart) at a tenth of its cost.
    """

    def __init__(self) -> None:
        self._renew()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._renew)

    def _renew(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(int.from_bytes(os.urandom(4), "big"))

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFFFFFFFFFF:016x}"


#: A fresh, unique event id (the idempotency key for at-least-once delivery).
new_event_id = _EventIds()


_new_object = object.__new__
_set_attr = object.__setattr__


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _whole(value: float) -> int:
    if not value.is_integer():
        raise ValueError(f"must be a whole number of tokens, got {value!r}")
    return int(value)


# Validated in pydantic-core (fast): a non-negative int, or an integral float such as Cohere's 58.0.
# Bools and strings are rejected.
if TYPE_CHECKING:
    TokenCount = int  # what the validator always produces
else:
    TokenCount = Annotated[StrictInt, Field(ge=0)] | Annotated[
        StrictFloat, Field(ge=0, allow_inf_nan=False), AfterValidator(_whole)]
Amount = Annotated[float, Field(ge=0, allow_inf_nan=False)]


@dataclass(frozen=True, slots=True)
class Usage:
    """Normalised token usage, as an analyzer or adapter read it from a provider.

    All counts follow the inclusive convention; ``None`` means "not reported".
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cached_input_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    token_details: dict[str, int | float] = field(default_factory=dict)
    raw_usage: dict[str, Any] | None = None
    accuracy: Accuracy | None = None

    @property
    def is_empty(self) -> bool:
        """True when no token count at all was reported."""
        return all(getattr(self, name) is None for name in TOKEN_FIELDS)

    def event_fields(self) -> dict[str, Any]:
        """The fields of a :class:`UsageEvent` this usage fills (pass them as ``**kwargs``)."""
        fields: dict[str, Any] = {name: getattr(self, name) for name in TOKEN_FIELDS}
        fields["token_details"] = dict(self.token_details)
        fields["raw_usage"] = self.raw_usage
        fields["accuracy"] = self.accuracy or (Accuracy.UNKNOWN if self.is_empty else Accuracy.EXACT)
        return fields


class UsageEvent(BaseModel):
    """One LLM call: what it used, what it cost, and who made it.

    Flat, so every sink can store it as columns. Build one directly for a custom
    integration, or let an adapter build it; :meth:`Meter.record` fills in context and cost.

    Example::

        event = UsageEvent(provider="openai", model="gpt-4.1", input_tokens=120, output_tokens=30)
        event.total_tokens   # 150

    .. versionadded:: 0.1
    """

    model_config = ConfigDict(extra="forbid", validate_default=False, use_enum_values=True)

    def __init__(self, /, **data: Any) -> None:
        # Adapters build one event per LLM call from plain ints and strings: check those inline
        # (same rules, same result) and leave everything else to pydantic-core, which also words
        # the errors. tests/core/test_event_fast_path.py holds both paths to the same answers.
        fields = _plain_fields(data)
        if fields is None:
            self.__pydantic_validator__.validate_python(data, self_instance=self)
            return
        _set_attr(self, "__dict__", fields)
        _set_attr(self, "__pydantic_fields_set__", set(data))
        _set_attr(self, "__pydantic_extra__", None)
        _set_attr(self, "__pydantic_private__", None)

    # Not a "custom init" to pydantic: model_validate() stays pydantic-core's own path (the reference
    # the fast path is tested against), and nested validation never calls this.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    # identity and time
    event_id: str = Field(default_factory=new_event_id, min_length=1, max_length=200)
    ts: datetime = Field(default_factory=_utcnow)

    # what was called
    provider: str | None = None
    model: str | None = None
    response_model: str | None = None
    operation: str = "chat"
    stream: bool = False

    # usage (inclusive convention)
    input_tokens: TokenCount | None = None
    output_tokens: TokenCount | None = None
    total_tokens: TokenCount | None = None
    cached_input_tokens: TokenCount | None = None
    cache_write_tokens: TokenCount | None = None
    reasoning_tokens: TokenCount | None = None
    token_details: dict[str, int | float] = Field(default_factory=dict)
    raw_usage: dict[str, Any] | None = None
    accuracy: Literal["exact", "estimated", "unknown"] | None = None

    # cost (USD, computed in Decimal)
    input_cost_usd: Amount | None = None
    output_cost_usd: Amount | None = None
    cost_usd: Amount | None = None
    cost_source: Literal["pricing", "catalog", "provider"] | None = None
    price_id: str | None = None
    price_effective_from: datetime | None = None

    # outcome
    status: Literal["ok", "error"] = "ok"
    error_type: str | None = None
    error_message: str | None = None
    latency_ms: Amount | None = None
    time_to_first_token_ms: Amount | None = None
    request_id: str | None = None
    finish_reason: str | None = None
    framework: str | None = None

    # attribution
    project: str | None = None
    agent_id: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    trace_id: str | None = None
    call_id: str | None = None
    parent_call_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("token_details", mode="before")
    @classmethod
    def _validate_details(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError(f"token_details must be a dict of counts, got {type(value).__name__}")
        if all(type(c) is int and c >= 0 for c in value.values()):
            return value  # the common case, checked cheaply
        clean: dict[str, int | float] = {}
        for key, count in value.items():
            if count is None:
                continue
            if isinstance(count, bool) or not isinstance(count, int | float) or not math.isfinite(count):
                raise ValueError(f"token_details[{key!r}] must be a finite number, got {count!r}")
            if count < 0:
                raise ValueError(f"token_details[{key!r}] must not be negative, got {count}")
            clean[str(key)] = count
        return clean

    @field_validator("ts", "price_effective_from")
    @classmethod
    def _validate_utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # naive datetimes are taken as UTC
        return value.astimezone(UTC)

    @field_validator("error_message")
    @classmethod
    def _validate_error_message(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return scrub_secrets(value)[:_MAX_ERROR_MESSAGE]

    @field_validator("metadata", mode="before")
    @classmethod
    def _validate_metadata(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError(f"metadata must be a dict, got {type(value).__name__}")
        return redact_mapping(value) if value else value

    @model_validator(mode="after")
    def _check_contract(self) -> UsageEvent:
        inp, out = self.input_tokens, self.output_tokens
        if inp is not None:
            subset = (self.cached_input_tokens or 0) + (self.cache_write_tokens or 0)
            if subset > inp:
                raise ValueError(
                    f"cached_input_tokens ({self.cached_input_tokens}) + cache_write_tokens "
                    f"({self.cache_write_tokens}) exceed input_tokens ({inp}); cache counts are a subset of the input"
                )
        if out is not None and self.reasoning_tokens is not None and self.reasoning_tokens > out:
            raise ValueError(
                f"reasoning_tokens ({self.reasoning_tokens}) exceed output_tokens ({out}); "
                "reasoning is a subset of the output"
            )
        if self.total_tokens is None and (inp is not None or out is not None):
            object.__setattr__(self, "total_tokens", (inp or 0) + (out or 0))
        if self.accuracy is None:
            empty = all(getattr(self, name) is None for name in TOKEN_FIELDS)
            object.__setattr__(self, "accuracy", "unknown" if empty else "exact")
        if self.cost_usd is None and self.input_cost_usd is not None and self.output_cost_usd is not None:
            object.__setattr__(self, "cost_usd", self.input_cost_usd + self.output_cost_usd)
        return self

    @classmethod
    def from_usage(cls, usage: Usage, **fields: Any) -> UsageEvent:
        """Build an event from a normalised :class:`Usage` plus any other event fields."""
        return cls(**usage.event_fields(), **fields)

    def _replace(self, update: dict[str, Any]) -> UsageEvent:
        """A shallow copy with *update* applied, unvalidated (for values the tracker computed itself)."""
        new = _new_object(type(self))
        _set_attr(new, "__dict__", {**self.__dict__, **update})
        _set_attr(new, "__pydantic_fields_set__", self.__pydantic_fields_set__.union(update))
        _set_attr(new, "__pydantic_extra__", None)
        _set_attr(new, "__pydantic_private__", None)
        return new

    def to_record(self) -> dict[str, Any]:
        """The event as a JSON-ready dict (what JSONL lines and SQL rows hold)."""
        return self.model_dump(mode="json")


def event_from(fields: dict[str, Any]) -> UsageEvent:
    """A validated :class:`UsageEvent` from an adapter's *fields*, never losing the call to a provider quirk.

    When the reported subsets (cache, reasoning) exceed their totals, they are dropped, the raw
    usage is kept for audit, ``metadata["usage_warning"]`` says what was wrong, and a warning is
    logged. Any other invalid field raises (a ``ValueError`` naming it).
    """
    try:
        return UsageEvent(**fields)
    except ValueError as exc:
        if not any(fields.get(name) is not None for name in _SUBSET_FIELDS):
            raise
        logger.warning("a2a_llm_tracker: inconsistent usage reported for %s (%s); recording totals only",
                       fields.get("model"), exc.__class__.__name__)
        fixed = {**fields, **dict.fromkeys(_SUBSET_FIELDS)}
        fixed["metadata"] = {**(fields.get("metadata") or {}), "usage_warning": "subset counts exceeded totals"}
        return UsageEvent(**fixed)


# -- the plain-input fast path of UsageEvent(...) -------------------------------------------------------
_NONE = type(None)
_STR_FIELDS = ("provider", "model", "response_model", "price_id", "error_type", "request_id", "finish_reason",
               "framework", "project", "agent_id", "user_id", "session_id", "trace_id", "call_id", "parent_call_id")
_AMOUNT_FIELDS = ("input_cost_usd", "output_cost_usd", "cost_usd", "latency_ms", "time_to_first_token_ms")
_get_strs = operator.itemgetter(*_STR_FIELDS)
_get_counts = operator.itemgetter(*TOKEN_FIELDS)
_get_amounts = operator.itemgetter(*_AMOUNT_FIELDS)
_STR_OR_NONE = frozenset({str, _NONE})
_INT_OR_NONE = frozenset({int, _NONE})
_FLOAT_OR_NONE = frozenset({float, _NONE})
_LITERALS: dict[str, frozenset[str | None]] = {
    "accuracy": frozenset({"exact", "estimated", "unknown", None}),
    "cost_source": frozenset({"pricing", "catalog", "provider", None}),
    "status": frozenset({"ok", "error"}),
}
_ENUMS = (Accuracy, CostSource, Status)
_INF = math.inf
_FIELD_NAMES = frozenset(UsageEvent.model_fields)
#: Every field in declaration order; None where a default factory fills it in (see below).
_PLAIN_DEFAULTS: dict[str, Any] = {
    name: None if info.default_factory is not None else info.default
    for name, info in UsageEvent.model_fields.items()}


def _plain_fields(data: dict[str, Any]) -> dict[str, Any] | None:
    """The validated ``__dict__`` for *data* when every value is plain and valid, else None.

    None sends the input to pydantic-core (lax conversions, and the error messages). Only inputs
    whose validated value is certain are accepted here; the checks run in C where they can.
    """
    if not _FIELD_NAMES.issuperset(data):
        return None  # an unknown field: pydantic-core names it in the error
    fields = {**_PLAIN_DEFAULTS, **data}
    if not _STR_OR_NONE.issuperset(map(type, _get_strs(fields))):
        return None
    counts = _get_counts(fields)
    if not _INT_OR_NONE.issuperset(map(type, counts)):
        return None
    for count in counts:
        if count is not None and count < 0:
            return None
    for amount in _get_amounts(fields):
        if amount is not None and (type(amount) is not float or not 0 <= amount < _INF):
            return None
    for name, allowed in _LITERALS.items():
        value = fields[name]
        if type(value) in _ENUMS:
            value = fields[name] = value.value
        elif value is not None and type(value) is not str:
            return None
        if value not in allowed:
            return None
    event_id, ts, effective = fields["event_id"], fields["ts"], fields["price_effective_from"]
    if event_id is None:
        if "event_id" in data:
            return None
        fields["event_id"] = new_event_id()
    elif type(event_id) is not str or not 0 < len(event_id) <= 200:
        return None
    if ts is None:
        if "ts" in data:
            return None
        fields["ts"] = _utcnow()
    elif type(ts) is not datetime or ts.tzinfo is not UTC:
        return None
    if effective is not None and (type(effective) is not datetime or effective.tzinfo is not UTC):
        return None
    if type(fields["operation"]) is not str or type(fields["stream"]) is not bool:
        return None
    details = fields["token_details"]
    if details is None:
        fields["token_details"] = {}
    elif type(details) is not dict:
        return None
    else:
        for key, count in details.items():
            if type(key) is not str or type(count) is not int or count < 0:
                return None
        fields["token_details"] = dict(details)
    raw = fields["raw_usage"]
    if raw is not None:
        if type(raw) is not dict or not _STR_ONLY.issuperset(map(type, raw)):
            return None
        fields["raw_usage"] = dict(raw)
    metadata = fields["metadata"]
    if metadata is None:
        fields["metadata"] = {}
    elif type(metadata) is not dict or not _STR_ONLY.issuperset(map(type, metadata)):
        return None
    else:
        fields["metadata"] = redact_mapping(metadata) if metadata else {}
    message = fields["error_message"]
    if message is not None:
        if type(message) is not str:
            return None
        fields["error_message"] = scrub_secrets(message)[:_MAX_ERROR_MESSAGE]
    # the usage contract, as _check_contract enforces it (a violation goes to pydantic for the error)
    inp, out, total, cached, write, reasoning = counts
    if inp is not None and (cached or 0) + (write or 0) > inp:
        return None
    if out is not None and reasoning is not None and reasoning > out:
        return None
    if total is None and (inp is not None or out is not None):
        fields["total_tokens"] = (inp or 0) + (out or 0)
    if fields["accuracy"] is None:
        fields["accuracy"] = "unknown" if counts.count(None) == len(counts) else "exact"
    if fields["cost_usd"] is None and fields["input_cost_usd"] is not None and fields["output_cost_usd"] is not None:
        fields["cost_usd"] = fields["input_cost_usd"] + fields["output_cost_usd"]
    return fields


_STR_ONLY = frozenset({str})
