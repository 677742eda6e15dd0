"""The deliver step: prepare the action's webhook, then record what the destination answered.

The step only prepares the request; the batch sends every prepared request together
(workflows.delivery.webhooks_send) and hands each result to record_delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Max
from django.utils import timezone

from audit.actors import actor_label
from workflows.delivery import Verdict, WebhookRequest, WebhookResult, webhook_body
from workflows.models import Attempt, AttemptStatus, AttemptTrigger, Event, EventState, Step
from workflows.services.engine.outcomes import achieved_by_delivery
from workflows.services.engine.run import Run, current_owner, owner_label
from workflows.services.engine.wording import duration, shorten

ERROR_MESSAGE_LIMIT = 2000


def deliver_step(run: Run) -> bool:
    event, compiled = run.event, run.compiled
    if compiled.action.type != "webhook":
        run.decide(
            step=Step.DELIVER,
            rule="action",
            result={"action": compiled.action.type},
            explanation=(
                f"No action to run: the workflow's action is none (v{compiled.version_number})"
            ),
        )
        event.delivered_at = run.now
        return True
    run.delivery = WebhookRequest(
        url=compiled.action.url,
        body=webhook_body(
            event_id=event.pk,
            workflow=compiled.slug,
            version=compiled.version_number,
            payload=event.payload,
            context=event.context,
            owner=owner_label(event),
        ),
        webhook_id=event.webhook_id,
        secret=event.workflow.signing_secret,
        timeout_seconds=compiled.action.timeout_seconds,
    )
    return False  # paused: the batch delivers together, then record_delivery carries on


def schedule_positions(events: list[Event]) -> dict[int, int]:
    """Which failure of its current run each event's next attempt would be (1 = the first).

    An operator's retry starts the schedule again, so an exhausted delivery that is retried by
    hand gets its waits anew rather than failing for good after one more attempt.
    """
    last_manual = dict(
        Attempt.objects.filter(event__in=events)
        .exclude(trigger=AttemptTrigger.AUTO)
        .values("event_id")
        .annotate(number=Max("number"))
        .values_list("event_id", "number")
    )
    positions = {}
    for event in events:
        number = event.attempt_count + 1
        if event.pending_trigger != AttemptTrigger.AUTO:
            positions[event.pk] = 1
        else:
            positions[event.pk] = number - last_manual.get(event.pk, 1) + 1
    return positions


@dataclass(frozen=True)
class _Answer:
    """One delivery attempt's facts, as every kind of answer records them."""

    result: WebhookResult
    url: str
    number: int  # the attempt's number for this event
    position: int  # which failure of the current schedule this would be
    now: datetime
    inputs: dict[str, Any]

    @property
    def fields(self) -> dict[str, Any]:
        return {
            "http_status": self.result.http_status,
            "duration_ms": self.result.duration_ms,
            "error_class": self.result.error_class,
        }

    @property
    def failure(self) -> str:
        """What went wrong, in words: 'HTTP 503 from <url>' or the error and its message."""
        result, url = self.result, self.url
        if result.http_status is not None:
            return f"HTTP {result.http_status} from {url}"
        if result.error_message:
            return f"{result.error_class} from {url} ({shorten(result.error_message, 120)})"
        return f"{result.error_class} from {url}"


def record_delivery(run: Run, result: WebhookResult, position: int) -> None:
    """Record the attempt and carry the event on: outcome, rejection, retry or exhaustion."""
    event = run.event
    number = event.attempt_count + 1
    answer = _Answer(
        result=result,
        url=run.compiled.action.url,
        number=number,
        position=position,
        now=timezone.now(),
        inputs={
            "url": run.compiled.action.url,
            "webhook_id": event.webhook_id,
            "attempt": number,
            "trigger": event.pending_trigger,
        },
    )
    status = _attempt_status(result.verdict, position, len(run.compiled.retry_schedule))
    _record_attempt(run, answer, status)
    {
        AttemptStatus.SUCCEEDED: _delivered,
        AttemptStatus.REJECTED: _rejected,
        AttemptStatus.FAILED: _retry_later,
        AttemptStatus.EXHAUSTED: _exhausted,
    }[status](run, answer)


