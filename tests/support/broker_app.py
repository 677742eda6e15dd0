"""A Celery app with Handoff's broker behaviour and none of its Django set-up, for tests that
start a real worker against a Redis server of their own and take that server away.

The broker URL comes from HANDOFF_TEST_BROKER_URL; the transport options are Handoff's own, so the worker behaves as Handoff's workers do when Redis goes away.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery import Celery

from console import broker

broker.install()

# Never the current app: the test process's tasks must keep publishing through Handoff's own.
app = Celery(
    "broker-test",
    broker=os.environ.get("HANDOFF_TEST_BROKER_URL", "memory://"),
    set_as_current=False,
)
app.conf.update(
    broker_connection_retry_on_startup=True,
    broker_transport_options=broker.transport_options(60),
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    worker_hijack_root_logger=False,
)


@app.task(name="broker_test.mark", shared=False)
def mark(path: str, seconds: float = 0.0) -> None:
    """Sleep, then leave a file: the test reads what ran from the files."""
    time.sleep(seconds)
    Path(path).touch()
