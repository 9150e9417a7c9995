"""The tracker's exceptions.

Only configuration and explicit API calls raise; the recording path never raises into
user code (unless the Meter was built with ``strict=True``)::

    TrackerError
    ├── ConfigurationError          (also a ValueError)
    │   └── TrackerNotInitializedError
    ├── PricingError                (also a ValueError)
    │   └── UnknownModelError       (also a LookupError)
    ├── SinkError
    │   └── ExportError
    ├── AdapterUnavailable          (also an ImportError)
    └── BudgetExceededError
"""

from __future__ import annotations as _annotations

__all__ = [
    "AdapterUnavailable",
    "BudgetExceededError",
    "ConfigurationError",
    "ExportError",
    "PricingError",
    "SinkError",
    "TrackerError",
    "TrackerNotInitializedError",
    "UnknownModelError",
]


class TrackerError(Exception):
    """Root of every exception the tracker raises."""


class ConfigurationError(TrackerError, ValueError):
    """A setting, argument or environment variable is wrong."""


class TrackerNotInitializedError(ConfigurationError):
    """No global meter exists yet: call ``init()``/``init_sync()`` or pass ``meter=``."""


class PricingError(TrackerError, ValueError):
    """A price or price sheet is invalid."""


class UnknownModelError(PricingError, LookupError):
    """No price covers the requested model (raised only by explicit lookups)."""


class SinkError(TrackerError):
    """A sink could not be configured or used."""


class ExportError(SinkError):
    """A sink failed to export a batch; the dispatcher retries or spills it."""


class AdapterUnavailable(TrackerError, ImportError):
    """The framework an adapter needs is not installed."""


class BudgetExceededError(TrackerError):
    """A budget's limit was reached; the LLM call was not made.

    Attributes:
        scope: the budget scope (``session``, ``agent``, ``user`` or ``project``).
        key: the scope's value (for example the session id).
        limit_usd: the budget limit.
        spent_usd: what was recorded in the scope when the check ran.
    """

    def __init__(self, message: str, *, scope: str = "", key: str | None = None,
                 limit_usd: float = 0.0, spent_usd: float = 0.0) -> None:
        super().__init__(message)
        self.scope = scope
        self.key = key
        self.limit_usd = limit_usd
        self.spent_usd = spent_usd
