"""The processing engine (DESIGN.md sections 3-5): claim due events, run their steps, record why.

A worker claims a batch of due events with one conditional UPDATE (SKIP LOCKED), so two workers
take disjoint sets and a message delivered twice finds nothing the second time. It runs each
event's steps from where the event stands (validate, enrich, route, review, deliver, outcome),
delivers the batch's webhooks side by side, and writes the batch's decisions, attempts, outcomes
and new states in one transaction, only for the events it still holds: a worker whose claim went
stale and was taken over cannot overwrite the newer state. Whatever needs a person is sent as
attention_needed inside that transaction, so the case exists if and only if its decision does.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from audit.actors import actor_label
from audit.canonical import canonical_hash
from audit.services import audit_record
from workflows.definitions import json_type, json_type_matches
from workflows.delivery import Verdict, WebhookRequest, WebhookResult, webhook_body, webhooks_send
from workflows.dispatch import wake_workers
from workflows.models import (
    Attempt,
    AttemptStatus,
    AttemptTrigger,
    Decision,
    Event,
    EventState,
    Outcome,
    OutcomeSource,
    OutcomeStatus,
    Step,
    Team,
    WorkflowVersion,
)
from workflows.owners import owner_find, owner_ref
from workflows.rules import (
    CompiledWorkflow,
    Rule,
    RuleResult,
    compiled_version,
    evaluate,
    inputs_read,
    resolve_path,
)
from workflows.selectors import active_members
from workflows.services.ingest import unstorable_reason
from workflows.signals import attention_needed

logger = logging.getLogger(__name__)

STEP_ORDER = [Step.VALIDATE, Step.ENRICH, Step.ROUTE, Step.REVIEW, Step.DELIVER, Step.OUTCOME]
DUE_STATES = (EventState.RECEIVED, EventState.RETRY_SCHEDULED)
RETRYABLE_STATES = (EventState.NEEDS_ATTENTION, EventState.FAILED)
ERROR_MESSAGE_LIMIT = 2000

# The columns a batch writes back; the received record (payload and the rest) is never touched.
EVENT_FIELDS = [
    "state",
    "step",
    "context",
    "owner_team",
    "owner_user",
    "attempt_count",
    "next_attempt_at",
    "delivered_at",
    "outcome_due_at",
    "completed_at",
    "pending_trigger",
    "pending_actor",
    "pending_actor_label",
    "updated_at",
]

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


class EventNotRetryable(Exception):
    """Only an event that needs attention or failed can be retried."""


class ReplayNotPossible(Exception):
    """The replay asked for cannot be made (no current version, a payload that is not an object)."""


# --- claiming -------------------------------------------------------------------------------


def events_claim_due(*, limit: int, worker: str) -> list[Event]:
    """Take up to `limit` due events for this worker; each carries the batch's claim token."""
    token = f"{worker}:{uuid4().hex[:8]}"
    params = {
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
                inputs={"claimed_by": event.claimed_by, "claimed_at": _json(event.claimed_at)},
                result={"released": True},
                ok=False,
                explanation=(
                    f"Worker {event.claimed_by} stopped before finishing step {event.step}; "
                    f"released for another worker after {_duration(now - event.claimed_at)}"
                ),
                created_at=now,
            )
            for event in stale
        )
    logger.warning("released %d events whose claim went stale", released)
    return released


# --- running a batch --------------------------------------------------------------------------


@dataclass
class _Run:
    """One event's work in a batch: the records to write and the signals to send with them."""

    event: Event
    compiled: CompiledWorkflow
    now: datetime
    decisions: list[Decision] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    attention: list[dict[str, Any]] = field(default_factory=list)
    delivery: WebhookRequest | None = None
    # Set after a 2xx when the workflow waits for confirmation: settled inside the write, where
    # a callback that overtook the 2xx is visible.
    awaiting_confirmation: WebhookResult | None = None

    def decide(
        self,
        *,
        step: str,
        rule: str,
        explanation: str,
        inputs: dict[str, Any] | None = None,
        result: dict[str, Any] | None = None,
        ok: bool = True,
    ) -> Decision:
        decision = Decision(
            event=self.event,
            step=step,
            rule=rule,
            version_number=self.compiled.version_number,
            inputs=_json(inputs or {}),
            result=_json(result or {}),
            ok=ok,
            explanation=explanation,
            created_at=timezone.now(),
        )
        self.decisions.append(decision)
        return decision

    def needs_attention(
        self, *, reason_code: str, detail: str, owner: Any, fingerprint_key: str
    ) -> None:
        self.event.state = EventState.NEEDS_ATTENTION
        self.event.next_attempt_at = None
        self.attention.append(
            {
                "reason_code": reason_code,
                "detail": detail,
                "owner": owner,
                "step": self.event.step,
                "fingerprint_key": fingerprint_key,
            }
        )


