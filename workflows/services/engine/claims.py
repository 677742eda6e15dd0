"""Claiming due events for a worker, and handing back the claims of workers that went quiet.

A worker claims a batch with one conditional UPDATE over SKIP LOCKED rows, so two workers take
disjoint sets and a message delivered twice finds nothing the second time.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import cast
from uuid import uuid4

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from workflows.models import Event, EventState
from workflows.services.engine.failures import Failure, failure_record
from workflows.services.engine.wording import duration

logger = logging.getLogger(__name__)

DUE_STATES = (EventState.RECEIVED, EventState.RETRY_SCHEDULED)

_CLAIM_SQL = f"""
UPDATE {Event._meta.db_table}
   SET state = %(processing)s, claimed_at = %(now)s, claimed_by = %(token)s, updated_at = %(now)s
 WHERE id IN (
        SELECT id FROM {Event._meta.db_table}
         WHERE state IN (%(received)s, %(retry_scheduled)s) AND next_attempt_at <= %(now)s
         ORDER BY next_attempt_at
         LIMIT %(limit)s
           FOR UPDATE SKIP LOCKED)
RETURNING id
"""  # noqa: S608 (the table name is the model's, every value a parameter)


def events_claim_due(*, limit: int, worker: str) -> list[Event]:
    """Take up to `limit` due events for this worker; each carries the batch's claim token."""
    token = f"{worker}:{uuid4().hex[:8]}"
    params: dict[str, str | int | datetime] = {
        "processing": EventState.PROCESSING,
        "received": EventState.RECEIVED,
        "retry_scheduled": EventState.RETRY_SCHEDULED,
        "now": timezone.now(),
        "token": token,
        "limit": limit,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, params)
        ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        return []
    return list(
        Event.objects.filter(id__in=ids, claimed_by=token)
        .select_related("workflow", "version", "owner_team", "owner_user", "pending_actor")
        .order_by("next_attempt_at", "id")
    )


def events_due_count(*, cap: int) -> int:
    """How many events are due now, counting no further than cap."""
    due = Event.objects.filter(state__in=DUE_STATES, next_attempt_at__lte=timezone.now())
    return due.order_by()[:cap].count()


def events_release_stale(*, older_than: timedelta) -> int:
    """Take back the claims of workers that went quiet; returns how many events were released.

    Each counts as a failed run of its event (a worker that dies on the same event again and
    again, out of memory say, stops it for a person after HANDOFF_PROCESSING_ATTEMPTS).
    """
    now = timezone.now()
    cutoff = now - older_than
    stale = list(
        Event.objects.filter(state=EventState.PROCESSING, claimed_at__lt=cutoff)
        .order_by("claimed_at")
        .values_list("pk", "claimed_by", "claimed_at", "step")[:1000]
    )
    released = 0
    for pk, claimed_by, claimed_at, step in stale:
        gone = f"Worker {claimed_by} stopped before finishing step {step}"
        after = duration(now - cast(datetime, claimed_at))  # claimed_at__lt: never None here
        failure = Failure(pk, "WorkerLost", f"{gone}; its claim went stale after {after}")
        held = Q(state=EventState.PROCESSING, claimed_by=claimed_by, claimed_at=claimed_at)
        try:
            done = failure_record(
                failure=failure,
                held=held,
                released=f"{gone}; released for another worker after {after}",
            )
        except Exception:
            logger.exception("event %s: taking back its stale claim failed", pk)
            continue
        released += bool(done)
    if released:
        logger.warning("released %d events whose claim went stale", released)
    return released
