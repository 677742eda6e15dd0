"""Telling the workers there is work, without ever making ingest wait on the broker.

The database is the truth: a message only says "look for due events". If the broker is down the
wake-up is skipped (and further ones for a few seconds), the event stays due in PostgreSQL, and
the periodic sweeper enqueues it once the broker is back.
"""

from __future__ import annotations

import logging
import threading
import time

from celery import current_app

logger = logging.getLogger(__name__)

PROCESS_DUE_TASK = "workflows.process_due"
EVENTS_QUEUE = "events"
BROKER_BACKOFF_SECONDS = 5.0

_lock = threading.Lock()
_broker_down_until = 0.0


def wake_workers() -> bool:
    """Ask a worker to drain due events. Never raises; returns whether a message was sent."""
    global _broker_down_until
    if time.monotonic() < _broker_down_until:
        return False
    try:
        # A wake-up older than this is noise: the sweeper has sent fresher ones by then.
        current_app.send_task(PROCESS_DUE_TASK, queue=EVENTS_QUEUE, retry=False, expires=30)
    except Exception as exc:  # any broker failure: the sweeper covers for it
        with _lock:
            _broker_down_until = time.monotonic() + BROKER_BACKOFF_SECONDS
        logger.warning("broker unreachable, events stay due for the sweeper: %s", exc)
        return False
    return True