@dataclass(frozen=True)
class BatchResult:
    claimed: int
    written: int
    lost: int  # claims taken over by another worker before this one wrote
    crashed: int  # left claimed for the sweeper after an unexpected error
    states: dict[str, int]


def events_process_claimed(*, events: list[Event]) -> BatchResult:
    """Run a claimed batch and write its records. A rule that errors is a decision, not a crash."""
    if not events:
        return BatchResult(claimed=0, written=0, lost=0, crashed=0, states={})
    owners = _OwnerDirectory()
    runs: list[_Run] = []
    crashed = 0
    for event in events:
        try:
            run = _Run(event=event, compiled=_compiled(event), now=timezone.now())
            _run_steps(run, owners)
        except Exception:
            # A bug or a lost database connection: the claim goes stale and the sweeper hands the
            # event to another attempt; the traceback is in the log.
            logger.exception(
                "event %s: processing failed; left for the stale-claim sweeper", event.pk
            )
            crashed += 1
            continue
        runs.append(run)

    delivering = [run for run in runs if run.delivery is not None]
    if delivering:
        schedule_positions = _schedule_positions([run.event for run in delivering])
        results = webhooks_send([run.delivery for run in delivering])  # type: ignore[misc]
        for run, delivery_result in zip(delivering, results, strict=True):
            _record_delivery(run, delivery_result, schedule_positions[run.event.pk])

    written, lost, unwritten = _write_runs(runs, events[0].claimed_by)
    crashed += unwritten
    states: dict[str, int] = {}
    for run in runs:
        if run.event.pk in written:
            states[run.event.state] = states.get(run.event.state, 0) + 1
    return BatchResult(
        claimed=len(events), written=len(written), lost=lost, crashed=crashed, states=states
    )


@dataclass(frozen=True)
class DrainResult:
    processed: int
    batches: int
    more_due: bool


def events_process_due(*, limit: int, worker: str, budget_seconds: float) -> DrainResult:
    """Claim and process batches until nothing is due or the time budget is spent."""
    started = time.monotonic()
    processed = batches = 0
    while True:
        events = events_claim_due(limit=limit, worker=worker)
        if not events:
            return DrainResult(processed=processed, batches=batches, more_due=False)
        result = events_process_claimed(events=events)
        processed += result.written
        batches += 1
        if time.monotonic() - started >= budget_seconds:
            return DrainResult(
                processed=processed, batches=batches, more_due=events_due_count(cap=1) > 0
            )


def _compiled(event: Event) -> CompiledWorkflow:
    return compiled_version(event.version)


def _run_steps(run: _Run, owners: _OwnerDirectory) -> None:
    event = run.event
    handlers = {
        Step.VALIDATE: _validate,
        Step.ENRICH: _enrich,
        Step.ROUTE: lambda r: _route(r, owners),
        Step.REVIEW: _review,
        Step.DELIVER: _deliver,
        Step.OUTCOME: _outcome_without_delivery,
    }
    start = STEP_ORDER.index(Step(event.step)) if event.step in Step.values else 0
    if STEP_ORDER[start] == Step.OUTCOME and run.compiled.action.type == "webhook":
        # An outcome comes from running the action: there is no outcome step without it.
        start = STEP_ORDER.index(Step.DELIVER)
    for step in STEP_ORDER[start:]:
        event.step = step
        if not handlers[step](run):
            return


# --- validate ---------------------------------------------------------------------------------


