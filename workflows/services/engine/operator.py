"""What a person does to an event: close it, retry the step that stopped it, or replay it."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.actors import actor_label
from audit.canonical import canonical_hash
from audit.services import EntryFields, audit_record, audit_record_many
from workflows.dispatch import wake_workers
from workflows.four_eyes import DELIVERED_REPLAY, EDITED_REPLAY, ApprovalRequired
from workflows.models import (
    Attempt,
    AttemptStatus,
    AttemptTrigger,
    Event,
    EventState,
    Step,
    WorkflowVersion,
)
from workflows.services.ingest import unstorable_reason

RETRYABLE_STATES = (EventState.NEEDS_ATTENTION, EventState.FAILED)


class EventNotRetryable(Exception):
    """Only an event that needs attention or failed can be retried."""


class ReplayNotPossible(Exception):
    """The replay asked for cannot be made (no current version, a payload that is not an object)."""


def event_close(*, event_id: int, state: str) -> bool:
    """Close an event that was waiting for a person (needs_attention) as failed or cancelled.

    The caller decides that nothing else holds the event; the update is conditional, so an
    event that moved on meanwhile (retried, delivered) keeps its state. True if it closed.
    """
    return bool(events_close(event_ids={event_id}, state=state))


def events_close(*, event_ids: set[int], state: str) -> int:
    """event_close of many events in one statement; how many closed."""
    if state not in (EventState.FAILED, EventState.CANCELLED):
        raise ValueError(f"an event closes as failed or cancelled, not {state!r}")
    now = timezone.now()
    return Event.objects.filter(pk__in=event_ids, state=EventState.NEEDS_ATTENTION).update(
        state=state, completed_at=now, updated_at=now
    )


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
        # A person looked at it: failed runs are counted afresh.
        "processing_failures": 0,
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
    approval_id: int | None = None,
) -> Event:
    """Run the event again from the start as a new event; the original stays as it is.

    An edited payload, or an event the destination already accepted (a replay sends it again),
    runs only under a second person's approval (approval_id; else ApprovalRequired): whatever
    the edit does, it changes what the rules decided, so no edit is ever exempt.
    """
    (replay,) = events_replay_prepare(
        event_ids=[event.pk], actor=actor, version=version, payload_override=payload_override,
        note=note, approval_id=approval_id,
    )  # fmt: skip
    if isinstance(replay, Exception):
        raise replay
    events_replay_save(replays=[replay], actor=actor, note=note, approval_id=approval_id)
    return replay


def events_replay_prepare(
    *,
    event_ids: list[int],
    actor: Any,
    version: str,
    note: str,
    approval_id: int | None,
    payload_override: dict[str, Any] | None = None,
) -> list[Event | Exception]:
    """For each event id (in order), its replay as a new event not yet saved, or why it may not
    be replayed (ReplayNotPossible, ApprovalRequired). Reads only: two queries for any number.
    events_replay_save stores the replays; a caller with more to check in between (a case
    that may have changed) saves only those it keeps."""
    ids = set(event_ids)
    originals = Event.objects.select_related("workflow", "version").in_bulk(ids)
    # Each event's first delivery the destination accepted (DISTINCT ON the event).
    delivered = {
        attempt.event_id: attempt
        for attempt in Attempt.objects.filter(
            event_id__in=ids, status=AttemptStatus.SUCCEEDED, superseded=False
        )
        .order_by("event_id", "id")
        .distinct("event_id")
    }
    prepared: list[Event | Exception] = []
    for event_id in event_ids:
        original = originals[event_id]
        try:
            target, payload = _replay_checked(
                original, delivered.get(original.pk), version, payload_override, note,
                approval_id,
            )  # fmt: skip
        except (ReplayNotPossible, ApprovalRequired) as exc:
            prepared.append(exc)
            continue
        prepared.append(
            _replay_event(
                original,
                target,
                payload,
                actor=actor,
                version=version,
                edited=payload_override is not None,
            )  # fmt: skip
        )
    return prepared


def events_replay_save(
    *, replays: list[Event], actor: Any, note: str, approval_id: int | None
) -> None:
    """Store prepared replays, in one INSERT, and their audit entries, in another; the
    workers are woken once the transaction commits."""
    if not replays:
        return
    Event.objects.bulk_create(replays)
    audit_record_many(
        actor=actor,
        action="event.replay",
        entries=[_replay_audit(replay, note) for replay in replays],
        approval_id=approval_id,
    )
    transaction.on_commit(wake_workers, robust=True)


def _replay_checked(
    original: Event,
    delivered: Attempt | None,
    version: str,
    payload_override: dict[str, Any] | None,
    note: str,
    approval_id: int | None,
) -> tuple[WorkflowVersion, dict[str, Any]]:
    """The version and payload a replay of `original` runs with, or why it may not run."""
    target = replay_version(original, version)
    edited = payload_override is not None
    payload = payload_override if edited else original.payload
    if not isinstance(payload, dict):
        raise ReplayNotPossible("a payload is a JSON object")
    problem = unstorable_reason(payload)
    if problem:
        raise ReplayNotPossible(problem)
    if edited and approval_id is None:
        raise ApprovalRequired(
            EDITED_REPLAY,
            f"A replay of event {original.pk} with an edited payload runs only once a second "
            "person approves it.",
        )
    if delivered is not None:
        said = (
            f"Event {original.pk} was already delivered (HTTP {delivered.http_status} at "
            f"{delivered.finished_at:%Y-%m-%d %H:%M} UTC); a replay sends it again"
        )
        if not note.strip():
            raise ReplayNotPossible(f"{said}, so say why in a note.")
        if approval_id is None:
            raise ApprovalRequired(DELIVERED_REPLAY, f"{said}: a second person must approve it.")
    return target, payload


def _replay_audit(replay: Event, note: str) -> EntryFields:
    """The audit entry of a replay: on the original event, with what the replay runs."""
    original = replay.replay_of
    assert original is not None
    edited = replay.headers["x-handoff-payload-edited"] == "true"
    return {
        "target": original,
        "before": {
            "version": original.version.number,
            "payload": original.payload if edited else None,
        },
        "after": {
            "replay_id": replay.pk,
            "version": replay.version.number,
            "version_choice": replay.headers["x-handoff-replay-version"],
            "payload_edited": edited,
            "payload": replay.payload if edited else None,
        },
        "reason": note,
    }


def replay_version(event: Event, version: str) -> WorkflowVersion:
    """The version a replay of `event` runs under: "original" (its own) or "current"."""
    if version == "original":
        return event.version
    if version == "current":
        current = event.workflow.current_version
        if current is None:
            raise ReplayNotPossible(f"workflow {event.workflow.slug} has no current version")
        return current
    raise ReplayNotPossible(f'version must be "original" or "current", not {version!r}')


def _replay_event(
    original: Event,
    target: WorkflowVersion,
    payload: dict[str, Any],
    *,
    actor: Any,
    version: str,
    edited: bool,
) -> Event:
    """The new event of a replay, not yet saved."""
    now = timezone.now()
    label = actor_label(actor)
    return Event(
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
