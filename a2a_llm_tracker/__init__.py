"""a2a-llm-tracker: track LLM usage and cost from one place, across providers and agent frameworks.

Everything is exported lazily (PEP 562): importing the package loads no SDK or framework.
"""

from __future__ import annotations as _annotations

import importlib
import logging as _logging
from typing import TYPE_CHECKING, Any

from ._version import __version__

# Libraries add a NullHandler: the application decides where our log lines go.
_logging.getLogger("a2a_llm_tracker").addHandler(_logging.NullHandler())

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from ._context import (
        ContextThreadPoolExecutor,
        TrackContext,
        bind_context,
        get_context,
        meter_context,
        reset_context,
        set_context,
    )
    from ._dispatch import DispatchConfig, DispatchStats
    from ._events import Accuracy, CostSource, Status, Usage, UsageEvent
    from ._meter import Meter
    from ._pricing import ModelPrice, PricingRegistry
    from ._setup import get_llm, get_meter, init_sync, is_initialized, reset, set_meter
    from .exceptions import (
        AdapterUnavailable,
        BudgetExceededError,
        ConfigurationError,
        ExportError,
        PricingError,
        SinkError,
        TrackerError,
        TrackerNotInitializedError,
        UnknownModelError,
    )

# name -> module that defines it (relative to this package)
_EXPORTS: dict[str, str] = {
    "Accuracy": "._events",
    "AdapterUnavailable": ".exceptions",
    "Budget": "._budget",
    "BudgetWarning": "._budget",
    "BudgetExceededError": ".exceptions",
    "ConfigurationError": ".exceptions",
    "ContextThreadPoolExecutor": "._context",
    "CostSource": "._events",
    "DispatchConfig": "._dispatch",
    "DispatchStats": "._dispatch",
    "ExportError": ".exceptions",
    "Meter": "._meter",
    "ModelPrice": "._pricing",
    "PricingError": ".exceptions",
    "PricingRegistry": "._pricing",
    "ResponseType": ".analyzers",
    "SinkError": ".exceptions",
    "Status": "._events",
    "TrackContext": "._context",
    "TrackerError": ".exceptions",
    "TrackerNotInitializedError": ".exceptions",
    "UnknownModelError": ".exceptions",
    "Usage": "._events",
    "UsageEvent": "._events",
    "accumulate": ".analyzers",
    "analyze_response": ".analyzers",
    "analyze_response_async": ".analyzers",
    "bind_context": "._context",
    "capture_events": ".testing",
    "extract_context": "._propagation",
    "get_context": "._context",
    "get_llm": "._setup",
    "get_meter": "._setup",
    "init": "._setup",
    "init_sync": "._setup",
    "inject_context": "._propagation",
    "is_initialized": "._setup",
    "meter_context": "._context",
    "reset": "._setup",
    "reset_context": "._context",
    "set_context": "._context",
    "set_meter": "._setup",
    "track_stream": ".analyzers",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'a2a_llm_tracker' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
