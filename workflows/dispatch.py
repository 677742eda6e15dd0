"""Telling the workers there is work, without ever making ingest wait on the broker.

The database is the truth: a message only says "look for due events". If the broker is down the
wake-up is skipped (and further ones for a few seconds), the event stays due in PostgreSQL, and
the periodic sweeper enqueues it once the broker is back.

Under load, wake-ups are coalesced: at most one message per COALESCE_SECONDS per process, and
a request that falls inside the window arranges one trailing wake-up at its end, so the last
event of a burst is not left for the sweeper. One woken task drains every due event anyway.
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
COALESCE_SECONDS = 0.05

_lock = threading.Lock()
_broker_down_until = 0.0
_last_sent = float("-inf")
_trailing: threading.Timer | None = None


def _send() -> bool:
    global _broker_down_until
    try:
        # A wake-up older than this is noise: the sweeper has sent fresher ones by then.
        current_app.send_task(PROCESS_DUE_TASK, queue=EVENTS_QUEUE, retry=False, expires=30)
    except Exception as exc:  # any broker failure: the sweeper covers for it
        with _lock:
            _broker_down_until = time.monotonic() + BROKER_BACKOFF_SECONDS
        logger.warning("broker unreachable, events stay due for the sweeper: %s", exc)
        return False
    return True


def _send_trailing() -> None:
    global _trailing, _last_sent
    with _lock:
        _trailing = None
        _last_sent = time.monotonic()
    _send()


def wake_workers() -> bool:
    """Ask a worker to drain due events. Never raises; False when the broker is known down."""
    global _last_sent, _trailing
    now = time.monotonic()
    with _lock:
        if now < _broker_down_until:
            return False
        waited = now - _last_sent
        if waited < COALESCE_SECONDS:
            if _trailing is None:
                _trailing = threading.Timer(COALESCE_SECONDS - waited, _send_trailing)
                _trailing.daemon = True
                _trailing.start()
            return True
        _last_sent = now
    return _send()
