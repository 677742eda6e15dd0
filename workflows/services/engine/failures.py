"""Runs that ended in an unexpected error, or whose worker died: one event's trouble stays its own.

A bug in a step, a rule library that raises, a record that cannot be written, a worker killed
mid-run: the event is counted and tried again a little later, without a decision each time.
After HANDOFF_PROCESSING_ATTEMPTS such runs in a row it stops being retried, and one decision and
a processing_error case carry the error class and message to a person.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from workflows.models import Attempt, Decision, Event, EventState
from workflows.owners import owner_find
from workflows.sanitise import external_text
from workflows.signals import attention_needed

logger = logging.getLogger(__name__)

ERROR_TEXT_LIMIT = 500
PROCESSING_ERROR = "processing_error"


@dataclass(frozen=True)
class Failure:
    """What stopped one event's run."""

    event_id: int
    error_class: str
    message: str

    @classmethod
    def of(cls, event: Event, exc: BaseException) -> Failure:
        return cls(event.pk, type(exc).__name__, external_text(str(exc), limit=ERROR_TEXT_LIMIT))

    @property
    def text(self) -> str:
        return f"{self.error_class}: {self.message}" if self.message else self.error_class


def processing_attempts() -> int:
    return max(1, int(settings.HANDOFF_PROCESSING_ATTEMPTS))


def failures_record(*, failures: Sequence[Failure], token: str) -> int:
    """Count each failed run against its event, if this claim still holds it; returns how many
    events stopped for a person. Each event in its own transaction: one cannot hold another."""
    held = Q(claimed_by=token, state=EventState.PROCESSING)
    stopped = 0
    for failure in failures:
        logger.error("event %s: processing failed: %s", failure.event_id, failure.text)
        try:
            stopped += failure_record(failure=failure, held=held) == STOPPED
        except Exception:
            logger.exception("event %s: recording its failed run failed", failure.event_id)
    return stopped


RETRYING = "retrying"
STOPPED = "stopped"


@transaction.atomic
def failure_record(*, failure: Failure, held: Q, released: str = "") -> str:
    """Count one failed run: RETRYING, STOPPED when it was the last one allowed and a person
    must act, or "" when the event is no longer `held` (another worker's run decides).

    `released` explains a claim taken back from a silent worker; it becomes a decision, since a
    worker that died mid-delivery may have sent the event once already.
    """
    event = (
        Event.objects.select_for_update(of=("self",))
        .select_related("version", "owner_team", "owner_user")
        .filter(held, pk=failure.event_id)
        .first()
    )
    if event is None:
        return ""
    now = timezone.now()
    runs = event.processing_failures + 1
    # Attempts are recorded as they return, so the count may be behind the table.
    attempts = Attempt.objects.filter(event=event).aggregate(n=Max("number"))["n"] or 0
    common = {"processing_failures": runs, "attempt_count": attempts, "updated_at": now}
    if runs < processing_attempts():
        wait = timedelta(seconds=settings.HANDOFF_PROCESSING_RETRY_SECONDS * runs)
        Event.objects.filter(pk=event.pk).update(
            state=EventState.RETRY_SCHEDULED, next_attempt_at=now + wait, **common
        )
        if released:
            _decide(event, now, failure, runs, ok=False, explanation=released)
        return RETRYING
    Event.objects.filter(pk=event.pk).update(
        state=EventState.NEEDS_ATTENTION, next_attempt_at=None, **common
    )
    event.state, event.processing_failures = EventState.NEEDS_ATTENTION, runs
    _decide(
        event,
        now,
        failure,
        runs,
        ok=False,
        explanation=(
            f"Processing failed {runs} times in a row at step {event.step}; last: "
            f"{failure.text}. Not retried again until a person acts."
        ),
    )
    attention_needed.send(
        sender=Event,
        event=event,
        reason_code=PROCESSING_ERROR,
        detail=f"{failure.text} ({runs} failed runs at step {event.step})",
        owner=_owner(event),
        step=event.step,
        fingerprint_key=failure.error_class,
    )
    return STOPPED


def _decide(
    event: Event, now: Any, failure: Failure, runs: int, *, ok: bool, explanation: str
) -> None:
    Decision.objects.create(
        event=event,
        step=event.step,
        rule="processing",
        version_number=event.version.number,
        inputs={"failed_runs": runs},
        result={"error_class": failure.error_class, "error": failure.message},
        ok=ok,
        explanation=explanation,
        created_at=now,
    )


def _owner(event: Event) -> Any:
    """Whoever routing chose, else the workflow's owner as the version names it."""
    if event.owner_user is not None or event.owner_team is not None:
        return event.owner_user or event.owner_team
    reference = event.version.definition.get("owner") if event.version.definition else None
    return owner_find(reference) if isinstance(reference, str) else None
