"""tracking.py: initialise the meter once, on first use, and reuse it from every module.

With ``CLIENT_ID`` and ``CLIENT_SECRET`` set it connects to CCS (``await init(...)``, run to
completion from sync code in a worker thread); otherwise it records locally into ``usage.db``.
If initialisation fails, tracking is skipped and the application carries on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading

import a2a_llm_tracker
from a2a_llm_tracker import Meter

logger = logging.getLogger(__name__)

_meter: Meter | None = None
_lock = threading.Lock()


def get_meter() -> Meter | None:
    """The process-wide meter, created on first call; None if tracking could not start."""
    global _meter
    if _meter is not None:
        return _meter
    with _lock:  # two threads calling at once still initialise only once
        if _meter is None:
            try:
                client_id, client_secret = os.getenv("CLIENT_ID", ""), os.getenv("CLIENT_SECRET", "")
                if client_id and client_secret:
                    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor:
                        future = executor.submit(asyncio.run,
                                                 a2a_llm_tracker.init(client_id, client_secret, "my-app"))
                        _meter = future.result(timeout=30)
                else:
                    _meter = a2a_llm_tracker.init_sync("my-app", local_sink="sqlite:usage.db", pricing="catalog")
            except Exception as exc:  # tracking must never stop the application
                logger.warning("LLM tracking initialisation failed: %s", exc)
                return None
    return _meter