def _attempt_status(verdict: Verdict, position: int, retries: int) -> AttemptStatus:
    if verdict is Verdict.DELIVERED:
        return AttemptStatus.SUCCEEDED
    if verdict is Verdict.REJECT:
        return AttemptStatus.REJECTED
    return AttemptStatus.FAILED if position <= retries else AttemptStatus.EXHAUSTED


def _record_attempt(run: Run, answer: _Answer, status: AttemptStatus) -> None:
    event, result = run.event, answer.result
    run.attempts.append(
        Attempt(
            event=event,
            number=answer.number,
            trigger=event.pending_trigger,
            actor=event.pending_actor,
            actor_label=event.pending_actor_label,
            started_at=result.started_at,
            finished_at=result.finished_at,
            status=status,
            http_status=result.http_status,
            error_class=result.error_class[:200],
            error_message=result.error_message[:ERROR_MESSAGE_LIMIT],
            duration_ms=result.duration_ms,
        )
    )
    event.attempt_count = answer.number
    # The operator's request is used up by this attempt; later ones are the engine's own.
    event.pending_trigger = AttemptTrigger.AUTO
    event.pending_actor = None
    event.pending_actor_label = actor_label(None)


def _delivered(run: Run, answer: _Answer) -> None:
    event, result = run.event, answer.result
    run.decide(
        step=Step.DELIVER,
        rule="webhook",
        inputs=answer.inputs,
        result={"verdict": "delivered", **answer.fields},
        explanation=(
            f"Delivered to {answer.url} : HTTP {result.http_status} in {result.duration_ms} ms "
            f"(attempt {answer.number})"
        ),
    )
    event.delivered_at = answer.now
    event.step = Step.OUTCOME
    if run.compiled.confirm_within is None:
        achieved_by_delivery(run, evidence={"http_status": result.http_status})
    else:
        run.awaiting_confirmation = result


def _rejected(run: Run, answer: _Answer) -> None:
    run.decide(
        step=Step.DELIVER,
        rule="webhook",
        inputs=answer.inputs,
        result={"verdict": "rejected", **answer.fields},
        ok=False,
        explanation=f"{answer.failure}; rejected, not retried (attempt {answer.number})",
    )
    detail = f"{answer.failure} (attempt {answer.number})"
    if answer.result.error_message:
        detail += f": {shorten(answer.result.error_message, 300)}"
    run.needs_attention(
        reason_code="delivery_rejected",
        detail=detail,
        owner=current_owner(run.event, run.compiled),
        fingerprint_key=answer.result.error_class or "rejected",
    )


def _retry_later(run: Run, answer: _Answer) -> None:
    event, schedule, position = run.event, run.compiled.retry_schedule, answer.position
    wait = schedule[position - 1]
    event.state = EventState.RETRY_SCHEDULED
    event.next_attempt_at = answer.now + wait
    run.decide(
        step=Step.DELIVER,
        rule="webhook",
        inputs=answer.inputs,
        result={
            "verdict": "retry",
            "retry": position,
            "of": len(schedule),
            "next_attempt_at": event.next_attempt_at,
            **answer.fields,
        },
        ok=False,
        explanation=f"{answer.failure}; retry {position} of {len(schedule)} in {duration(wait)}",
    )


def _exhausted(run: Run, answer: _Answer) -> None:
    position = answer.position
    run.decide(
        step=Step.DELIVER,
        rule="webhook",
        inputs=answer.inputs,
        result={"verdict": "exhausted", **answer.fields},
        ok=False,
        explanation=(
            f"{answer.failure}; no retries left after {position} "
            f"{'attempt' if position == 1 else 'attempts'} (attempt {answer.number})"
        ),
    )
    run.needs_attention(
        reason_code="delivery_failed",
        detail=f"Delivery to {answer.url} failed {position} times; last: {answer.failure}",
        owner=current_owner(run.event, run.compiled),
        fingerprint_key=answer.result.error_class or "failed",
    )
