"""The outcome step: achieved by delivery, confirmed (or refuted) by the destination, or expired.

event_close_on_outcome is the one place an event closes on its outcome, whoever observed it:
the engine after a delivery, the engine at the confirmation deadline, or the destination's
callback (workflows.services.outcomes).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from workflows.models import (
    Attempt,
    AttemptStatus,
    Decision,
    Event,
    EventState,
    Outcome,
    OutcomeSource,
    OutcomeStatus,
    Step,
)
from workflows.rules import CompiledWorkflow, compiled_version
from workflows.services.engine.run import EVENT_FIELDS, Run, current_owner, send_attention
from workflows.services.engine.wording import as_json, duration, evidence_summary


def event_close_on_outcome(
    *,
    event: Event,
    compiled: CompiledWorkflow,
    status: str,
    now: datetime,
    evidence: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Close an event on its outcome, in memory; the caller writes the event.

    achieved: succeeded. failed or expired: needs attention, and the returned attention request
    (the keyword arguments of attention_needed) opens the outcome_failed or outcome_missing case.
    Either way nothing is due any more: no next attempt, no confirmation deadline.
    """
    event.step = Step.OUTCOME
    event.next_attempt_at = None
    event.outcome_due_at = None
    if status == OutcomeStatus.ACHIEVED:
        event.state = EventState.SUCCEEDED
        event.completed_at = now
        return None
    event.state = EventState.NEEDS_ATTENTION
    if status == OutcomeStatus.FAILED:
        reason_code, fingerprint_key = "outcome_failed", "outcome_failed"
        detail = (
            "The destination reported the outcome failed. "
            f"Evidence: {evidence_summary(evidence or {})}"
        )
    elif status == OutcomeStatus.EXPIRED:
        reason_code, fingerprint_key = "outcome_missing", "expired"
        detail = f"The destination did not confirm the outcome within {_window(compiled)}"
    else:
        raise ValueError(f"an event closes on achieved, failed or expired, not {status!r}")
    return {
        "reason_code": reason_code,
        "detail": detail,
        "owner": current_owner(event, compiled),
        "step": Step.OUTCOME,
        "fingerprint_key": fingerprint_key,
    }


def _window(compiled: CompiledWorkflow) -> str:
    window = compiled.confirm_within
    return duration(window) if window else "the window"


def outcome_step(run: Run) -> bool:
    """The outcome step reached without a webhook in this run: the action was none."""
    achieved_by_delivery(run, evidence={"action": run.compiled.action.type})
    return False


def achieved_by_delivery(run: Run, *, evidence: dict[str, Any]) -> None:
    now = timezone.now()
    run.outcomes.append(
        Outcome(
            event=run.event,
            status=OutcomeStatus.ACHIEVED,
            source=OutcomeSource.DELIVERY,
            evidence=evidence,
            observed_at=now,
        )
    )
    if "http_status" in evidence:
        why = f"the destination answered HTTP {evidence['http_status']}"
    else:
        why = "the workflow has no action, so handling the event is the outcome"
    run.decide(
        step=Step.OUTCOME,
        rule="outcome",
        result={"status": OutcomeStatus.ACHIEVED, "source": OutcomeSource.DELIVERY},
        explanation=f"Outcome achieved: {why} (v{run.compiled.version_number})",
    )
    _close(run, OutcomeStatus.ACHIEVED, now)


def _close(run: Run, status: str, now: datetime, evidence: dict[str, Any] | None = None) -> None:
    attention = event_close_on_outcome(
        event=run.event, compiled=run.compiled, status=status, now=now, evidence=evidence
    )
    if attention is not None:
        run.attention.append(attention)


def settle_confirmation(run: Run, reported: Outcome | None) -> None:
    """After a 2xx on a workflow that waits for confirmation: apply an early report, or wait."""
    event, compiled = run.event, run.compiled
    now = timezone.now()
    if reported is not None:
        apply_reported(run, reported, now=now, early=True)
        return
    window = compiled.confirm_within
    assert window is not None
    event.state = EventState.DELIVERED
    event.outcome_due_at = now + window
    event.next_attempt_at = None
    run.decide(
        step=Step.OUTCOME,
        rule="outcome",
        result={"status": "awaiting", "outcome_due_at": event.outcome_due_at},
        explanation=(
            f"Waiting up to {duration(window)} for the destination to confirm the outcome "
            f"(until {event.outcome_due_at:%Y-%m-%d %H:%M:%S} UTC, v{compiled.version_number})"
        ),
    )


