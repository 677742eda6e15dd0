"""Outcomes a person records: the event was handled by hand, and this is what came of it."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.actors import actor_label
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
from workflows.services.outcomes import CLOSING_FIELDS, OutcomeConflict

# A person reports on an event that stopped or finished without its outcome, or one still
# waiting for the destination's word. Not on one the engine is running, nor one that succeeded
# or was dismissed: there is nothing left to report on those.
MANUAL_STATES = (
    EventState.NEEDS_ATTENTION,
    EventState.FAILED,
    EventState.DELIVERED,
    EventState.RETRY_SCHEDULED,
)


@transaction.atomic
def outcome_record_manual(
    *, event: Event, status: str, evidence: dict[str, Any], actor: Any, note: str = ""
) -> Outcome:
    """Record what came of an event a person handled by hand, and close the event on it.

    The event closes through the engine's one closing function: achieved -> succeeded. A failed
    outcome would ask for a person (an outcome_failed case), but the person asked would be the
    one reporting it, so the event closes as failed instead. Either way the outcome's source is
    "manual": outcome figures count it as a person's outcome, not the automation's.
    """
    if status not in (OutcomeStatus.ACHIEVED, OutcomeStatus.FAILED):
        raise ValueError(f"a person records achieved or failed, not {status!r}")
    event = (
        Event.objects.select_for_update(of=("self",))
        .select_related("version", "owner_team", "owner_user")
        .get(pk=event.pk)
    )
    if event.state not in MANUAL_STATES:
        raise OutcomeConflict(
            f"Event {event.pk} is {event.get_state_display().lower()}: there is no outcome "
            "left to record on it."
        )
    now = timezone.now()
    before_state = event.state
    label = actor_label(actor)
    outcome = Outcome.objects.create(
        event=event,
        status=status,
        source=OutcomeSource.MANUAL,
        evidence=evidence,
        reported_by=label,
        observed_at=now,
    )
    compiled = compiled_version(event.version)
    attention = event_close_on_outcome(
        event=event, compiled=compiled, status=status, now=now, evidence=evidence
    )
    if attention is not None:
        event.state = EventState.FAILED
        event.completed_at = now
    event.save(update_fields=[*CLOSING_FIELDS, "updated_at"])
    achieved = status == OutcomeStatus.ACHIEVED
    Decision.objects.create(
        event=event,
        step=Step.OUTCOME,
        rule="manual",
        version_number=compiled.version_number,
        inputs={"status": status, "evidence": evidence, "recorded_by": label},
        result={"outcome_id": outcome.pk, "state": event.state},
        ok=achieved,
        explanation=(
            f"Outcome {'achieved' if achieved else 'failed'} by hand: recorded by {label} "
            f"(evidence: {evidence_summary(evidence)})"
        ),
        created_at=now,
    )
    audit_record(
        actor=actor,
        action="outcome.record_manual",
        target=event,
        before={"state": before_state},
        after={"state": event.state, "outcome_id": outcome.pk, "status": status},
        reason=note,
    )
    return outcome
