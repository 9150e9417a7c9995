"""Sinks: where recorded events go. Import each from its own module, e.g.
``from a2a_llm_tracker.sinks.sqlite import SQLiteSink``."""

from .base import Sink

__all__ = ["Sink"]