def _validate(run: _Run) -> bool:
    fields = run.compiled.required_fields
    payload = run.event.payload
    inputs: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []  # (path, sentence)
    for spec in fields:
        found, value = (
            resolve_path(payload, spec.path) if isinstance(payload, dict) else (False, None)
        )
        if not found:
            problems.append((spec.path, f"Missing required field {spec.path}"))
            continue
        inputs[spec.path] = value
        if not json_type_matches(value, spec.type):
            problems.append(
                (spec.path, f"Field {spec.path} should be {spec.type}, got {json_type(value)}")
            )
    if problems:
        sentence = "; ".join(text for _, text in problems)
        run.decide(
            step=Step.VALIDATE,
            rule="required_fields",
            inputs=inputs,
            result={"valid": False, "problems": [{"path": p, "problem": t} for p, t in problems]},
            ok=False,
            explanation=sentence,
        )
        run.needs_attention(
            reason_code="validation_failed",
            detail=sentence,
            owner=_workflow_owner(run),
            fingerprint_key=problems[0][0],
        )
        return False
    count = len(fields)
    if count == 0:
        explanation = "Validated: the workflow requires no fields"
    elif count == 1:
        explanation = "Validated: the 1 required field is present with the right type"
    else:
        explanation = f"Validated: all {count} required fields present with the right types"
    run.decide(
        step=Step.VALIDATE,
        rule="required_fields",
        inputs=inputs,
        result={"valid": True},
        explanation=explanation,
    )
    return True


# --- enrich -----------------------------------------------------------------------------------


def _enrich(run: _Run) -> bool:
    event, compiled = run.event, run.compiled
    # Enrichment is rerun whole: a later rule may read an earlier one through `context`.
    context: dict[str, Any] = {}
    event.context = context
    if not compiled.enrich:
        run.decide(
            step=Step.ENRICH,
            rule="",
            result={"context": {}},
            explanation=f"Nothing to enrich (v{compiled.version_number})",
        )
        return True
    for rule in compiled.enrich:
        inputs = inputs_read(rule, payload=event.payload, context=context)
        outcome = evaluate(rule, payload=event.payload, context=context)
        if not outcome.ok:
            _rule_failed(run, rule, inputs, outcome)
            return False
        value = _json(outcome.value)
        context[rule.name] = value
        run.decide(
            step=Step.ENRICH,
            rule=rule.name,
            inputs=inputs,
            result={"field": rule.name, "value": value},
            explanation=(
                f"Enriched {rule.name} = {_literal(value)} "
                f"(rule {rule.name}, v{compiled.version_number})"
            ),
        )
    return True


# --- route ------------------------------------------------------------------------------------


