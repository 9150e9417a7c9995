"""UsageEvent: the one schema every adapter produces and every sink stores.

The usage contract (see DESIGN.md): ``input_tokens`` and ``output_tokens`` are inclusive;
``cached_input_tokens`` and ``cache_write_tokens`` are subsets of the input,
``reasoning_tokens`` a subset of the output. ``None`` means "not reported", never 0.
"""

from __future__ import annotations as _annotations

import itertools
import math
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
        new = object.__new__(type(self))
        data = self.__dict__.copy()
        data.update(update)
        object.__setattr__(new, "__dict__", data)
        object.__setattr__(new, "__pydantic_fields_set__", self.__pydantic_fields_set__ | update.keys())
        object.__setattr__(new, "__pydantic_extra__", None)
        object.__setattr__(new, "__pydantic_private__", None)
        return new

    def to_record(self) -> dict[str, Any]:
        """The event as a JSON-ready dict (what JSONL lines and SQL rows hold)."""
        return self.model_dump(mode="json")
