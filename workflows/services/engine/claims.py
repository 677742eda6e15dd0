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
from django.utils import timezone

from workflows.models import Decision, Event, EventState
from workflows.services.engine.wording import as_json, duration

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
    """Hand events whose worker went quiet back to the queue; returns how many."""
    now = timezone.now()
    cutoff = now - older_than
    with transaction.atomic():
        stale = list(
            Event.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(state=EventState.PROCESSING, claimed_at__lt=cutoff)
            .select_related("version")
            .order_by("claimed_at")[:1000]
        )
        if not stale:
            return 0
        released = Event.objects.filter(
            id__in=[e.pk for e in stale], state=EventState.PROCESSING, claimed_at__lt=cutoff
        ).update(state=EventState.RETRY_SCHEDULED, next_attempt_at=now, updated_at=now)
        Decision.objects.bulk_create(
            Decision(
                event=event,
                step=event.step,
                rule="claim",
                version_number=event.version.number,
                inputs={"claimed_by": event.claimed_by, "claimed_at": as_json(event.claimed_at)},
                result={"released": True},
                ok=False,
                explanation=(
                    f"Worker {event.claimed_by} stopped before finishing step {event.step}; "
                    # claimed_at__lt above: a stale claim always has its time.
                    f"released for another worker after "
                    f"{duration(now - cast(datetime, event.claimed_at))}"
                ),
                created_at=now,
            )
            for event in stale
        )
    logger.warning("released %d events whose claim went stale", released)
    return released
