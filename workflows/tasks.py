"""Celery wrappers around the engine's services; a message carries ids at most, never data."""

from __future__ import annotations

import logging
import math
import os
import socket
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from workflows.dispatch import EVENTS_QUEUE, PROCESS_DUE_TASK
from workflows.services.engine import (
    events_due_count,
    events_process_due,
    events_release_stale,
    outcomes_expire_due,
)
from workflows.services.heartbeats import SWEEP as SWEEP_HEARTBEAT
from workflows.services.heartbeats import heartbeat_record
from workflows.services.shapes import shape_profiles_learn

logger = logging.getLogger(__name__)

DEFAULT_CLAIM_BATCH_SIZE = 50
DEFAULT_PROCESS_BUDGET_SECONDS = 20.0
DEFAULT_SWEEP_MAX_WAKES = 4
# A wake-up older than this is dropped unread: the next sweep sends a fresh one if still needed,
# so a long backlog does not pile up messages that each only say "look again".
WAKE_EXPIRES_SECONDS = 30


def claim_batch_size() -> int:
    return int(getattr(settings, "HANDOFF_CLAIM_BATCH_SIZE", DEFAULT_CLAIM_BATCH_SIZE))


def stale_claim_after() -> timedelta:
    """How long a claim may last: past the hard time limit its worker cannot still be running."""
    default = int(getattr(settings, "CELERY_TASK_HARD_TIME_LIMIT", 300)) + 60
    return timedelta(seconds=float(getattr(settings, "HANDOFF_STALE_CLAIM_SECONDS", default)))


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@shared_task(name=PROCESS_DUE_TASK)
def process_due() -> int:
    """Drain due events in batches for a while; hand what is left to a fresh message."""
    budget = float(
        getattr(settings, "HANDOFF_PROCESS_BUDGET_SECONDS", DEFAULT_PROCESS_BUDGET_SECONDS)
    )
    result = events_process_due(
        limit=claim_batch_size(), worker=worker_name(), budget_seconds=budget
    )
    if result.more_due:
        _wake(1)
    return result.processed


@shared_task(name="workflows.sweep")
def sweep() -> dict[str, int]:
    """Release stale claims, then wake workers for what is due: a lost message loses nothing."""
    released = events_release_stale(older_than=stale_claim_after())
    batch = claim_batch_size()
    most = int(getattr(settings, "HANDOFF_SWEEP_MAX_WAKES", DEFAULT_SWEEP_MAX_WAKES))
    due = events_due_count(cap=batch * most)
    woken = _wake(min(most, math.ceil(due / batch))) if due else 0
    result = {"released": released, "due": due, "woken": woken}
    heartbeat_record(name=SWEEP_HEARTBEAT, detail=result)
    return result


@shared_task(name="workflows.expire_outcomes")
def expire_outcomes() -> int:
    return outcomes_expire_due(now=timezone.now())


def _wake(count: int) -> int:
    sent = 0
    for _ in range(count):
        try:
            process_due.apply_async(queue=EVENTS_QUEUE, expires=WAKE_EXPIRES_SECONDS, retry=False)
        except Exception as exc:  # the broker is down: events stay due, the next sweep tries again
            logger.warning("could not wake workers: %s", exc)
            break
        sent += 1
    return sent


@shared_task(name="workflows.learn_shapes")
def learn_shapes() -> int:
    """Learn each workflow's usual payload shape from its recent events."""
    return shape_profiles_learn()