class _OwnerDirectory:
    """Who can own work right now, looked up once per batch."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[Any, str]] = {}

    def check(self, ref: str, at: datetime) -> tuple[Any, str]:
        """(owner, problem): the Team or user and "" if they can take work, else why not."""
        if ref not in self._seen:
            self._seen[ref] = self._look_up(ref, at)
        return self._seen[ref]

    @staticmethod
    def _look_up(ref: str, at: datetime) -> tuple[Any, str]:
        owner = owner_find(ref)
        if owner is None:
            return None, "does not exist"
        if not isinstance(owner, Team):
            return (owner, "") if owner.is_active else (None, "is deactivated")
        if not owner.active:
            return None, "is inactive"
        if not active_members(team_id=owner.pk, at=at).exists():
            return None, "has no active members"
        return owner, ""


def _route(run: _Run, owners: _OwnerDirectory) -> bool:
    event, compiled = run.event, run.compiled
    version = compiled.version_number
    matched_rule = ""
    inputs: dict[str, Any] = {}
    sentence = ""
    for route in compiled.routes:
        inputs = inputs_read(route.rule, payload=event.payload, context=event.context)
        outcome = _evaluate_condition(route.rule, payload=event.payload, context=event.context)
        if not outcome.ok:
            _rule_failed(run, route.rule, inputs, outcome)
            return False
        if outcome.value:
            matched_rule, target = route.rule.name, route.owner
            sentence = f"Routed to {target}{_because(inputs)} (rule {matched_rule}, v{version})"
            break
    else:
        inputs = {}
        target = compiled.owner
        sentence = f"No route matched; routed to the workflow owner {target} (v{version})"

    owner, problem = owners.check(target, run.now)
    chosen = target
    fallback_used = 0
    notes: list[str] = []
    if problem:
        notes.append(f"Owner {target} {problem}")
        chain = compiled.fallback_owners
        for position, candidate in enumerate(chain, start=1):
            owner, candidate_problem = owners.check(candidate, run.now)
            if not candidate_problem:
                notes.append(f"fell back to {candidate} (fallback {position} of {len(chain)})")
                chosen, fallback_used = candidate, position
                break
            notes.append(f"fallback {candidate} ({position} of {len(chain)}) {candidate_problem}")
        else:
            owner = None
            if chain:
                notes.append("no active owner is left")
            else:
                notes[-1] += " and the workflow has no fallback owners"
    explanation = sentence + (". " + "; ".join(notes) if notes else "")
    result = {
        "route": matched_rule,
        "matched_owner": target,
        "owner": chosen if owner is not None else None,
        "fallback": fallback_used,
    }
    if owner is None:
        run.decide(
            step=Step.ROUTE,
            rule=matched_rule,
            inputs=inputs,
            result=result,
            ok=False,
            explanation=explanation,
        )
        event.owner_team = event.owner_user = None
        run.needs_attention(
            reason_code="no_owner",
            detail="; ".join(notes),
            owner=None,
            fingerprint_key=target,
        )
        return False
    if isinstance(owner, Team):
        event.owner_team, event.owner_user = owner, None
    else:
        event.owner_team, event.owner_user = None, owner
    run.decide(
        step=Step.ROUTE, rule=matched_rule, inputs=inputs, result=result, explanation=explanation
    )
    return True


# --- review -----------------------------------------------------------------------------------


def _review(run: _Run) -> bool:
    event, compiled = run.event, run.compiled
    version = compiled.version_number
    if not compiled.review:
        run.decide(
            step=Step.REVIEW,
            rule="",
            result={"hold": False},
            explanation=f"No review rules (v{version})",
        )
        return True
    for gate in compiled.review:
        inputs = inputs_read(gate.rule, payload=event.payload, context=event.context)
        outcome = _evaluate_condition(gate.rule, payload=event.payload, context=event.context)
        if not outcome.ok:
            _rule_failed(run, gate.rule, inputs, outcome)
            return False
        if not outcome.value:
            continue
        because = _because(inputs)
        if event.review_cleared:
            run.decide(
                step=Step.REVIEW,
                rule=gate.rule.name,
                inputs=inputs,
                result={"hold": False, "matched": gate.rule.name, "cleared": True},
                explanation=(
                    f"Review {gate.rule.name} matched{because}; already cleared by a person "
                    f"(v{version})"
                ),
            )
            return True
        run.decide(
            step=Step.REVIEW,
            rule=gate.rule.name,
            inputs=inputs,
            result={"hold": True, "matched": gate.rule.name, "reason": gate.reason},
            explanation=(
                f"Held for review: {gate.reason} (rule {gate.rule.name} matched{because}, "
                f"v{version})"
            ),
        )
        run.needs_attention(
            reason_code="review_required",
            detail=f"{gate.reason} (rule {gate.rule.name} matched{because})",
            owner=_current_owner(run),
            fingerprint_key=gate.rule.name,
        )
        return False
    checked = len(compiled.review)
    run.decide(
        step=Step.REVIEW,
        rule="",
        result={"hold": False},
        explanation=(
            f"No review rule matched ({checked} checked, v{version})"
            if checked > 1
            else f"Review rule {compiled.review[0].rule.name} did not match (v{version})"
        ),
    )
    return True


# --- deliver ----------------------------------------------------------------------------------


def _deliver(run: _Run) -> bool:
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
            owner=_owner_label(event),
        ),
        webhook_id=event.webhook_id,
        secret=event.workflow.signing_secret,
        timeout_seconds=compiled.action.timeout_seconds,
    )
    return False  # paused: the batch delivers together, then _record_delivery carries on


def _schedule_positions(events: list[Event]) -> dict[int, int]:
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


def _record_delivery(run: _Run, result: WebhookResult, position: int) -> None:
    event, compiled = run.event, run.compiled
    url = compiled.action.url
    number = event.attempt_count + 1
    schedule = compiled.retry_schedule
    now = timezone.now()
    inputs = {
        "url": url,
        "webhook_id": event.webhook_id,
        "attempt": number,
        "trigger": event.pending_trigger,
    }
    outcome_fields = {
        "http_status": result.http_status,
        "duration_ms": result.duration_ms,
        "error_class": result.error_class,
    }
    if result.verdict is Verdict.DELIVERED:
        status = AttemptStatus.SUCCEEDED
    elif result.verdict is Verdict.REJECT:
        status = AttemptStatus.REJECTED
    elif position <= len(schedule):
        status = AttemptStatus.FAILED
    else:
        status = AttemptStatus.EXHAUSTED
    run.attempts.append(
        Attempt(
            event=event,
            number=number,
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
    event.attempt_count = number
    # The operator's request is used up by this attempt; later ones are the engine's own.
    event.pending_trigger = AttemptTrigger.AUTO
    event.pending_actor = None
    event.pending_actor_label = actor_label(None)

    what = _failure(result, url)
    if status == AttemptStatus.SUCCEEDED:
        run.decide(
            step=Step.DELIVER,
            rule="webhook",
            inputs=inputs,
            result={"verdict": "delivered", **outcome_fields},
            explanation=(
                f"Delivered to {url} : HTTP {result.http_status} in {result.duration_ms} ms "
                f"(attempt {number})"
            ),
        )
        event.delivered_at = now
        event.step = Step.OUTCOME
        if compiled.confirm_within is None:
            _achieved_by_delivery(run, evidence={"http_status": result.http_status})
        else:
            run.awaiting_confirmation = result
        return
    if status == AttemptStatus.REJECTED:
        run.decide(
            step=Step.DELIVER,
            rule="webhook",
            inputs=inputs,
            result={"verdict": "rejected", **outcome_fields},
            ok=False,
            explanation=f"{what}; rejected, not retried (attempt {number})",
        )
        detail = f"{what} (attempt {number})"
        if result.error_message:
            detail += f": {_shorten(result.error_message, 300)}"
        run.needs_attention(
            reason_code="delivery_rejected",
            detail=detail,
            owner=_current_owner(run),
            fingerprint_key=result.error_class or "rejected",
        )
        return
    if status == AttemptStatus.FAILED:
        wait = schedule[position - 1]
        event.state = EventState.RETRY_SCHEDULED
        event.next_attempt_at = now + wait
        run.decide(
            step=Step.DELIVER,
            rule="webhook",
            inputs=inputs,
            result={
                "verdict": "retry",
                "retry": position,
                "of": len(schedule),
                "next_attempt_at": event.next_attempt_at,
                **outcome_fields,
            },
            ok=False,
            explanation=f"{what}; retry {position} of {len(schedule)} in {_duration(wait)}",
        )
        return
    run.decide(
        step=Step.DELIVER,
        rule="webhook",
        inputs=inputs,
        result={"verdict": "exhausted", **outcome_fields},
        ok=False,
        explanation=(
            f"{what}; no retries left after {position} "
            f"{'attempt' if position == 1 else 'attempts'} (attempt {number})"
        ),
    )
    run.needs_attention(
        reason_code="delivery_failed",
        detail=f"Delivery to {url} failed {position} times; last: {what}",
        owner=_current_owner(run),
        fingerprint_key=result.error_class or "failed",
    )


def _failure(result: WebhookResult, url: str) -> str:
    if result.http_status is not None:
        return f"HTTP {result.http_status} from {url}"
    if result.error_message:
        return f"{result.error_class} from {url} ({_shorten(result.error_message, 120)})"
    return f"{result.error_class} from {url}"


# --- outcome ----------------------------------------------------------------------------------


def _outcome_without_delivery(run: _Run) -> bool:
    """The outcome step reached without a webhook in this run: the action was none."""
    _achieved_by_delivery(run, evidence={"action": run.compiled.action.type})
    return False


def _achieved_by_delivery(run: _Run, *, evidence: dict[str, Any]) -> None:
    event, compiled = run.event, run.compiled
    now = timezone.now()
    run.outcomes.append(
        Outcome(
            event=event,
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
        explanation=f"Outcome achieved: {why} (v{compiled.version_number})",
    )
    event.step = Step.OUTCOME
    _complete(event, now)


def _complete(event: Event, now: datetime) -> None:
    event.state = EventState.SUCCEEDED
    event.completed_at = now
    event.next_attempt_at = None
    event.outcome_due_at = None


def _settle_confirmation(run: _Run, reported: Outcome | None) -> None:
    """After a 2xx on a workflow that waits for confirmation: apply an early report, or wait."""
    event, compiled = run.event, run.compiled
    now = timezone.now()
    version = compiled.version_number
    if reported is not None:
        _apply_reported(run, reported, now=now, early=True)
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
            f"Waiting up to {_duration(window)} for the destination to confirm the outcome "
            f"(until {event.outcome_due_at:%Y-%m-%d %H:%M:%S} UTC, v{version})"
        ),
    )


def _apply_reported(run: _Run, reported: Outcome, *, now: datetime, early: bool) -> None:
    event, version = run.event, run.compiled.version_number
    by = f"the {reported.source}" + (
        f" from {reported.reported_by}" if reported.reported_by else ""
    )
    timing = " before the delivery finished" if early else ""
    if reported.status == OutcomeStatus.ACHIEVED:
        run.decide(
            step=Step.OUTCOME,
            rule="outcome",
            inputs={"outcome_id": reported.pk, "evidence": reported.evidence},
            result={"status": reported.status, "source": reported.source},
            explanation=f"Outcome achieved: confirmed by {by}{timing} (v{version})",
        )
        _complete(event, now)
        return
    run.decide(
        step=Step.OUTCOME,
        rule="outcome",
        inputs={"outcome_id": reported.pk, "evidence": reported.evidence},
        result={"status": reported.status, "source": reported.source},
        ok=False,
        explanation=f"Outcome failed: reported by {by}{timing} (v{version})",
    )
    event.outcome_due_at = None
    run.needs_attention(
        reason_code="outcome_failed",
        detail=f"The destination reported that the outcome failed: {_literal(reported.evidence)}",
        owner=_current_owner(run),
        fingerprint_key="outcome_failed",
    )


def _reported_outcomes(pairs: Iterable[tuple[int, datetime]]) -> dict[int, Outcome]:
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
        with transaction.atomic():
            events = list(
                Event.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(state=EventState.DELIVERED, outcome_due_at__lte=now)
                .select_related("version", "owner_team", "owner_user", "workflow")
                .order_by("outcome_due_at")[:limit]
            )
            if not events:
                return expired
            last_success = dict(
                Attempt.objects.filter(event__in=events, status=AttemptStatus.SUCCEEDED)
                .values("event_id")
                .annotate(started=Max("started_at"))
                .values_list("event_id", "started")
            )
            reported = _reported_outcomes(
                (e.pk, last_success.get(e.pk) or e.delivered_at or e.received_at) for e in events
            )
            runs = []
            for event in events:
                run = _Run(event=event, compiled=_compiled(event), now=now)
                runs.append(run)
                if event.pk in reported:
                    # A report that came in while the event was still being delivered.
                    _apply_reported(run, reported[event.pk], now=now, early=False)
                    continue
                window = run.compiled.confirm_within
                waited = _duration(window) if window else "the window"
                run.outcomes.append(
                    Outcome(
                        event=event,
                        status=OutcomeStatus.EXPIRED,
                        source=OutcomeSource.DEADLINE,
                        evidence={"outcome_due_at": _json(event.outcome_due_at)},
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
                        f"No outcome confirmed within {waited} of delivery; expired "
                        f"(v{run.compiled.version_number})"
                    ),
                )
                event.outcome_due_at = None
                run.needs_attention(
                    reason_code="outcome_missing",
                    detail=f"The destination did not confirm the outcome within {waited}",
                    owner=_current_owner(run),
                    fingerprint_key="expired",
                )
            for event in events:
                event.updated_at = now
            Decision.objects.bulk_create([d for r in runs for d in r.decisions])
            Outcome.objects.bulk_create([o for r in runs for o in r.outcomes])
            Event.objects.bulk_update(events, EVENT_FIELDS)
            _send_attention(runs)
            expired += len(events)
        if len(events) < limit:
            return expired


# --- writing a batch --------------------------------------------------------------------------


def _write_runs(runs: list[_Run], token: str) -> tuple[list[int], int, int]:
    """Write the batch together; if that fails, event by event so one bad event does not hold
    the others. (written ids, lost claims, events left unwritten for the sweeper)"""
    if not runs:
        return [], 0, 0
    try:
        written, lost = _write_batch_atomic(runs, token)
        return written, lost, 0
    except Exception:
        logger.exception("writing a batch of %d events failed", len(runs))
        if len(runs) == 1:
            return [], 0, 1
    written, lost, unwritten = [], 0, 0
    for run in runs:
        try:
            done, gone = _write_batch_atomic([run], token)
        except Exception:
            logger.exception("event %s: writing its records failed", run.event.pk)
            unwritten += 1
            continue
        written.extend(done)
        lost += gone
    return written, lost, unwritten


@transaction.atomic
def _write_batch_atomic(runs: list[_Run], token: str) -> tuple[list[int], int]:
    ids = [run.event.pk for run in runs]
    # Locked until commit: the stale-claim sweeper cannot take these rows back half-written.
    held = set(
        Event.objects.select_for_update()
        .filter(id__in=ids, claimed_by=token, state=EventState.PROCESSING)
        .values_list("id", flat=True)
    )
    for run in runs:
        if run.event.pk not in held:
            logger.warning(
                "event %s: claim %s was taken over; this worker's results are dropped",
                run.event.pk,
                token,
            )
    lost = len(runs) - len(held)
    runs = [run for run in runs if run.event.pk in held]
    if not runs:
        return [], lost

    confirming = [run for run in runs if run.awaiting_confirmation is not None]
    reported = _reported_outcomes(
        (run.event.pk, run.awaiting_confirmation.started_at)  # type: ignore[union-attr]
        for run in confirming
    )
    # If this transaction fails the runs are written again one by one: undo what it added.
    marks = [(run, len(run.decisions), len(run.attention)) for run in confirming]
    try:
        for run in confirming:
            _settle_confirmation(run, reported.get(run.event.pk))
        now = timezone.now()
        for run in runs:
            run.event.updated_at = now
        Decision.objects.bulk_create([d for run in runs for d in run.decisions])
        Attempt.objects.bulk_create([a for run in runs for a in run.attempts])
        Outcome.objects.bulk_create([o for run in runs for o in run.outcomes])
        _update_events([run.event for run in runs], token)
        _send_attention(runs)
    except BaseException:
        for run, decisions, attention in marks:
            del run.decisions[decisions:]
            del run.attention[attention:]
        raise
    return [run.event.pk for run in runs], lost


def _update_events(events: list[Event], token: str) -> None:
    """One parametrized UPDATE per row, sent together (psycopg pipelines executemany).

    bulk_update's CASE expressions cost more Python time than the whole rest of a batch's
    write; the rows are locked and ours, so plain per-row updates are both simpler and faster.
    """
    fields = [Event._meta.get_field(name) for name in EVENT_FIELDS]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)  # type: ignore[union-attr]
    sql = (
        f"UPDATE {quote(Event._meta.db_table)} SET {assignments} "  # noqa: S608 (names from the model)
        f"WHERE id = %s AND claimed_by = %s AND state = %s"
    )
    rows = [
        [f.get_db_prep_save(getattr(event, f.attname), connection) for f in fields]  # type: ignore[union-attr]
        + [event.pk, token, EventState.PROCESSING.value]
        for event in events
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _send_attention(runs: list[_Run]) -> None:
    for run in runs:
        for kwargs in run.attention:
            attention_needed.send(sender=Event, event=run.event, **kwargs)


# --- operators' retry and replay --------------------------------------------------------------


def event_close(*, event_id: int, state: str) -> bool:
    """Close an event that was waiting for a person (needs_attention) as failed or cancelled.

    The caller decides that nothing else holds the event; the update is conditional, so an
    event that moved on meanwhile (retried, delivered) keeps its state. True if it closed.
    """
    if state not in (EventState.FAILED, EventState.CANCELLED):
        raise ValueError(f"an event closes as failed or cancelled, not {state!r}")
    now = timezone.now()
    closed = Event.objects.filter(pk=event_id, state=EventState.NEEDS_ATTENTION).update(
        state=state, completed_at=now, updated_at=now
    )
    return bool(closed)


@transaction.atomic
def event_retry(*, event: Event, actor: Any, note: str = "", clear_review: bool = False) -> Event:
    """Rerun the step that stopped the event; its next attempt records this person.

    A stopped outcome (none confirmed, or a failure reported) reruns the delivery: the outcome
    can only come from running the action again. clear_review lets a reviewer's approval through
    the review gate that held the event.
    """
    locked = (
        Event.objects.select_for_update(of=("self",)).select_related("version").get(pk=event.pk)
    )
    if locked.state not in RETRYABLE_STATES:
        raise EventNotRetryable(
            f"event {locked.pk} is {locked.state}; only an event that needs attention or "
            "failed can be retried"
        )
    now = timezone.now()
    before = {"state": locked.state, "step": locked.step, "review_cleared": locked.review_cleared}
    step = Step.DELIVER if locked.step == Step.OUTCOME else locked.step
    changes: dict[str, Any] = {
        "state": EventState.RECEIVED,
        "step": step,
        "next_attempt_at": now,
        "outcome_due_at": None,
        "completed_at": None,
        "pending_trigger": AttemptTrigger.RETRY,
        "pending_actor": actor,
        "pending_actor_label": actor_label(actor),
        "updated_at": now,
    }
    if clear_review:
        changes["review_cleared"] = True
    Event.objects.filter(pk=locked.pk).update(**changes)
    locked.refresh_from_db()
    audit_record(
        actor=actor,
        action="event.retry",
        target=locked,
        before=before,
        after={"state": locked.state, "step": locked.step, "review_cleared": locked.review_cleared},
        reason=note,
    )
    transaction.on_commit(wake_workers, robust=True)
    return locked


@transaction.atomic
def event_replay(
    *,
    event: Event,
    actor: Any,
    version: str = "original",
    payload_override: dict[str, Any] | None = None,
    note: str = "",
) -> Event:
    """Run the event again from the start as a new event; the original stays as it is."""
    original = Event.objects.select_related("workflow", "version").get(pk=event.pk)
    if version == "original":
        target: WorkflowVersion | None = original.version
    elif version == "current":
        target = original.workflow.current_version
        if target is None:
            raise ReplayNotPossible(f"workflow {original.workflow.slug} has no current version")
    else:
        raise ReplayNotPossible(f'version must be "original" or "current", not {version!r}')
    edited = payload_override is not None
    payload = payload_override if edited else original.payload
    if not isinstance(payload, dict):
        raise ReplayNotPossible("a payload is a JSON object")
    problem = unstorable_reason(payload)
    if problem:
        raise ReplayNotPossible(problem)
    now = timezone.now()
    label = actor_label(actor)
    replay = Event.objects.create(
        workflow=original.workflow,
        version=target,
        payload=payload,
        payload_hash=canonical_hash(payload),
        source="replay",
        headers={
            "x-handoff-replay-of": str(original.pk),
            "x-handoff-replay-version": version,
            "x-handoff-replay-by": label,
            "x-handoff-payload-edited": "true" if edited else "false",
        },
        idempotency_key=None,
        received_at=now,
        replay_of=original,
        state=EventState.RECEIVED,
        step=Step.VALIDATE,
        next_attempt_at=now,
        pending_trigger=AttemptTrigger.REPLAY,
        pending_actor=actor,
        pending_actor_label=label,
    )
    audit_record(
        actor=actor,
        action="event.replay",
        target=original,
        before={
            "version": original.version.number,
            "payload": original.payload if edited else None,
        },
        after={
            "replay_id": replay.pk,
            "version": target.number,
            "version_choice": version,
            "payload_edited": edited,
            "payload": payload if edited else None,
        },
        reason=note,
    )
    transaction.on_commit(wake_workers, robust=True)
    return replay


# --- helpers ----------------------------------------------------------------------------------


def _evaluate_condition(rule: Rule, *, payload: Any, context: dict[str, Any]) -> RuleResult:
    """A route or review condition must come out true or false; anything else is its error."""
    outcome = evaluate(rule, payload=payload, context=context)
    if outcome.ok and not isinstance(outcome.value, bool):
        return RuleResult(
            error=f"returned {_literal(_json(outcome.value))}, not true or false",
            error_class="NotABoolean",
        )
    return outcome


def _rule_failed(run: _Run, rule: Rule, inputs: dict[str, Any], outcome: RuleResult) -> None:
    version = run.compiled.version_number
    run.decide(
        step=run.event.step,
        rule=rule.name,
        inputs=inputs,
        result={"error": outcome.error, "error_class": outcome.error_class},
        ok=False,
        explanation=f"Rule {rule.name} failed: {outcome.error} (v{version})",
    )
    run.needs_attention(
        reason_code="rule_error",
        detail=f"Rule {rule.name} failed: {outcome.error}",
        owner=_current_owner(run),
        fingerprint_key=outcome.error_class or "error",
    )


def _workflow_owner(run: _Run) -> Any:
    return owner_find(run.compiled.owner)


def _current_owner(run: _Run) -> Any:
    """Whoever routing chose, or the workflow's owner before routing has run."""
    event = run.event
    return event.owner_user or event.owner_team or _workflow_owner(run)


def _owner_label(event: Event) -> str:
    return owner_ref(team=event.owner_team, user=event.owner_user)


def _because(inputs: dict[str, Any]) -> str:
    parts = [f"{path.rsplit('.', 1)[-1]} was {_plain(value)}" for path, value in inputs.items()]
    return " because " + " and ".join(parts) if parts else ""


def _plain(value: Any) -> str:
    """A value as a sentence shows it: text bare, everything else as JSON."""
    return value if isinstance(value, str) else _shorten(_literal(value), 80)


def _literal(value: Any) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json(value: Any) -> Any:
    """What a JSON column will hold: CEL timestamps, durations and bytes become text."""
    return json.loads(json.dumps(value, cls=_LenientEncoder))


class _LenientEncoder(DjangoJSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, bytes):
            return o.decode("utf-8", errors="replace")
        try:
            return super().default(o)
        except TypeError:
            return str(o)


def _duration(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'' if count == 1 else 's'}"
    if float(seconds).is_integer():
        count = int(seconds)
        return f"{count} second{'' if count == 1 else 's'}"
    return f"{seconds:g} seconds"
