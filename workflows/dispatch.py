"""Telling the workers there is work, without ever making ingest wait on the broker.

The database is the truth: a message only says "look for due events". A request never talks to
the broker itself: `wake_workers` only raises a flag, and a publisher thread of the process sends
the message. A broker that is down, or hung (accepting connections and never answering), so
costs a request nothing; the publisher gives up after the broker's socket timeout, leaves the
broker alone for a few seconds, and the events stay due in PostgreSQL for the periodic sweeper,
which enqueues them once the broker is back.

Under load, wake-ups are coalesced: at most one message per COALESCE_SECONDS per process, and a
flag raised while a message is being sent is answered by one more message after it, so the last
event of a burst is not left for the sweeper. One woken task drains every due event anyway.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from celery import current_app

logger = logging.getLogger(__name__)

PROCESS_DUE_TASK = "workflows.process_due"
EVENTS_QUEUE = "events"
BROKER_BACKOFF_SECONDS = 5.0
COALESCE_SECONDS = 0.05

_lock = threading.Lock()
_wanted = threading.Condition(_lock)
_broker_down_until = 0.0
_pending_app: Any = None  # the Celery app of the latest unanswered wake-up, or None
_publisher_pid = 0


def _send(app: Any) -> bool:
    global _broker_down_until
    try:
        # A wake-up older than this is noise: the sweeper has sent fresher ones by then.
        app.send_task(PROCESS_DUE_TASK, queue=EVENTS_QUEUE, retry=False, expires=30)
    except Exception as exc:  # any broker failure: the sweeper covers for it
        with _lock:
            _broker_down_until = time.monotonic() + BROKER_BACKOFF_SECONDS
        logger.warning("broker unreachable, events stay due for the sweeper: %s", exc)
        return False
    return True


def _publish_forever() -> None:
    global _pending_app
    while True:
        with _wanted:
            while _pending_app is None:
                _wanted.wait()
            app, _pending_app = _pending_app, None
        _send(app)
        time.sleep(COALESCE_SECONDS)


def _ensure_publisher() -> None:
    """One publisher thread per process, started after fork (a child has no parent's threads)."""
    global _publisher_pid
    pid = os.getpid()
    if _publisher_pid != pid:
        _publisher_pid = pid
        threading.Thread(target=_publish_forever, name="wake-publisher", daemon=True).start()


def wake_workers() -> bool:
    """Ask a worker to drain due events, without waiting. False when the broker is known down."""
    global _pending_app
    with _wanted:
        if time.monotonic() < _broker_down_until:
            return False
        _ensure_publisher()
        # The app is taken here, in the caller's thread: Celery's current app is per thread.
        # current_app is a proxy at run time; celery-types declares it as the app itself.
        _pending_app = current_app._get_current_object()  # type: ignore[attr-defined]
        _wanted.notify()
    return True
