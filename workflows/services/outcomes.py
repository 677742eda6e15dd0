"""Outcomes reported by the destination (the callback of DESIGN.md section 7)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.actors import Actor
from audit.services import audit_record
from workflows.models import (
    Decision,
    Event,
    EventState,
    Outcome,
    OutcomeSource,
    OutcomeStatus,
    Step,
)
from workflows.rules import compiled_version
from workflows.services.engine import event_close_on_outcome
from workflows.services.engine.wording import evidence_summary
from workflows.signals import attention_needed

TERMINAL_STATES = (EventState.SUCCEEDED, EventState.FAILED, EventState.CANCELLED)
# What event_close_on_outcome may change.
CLOSING_FIELDS = ["state", "step", "completed_at", "next_attempt_at", "outcome_due_at"]


class OutcomeConflict(Exception):
    """The event is closed, or its destination already reported an outcome."""


@transaction.atomic
def outcome_report(*, event: Event, status: str, evidence: dict[str, Any], actor: Actor) -> Outcome:
    """Record the destination's outcome for an event.

    A delivered event (awaiting confirmation) closes: achieved -> succeeded, failed ->
    needs_attention with an outcome_failed case. An event waiting for a retry that is told the
    outcome was achieved closes too, and its retry is cancelled: an earlier delivery did reach
    the destination after all. Otherwise the outcome is only recorded; the engine sees it when
    delivery completes. A closed event, or one
    whose destination already reported on its latest delivery, is refused with OutcomeConflict.
    """
    if status not in (OutcomeStatus.ACHIEVED, OutcomeStatus.FAILED):
        raise ValueError(f"a destination reports achieved or failed, not {status!r}")
    event = (
        Event.objects.select_for_update(of=("self",))
        .select_related("version", "owner_team", "owner_user")
        .get(pk=event.pk)
    )
    _refuse_if_closed_or_reported(event)

    now = timezone.now()
    before_state = event.state
    outcome = Outcome.objects.create(
        event=event,
        status=status,
        source=OutcomeSource.CALLBACK,
        evidence=evidence,
        reported_by=actor.label,
        observed_at=now,
    )
    attention, explanation = _close_if_settled(event, status, evidence, now)
    Decision.objects.create(
        event=event,
        step=Step.OUTCOME,
        rule="callback",
        version_number=event.version.number,
        inputs={"status": status, "evidence": evidence, "reported_by": actor.label},
        result={"outcome_id": outcome.pk, "state": event.state},
        ok=status == OutcomeStatus.ACHIEVED,
        explanation=explanation,
        created_at=now,
    )
    if attention is not None:
        attention_needed.send(sender=Event, event=event, **attention)
    audit_record(
        actor=actor,
        action="outcome.report",
        target=event,
        before={"state": before_state},
        after={"state": event.state, "outcome_id": outcome.pk, "status": status},
    )
    return outcome


def _refuse_if_closed_or_reported(event: Event) -> None:
    if event.state in TERMINAL_STATES:
        raise OutcomeConflict(f"event {event.pk} is already {event.state}")
    # One callback per delivery: a retry claims the event again, and the destination may then
    # report on the new delivery even though it reported on an earlier one.
    reported = event.outcomes.filter(source=OutcomeSource.CALLBACK)
    if event.claimed_at is not None:
        reported = reported.filter(observed_at__gte=event.claimed_at)
    if reported.exists():
        raise OutcomeConflict(f"an outcome was already reported for this delivery of {event.pk}")


def _close_if_settled(
    event: Event, status: str, evidence: dict[str, Any], now: datetime
) -> tuple[dict[str, Any] | None, str]:
    """Close the event if the report settles it; (the attention it needs, the explanation)."""
    summary = evidence_summary(evidence)
    waiting_for_retry = event.state == EventState.RETRY_SCHEDULED
    if waiting_for_retry and status == OutcomeStatus.ACHIEVED:
        event_close_on_outcome(
            event=event, compiled=compiled_version(event.version), status=status, now=now
        )
        event.save(update_fields=[*CLOSING_FIELDS, "updated_at"])
        return None, (
            f"Destination reported the outcome achieved (evidence: {summary}) while a retry "
            "was scheduled; the retry is cancelled."
        )
    if event.state != EventState.DELIVERED:
        return None, (
            f"Destination reported the outcome {status} (evidence: {summary}) before delivery "
            f"completed; recorded for when it does (event is {event.state})."
        )
    attention = event_close_on_outcome(
        event=event,
        compiled=compiled_version(event.version),
        status=status,
        now=now,
        evidence=evidence,
    )
    event.save(update_fields=[*CLOSING_FIELDS, "updated_at"])
    if attention is None:
        return None, f"Destination reported the outcome achieved (evidence: {summary})."
    return attention, (
        f"Destination reported the outcome failed (evidence: {summary}); the event needs attention."
    )
