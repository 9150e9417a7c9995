"""Locks that survive ``os.fork()``: a lock held by another thread at fork time stays held forever
in the child (that thread does not exist there), so the child gets fresh ones."""

from __future__ import annotations as _annotations

import os
import threading
import weakref
from typing import Any

__all__ = ["renew_locks_after_fork"]


def renew_locks_after_fork(obj: Any, *attrs: str) -> None:
    """After a fork, the child replaces ``obj.<attr>`` with a new lock of the same kind."""
    if not hasattr(os, "register_at_fork"):  # pragma: no cover - Windows
        return
    ref = weakref.ref(obj)
    kinds = {attr: type(getattr(obj, attr)) for attr in attrs}

    def renew() -> None:
        target = ref()
        if target is None:
            return
        for attr in attrs:
            fresh = threading.RLock() if "RLock" in kinds[attr].__name__ else threading.Lock()
            setattr(target, attr, fresh)

    os.register_at_fork(after_in_child=renew)