def apply_reported(run: Run, reported: Outcome, *, now: datetime, early: bool) -> None:
    """Close the event on an outcome the destination (or a person) reported."""
    by = f"the {reported.source}" + (
        f" from {reported.reported_by}" if reported.reported_by else ""
    )
    timing = " before the delivery finished" if early else ""
    achieved = reported.status == OutcomeStatus.ACHIEVED
    run.decide(
        step=Step.OUTCOME,
        rule="outcome",
        inputs={"outcome_id": reported.pk, "evidence": reported.evidence},
        result={"status": reported.status, "source": reported.source},
        ok=achieved,
        explanation=(
            f"Outcome {'achieved: confirmed' if achieved else 'failed: reported'} by {by}{timing} "
            f"(v{run.compiled.version_number})"
        ),
    )
    _close(run, reported.status, now, evidence=reported.evidence)


def reported_outcomes(pairs: Iterable[tuple[int, datetime]]) -> dict[int, Outcome]:
    """For (event id, since) pairs: the latest callback or manual outcome reported since then."""
    pairs = list(pairs)
    if not pairs:
        return {}
    since = dict(pairs)
    found: dict[int, Outcome] = {}
    rows = Outcome.objects.filter(
        event_id__in=list(since),
        source__in=[OutcomeSource.CALLBACK, OutcomeSource.MANUAL],
        status__in=[OutcomeStatus.ACHIEVED, OutcomeStatus.FAILED],
    ).order_by("observed_at", "id")
    for outcome in rows:
        if outcome.observed_at >= since[outcome.event_id]:
            found[outcome.event_id] = outcome
    return found


def outcomes_expire_due(*, now: datetime, limit: int = 500) -> int:
    """Delivered events whose confirmation window closed: outcome expired, a case opened."""
    expired = 0
    while True:
        count = _expire_batch(now=now, limit=limit)
        expired += count
        if count < limit:
            return expired


@transaction.atomic
def _expire_batch(*, now: datetime, limit: int) -> int:
    events = list(
        Event.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(state=EventState.DELIVERED, outcome_due_at__lte=now)
        .select_related("version", "owner_team", "owner_user", "workflow")
        .order_by("outcome_due_at")[:limit]
    )
    if not events:
        return 0
    last_success = dict(
        Attempt.objects.filter(event__in=events, status=AttemptStatus.SUCCEEDED)
        .values("event_id")
        .annotate(started=Max("started_at"))
        .values_list("event_id", "started")
    )
    reported = reported_outcomes(
        (e.pk, last_success.get(e.pk) or e.delivered_at or e.received_at) for e in events
    )
    runs = []
    for event in events:
        run = Run(event=event, compiled=compiled_version(event.version), now=now)
        runs.append(run)
        if event.pk in reported:
            # A report that came in while the event was still being delivered.
            apply_reported(run, reported[event.pk], now=now, early=False)
        else:
            _expire(run, now)
        event.updated_at = now
    Decision.objects.bulk_create([d for r in runs for d in r.decisions])
    Outcome.objects.bulk_create([o for r in runs for o in r.outcomes])
    Event.objects.bulk_update(events, EVENT_FIELDS)
    send_attention(runs)
    return len(events)


def _expire(run: Run, now: datetime) -> None:
    event = run.event
    run.outcomes.append(
        Outcome(
            event=event,
            status=OutcomeStatus.EXPIRED,
            source=OutcomeSource.DEADLINE,
            evidence={"outcome_due_at": as_json(event.outcome_due_at)},
            observed_at=now,
        )
    )
    run.decide(
        step=Step.OUTCOME,
        rule="outcome",
        inputs={"outcome_due_at": event.outcome_due_at},
        result={"status": OutcomeStatus.EXPIRED, "source": OutcomeSource.DEADLINE},
        ok=False,
        explanation=(
            f"No outcome confirmed within {_window(run.compiled)} of delivery; expired "
            f"(v{run.compiled.version_number})"
        ),
    )
    _close(run, OutcomeStatus.EXPIRED, now)
