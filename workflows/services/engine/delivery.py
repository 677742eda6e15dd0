"""The deliver step: prepare the action's webhook, then record what the destination answered.

The step only prepares the request; the batch sends every prepared request together
(workflows.delivery.webhooks_deliver) and hands each result to record_delivery as it returns.
The attempt is written at once, whatever happens to the rest of the run: a request that went
out is on the record even if the worker dies before the batch is written, or lost its claim
meanwhile (then the attempt is marked superseded). Destination URLs are written redacted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Max
from django.utils import timezone

from audit.actors import actor_label
from workflows.delivery import (
    REPLAY_OF_HEADER,
    Verdict,
    WebhookRequest,
    WebhookResult,
    webhook_body,
)
from workflows.destinations import redacted_url
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
    replay_of = event.replay_of_id
    run.delivery = WebhookRequest(
        url=compiled.action.url,
        body=webhook_body(
            event_id=event.pk,
            workflow=compiled.slug,
            version=compiled.version_number,
            payload=event.payload,
            context=event.context,
            owner=owner_label(event),
            replay_of=replay_of,
        ),
        webhook_id=event.webhook_id,
        secret=event.workflow.signing_secret,
        timeout_seconds=compiled.action.timeout_seconds,
        headers={REPLAY_OF_HEADER: str(replay_of)} if replay_of is not None else {},
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


def record_delivery(run: Run, result: WebhookResult, position: int, *, token: str) -> None:
    """Record the attempt and carry the event on: outcome, rejection, retry or exhaustion."""
    event = run.event
    url = redacted_url(run.compiled.action.url)
    if result.verdict is Verdict.DEFERRED:
        _deferred(run, result, url)
        return
    status = _attempt_status(result.verdict, position, len(run.compiled.retry_schedule))
    number = _record_attempt(run, result, status, token)
    answer = _Answer(
        result=result,
        url=url,
        number=number,
        position=position,
        now=timezone.now(),
        inputs={
            "url": url,
            "webhook_id": event.webhook_id,
            "attempt": number,
            "trigger": event.pending_trigger,
        },
    )
    _use_up_pending(event, number)
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


# One statement: the attempt takes the event's next number, and says whether this worker still
# held its claim when the answer came back.
_ATTEMPT_INSERT = f"""
INSERT INTO {Attempt._meta.db_table}
    (event_id, number, trigger, actor_id, actor_label, started_at, finished_at, status,
     http_status, error_class, error_message, duration_ms, superseded)
SELECT %(event)s,
       COALESCE((SELECT MAX(number) FROM {Attempt._meta.db_table} WHERE event_id = %(event)s), 0)
           + 1,
       %(trigger)s, %(actor)s, %(actor_label)s, %(started_at)s, %(finished_at)s, %(status)s,
       %(http_status)s, %(error_class)s, %(error_message)s, %(duration_ms)s,
       NOT EXISTS (SELECT 1 FROM {Event._meta.db_table}
                    WHERE id = %(event)s AND claimed_by = %(token)s AND state = %(processing)s)
RETURNING number, superseded
"""  # noqa: S608 (table names from the models, every value a parameter)


def _record_attempt(run: Run, result: WebhookResult, status: AttemptStatus, token: str) -> int:
    """Write the attempt now, in its own statement; returns its number."""
    event = run.event
    params: dict[str, Any] = {
        "event": event.pk,
        "trigger": event.pending_trigger,
        "actor": event.pending_actor_id,
        "actor_label": event.pending_actor_label,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "status": status,
        "http_status": result.http_status,
        "error_class": result.error_class[:200],
        "error_message": result.error_message[:ERROR_MESSAGE_LIMIT],
        "duration_ms": result.duration_ms,
        "token": token,
        "processing": EventState.PROCESSING,
    }
    with connection.cursor() as cursor:
        cursor.execute(_ATTEMPT_INSERT, params)
        number, superseded = cursor.fetchone()
    if superseded:
        # Another worker holds the event now: what this one decides will not be written.
        raise ClaimLost(f"event {event.pk}: claim {token} was taken over during its delivery")
    return int(number)


class ClaimLost(Exception):
    """The claim on an event went to another worker while this one was delivering it."""


def _use_up_pending(event: Event, number: int) -> None:
    event.attempt_count = number
    # The operator's request is used up by this attempt; later ones are the engine's own.
    event.pending_trigger = AttemptTrigger.AUTO
    event.pending_actor = None
    event.pending_actor_label = actor_label(None)


def _deferred(run: Run, result: WebhookResult, url: str) -> None:
    """Not sent: the batch ran out of time. Not an attempt; due again at once, unsent."""
    event = run.event
    event.state = EventState.RETRY_SCHEDULED
    event.next_attempt_at = timezone.now()
    run.decide(
        step=Step.DELIVER,
        rule="webhook",
        inputs={"url": url, "webhook_id": event.webhook_id},
        result={"verdict": "deferred"},
        ok=False,
        explanation=f"Not sent to {url}: {result.error_message}; due again at once",
    )


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
