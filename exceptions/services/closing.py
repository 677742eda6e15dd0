"""The operators' actions that close a case or run its event again: resolve, dismiss, retry,
replay; and snoozed cases coming back. Retries and replays call the engine's services."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.context import current_approval_id
from exceptions.models import (
    OPEN_STATES,
    CaseState,
    DismissReason,
    ExceptionCase,
    Resolution,
)
from exceptions.services.cases import (
    CaseActionForbidden,
    CaseActionRefused,
    CaseConflict,
    case_change,
    cases_change_many,
    require_note,
    require_open,
)
from workflows.four_eyes import holds_role
from workflows.models import Event, EventState
from workflows.selectors import review_approver_role
from workflows.services import engine

REVIEW_REASON = "review_required"


def _close_changes(*, state: str, code: str, note: str, actor: Any) -> dict[str, Any]:
    return {
        "state": state,
        "resolution_code": code,
        "resolution_note": note,
        "resolved_at": timezone.now(),
        "closed_by": actor,
        "snoozed_until": None,
        "sla_due_at": None,
    }


def _event_close(*, event_id: int, state: str) -> bool:
    """Close an event that only this case was holding (needs_attention, no other open case)."""
    return bool(_events_close(event_ids={event_id}, state=state))


def _events_close(*, event_ids: set[int], state: str) -> int:
    """_event_close of many events: those no other open case holds; how many closed."""
    held = ExceptionCase.objects.filter(event_id__in=event_ids, state__in=OPEN_STATES)
    free = event_ids - set(held.values_list("event_id", flat=True))
    return engine.events_close(event_ids=free, state=state) if free else 0


def _engine_retry(*, event_id: int, actor: Any, note: str, clear_review: bool = False) -> None:
    event = Event.objects.get(pk=event_id)
    try:
        engine.event_retry(event=event, actor=actor, note=note, clear_review=clear_review)
    except engine.EventNotRetryable as exc:
        raise CaseActionRefused(str(exc)) from exc


def _engine_replay(
    *, event_id: int, actor: Any, version: str, payload: dict[str, Any] | None, note: str
) -> Event:
    event = Event.objects.get(pk=event_id)
    try:
        # Under an approval being carried out (audit.context), the engine lets through what
        # needs one; otherwise it raises ApprovalRequired for the caller to ask for one.
        return engine.event_replay(
            event=event,
            actor=actor,
            version=version,
            payload_override=payload,
            note=note,
            approval_id=current_approval_id.get(),
        )
    except engine.ReplayNotPossible as exc:
        raise CaseActionRefused(str(exc)) from exc


def require_approver(case: ExceptionCase, actor: Any) -> None:
    """Only the role the review gate names may approve what it held; others may comment."""
    role = review_approver_role(event_id=case.event_id)
    if not holds_role(actor, role):
        raise CaseActionForbidden(
            f"Only a {role} may approve this review: the rule that held event {case.event_id} "
            "says so. You can add a comment for them."
        )


@transaction.atomic
def case_resolve(
    *,
    case: ExceptionCase,
    actor: Any,
    resolution: str,
    version: int | None = None,
    note: str = "",
) -> ExceptionCase:
    """Close the case as resolved with a resolution code.

    "approved" (review cases only) clears the event's review gate and reruns the step, so the
    action runs. Every other code closes the event it was holding as failed: the automation
    did not achieve it, whatever a person then did by hand ("rejected" included). An event
    that is not waiting on this case (delivered, already closed) keeps its state.
    """
    require_open(case, "resolved", version)
    if resolution not in Resolution.values or resolution in (Resolution.RETRIED, "replayed"):
        raise CaseActionRefused(f"{resolution!r} is not a resolution code.")
    is_review = case.reason_id == REVIEW_REASON
    if resolution in (Resolution.APPROVED, Resolution.REJECTED) and not is_review:
        raise CaseActionRefused("Approve and reject apply to review cases only.")
    if resolution == Resolution.APPROVED:
        require_approver(case, actor)
    require_note(case, note, "resolve")
    fresh = case_change(
        case=case,
        actor=actor,
        version=version,
        action="resolve",
        note=note,
        changes=_close_changes(state=CaseState.RESOLVED, code=resolution, note=note, actor=actor),
    )
    if resolution == Resolution.APPROVED:
        # The approval clears the review gate (event.review_cleared) and reruns the step.
        _engine_retry(event_id=case.event_id, actor=actor, note=note, clear_review=True)
    else:
        _event_close(event_id=case.event_id, state=EventState.FAILED)
    return fresh


@transaction.atomic
def case_dismiss(
    *,
    case: ExceptionCase,
    actor: Any,
    reason: str,
    version: int | None = None,
    note: str = "",
) -> ExceptionCase:
    """Close the case as dismissed: nothing should be done about this event.

    The event it was holding becomes cancelled, not failed: dismissing says the event was
    never worth completing (a duplicate, test data, spam), so it must not count as a failure
    of the automation in outcome and error rates. A person who tried and gave up resolves
    instead (e.g. handled_manually), which closes the event as failed.
    """
    require_open(case, "dismissed", version)
    if reason not in DismissReason.values:
        raise CaseActionRefused(f"{reason!r} is not a dismiss reason.")
    require_note(case, note, "dismiss")
    fresh = case_change(
        case=case,
        actor=actor,
        version=version,
        action="dismiss",
        note=note,
        changes=_close_changes(state=CaseState.DISMISSED, code=reason, note=note, actor=actor),
    )
    _event_close(event_id=case.event_id, state=EventState.CANCELLED)
    return fresh


@transaction.atomic
def case_retry(
    *, case: ExceptionCase, actor: Any, version: int | None = None, note: str = ""
) -> ExceptionCase:
    """Rerun the failed step of the case's event; the case closes as "retried".

    It closes first so that, should the step fail again, the engine opens a fresh case (same
    fingerprint, same group) instead of joining one a person already dealt with.
    """
    require_open(case, "retried", version)
    fresh = case_change(
        case=case,
        actor=actor,
        version=version,
        action="retry",
        note=note,
        changes=_close_changes(
            state=CaseState.RESOLVED, code=Resolution.RETRIED, note=note, actor=actor
        ),
    )
    _engine_retry(event_id=case.event_id, actor=actor, note=note)
    return fresh


@transaction.atomic
def case_replay(
    *,
    case: ExceptionCase,
    actor: Any,
    run_version: str = "original",
    payload: dict[str, Any] | None = None,
    version: int | None = None,
    note: str = "",
) -> tuple[ExceptionCase, Event]:
    """Replay the case's event from the start as a new event; the case closes as "replayed".

    run_version is "original" (the version the event ran under) or "current". An edited
    payload needs a note saying why. The original event, if only this case held it, closes
    as failed: the replay carries the work on.
    """
    require_open(case, "replayed", version)
    if run_version not in ("original", "current"):
        raise CaseActionRefused("Replay under the original or the current version.")
    if payload is not None:
        if not isinstance(payload, dict):
            raise CaseActionRefused("An edited payload must be a JSON object.")
        if not note.strip():
            raise CaseActionRefused("Say why the payload was edited: a note is required.")
    fresh = case_change(
        case=case,
        actor=actor,
        version=version,
        action="replay",
        note=note,
        changes=_close_changes(
            state=CaseState.RESOLVED, code=Resolution.REPLAYED, note=note, actor=actor
        ),
        after_extra={"run_version": run_version, "payload_edited": payload is not None},
    )
    replay = _engine_replay(
        event_id=case.event_id, actor=actor, version=run_version, payload=payload, note=note
    )
    _event_close(event_id=case.event_id, state=EventState.FAILED)
    return fresh, replay


def cases_replay(
    *, cases: list[ExceptionCase], actor: Any, run_version: str = "original", note: str = ""
) -> dict[int, Event | Exception]:
    """case_replay of many cases, each at the version it has now (the cases of a bulk job), in
    the caller's transaction and by sets: each case's id to its replay's new event, or to the
    exception case_replay would have raised for it. The replays are prepared in one read, the
    cases closed by one conditional UPDATE, and the replays, the audit entries and the events
    the cases held written by one statement each, where case_replay costs a dozen statements a
    case."""
    if run_version not in ("original", "current"):
        raise CaseActionRefused("Replay under the original or the current version.")
    results: dict[int, Event | Exception] = {}
    candidates = []
    for case in cases:
        try:
            require_open(case, "replayed", None)
        except CaseActionRefused as exc:
            results[case.pk] = exc
        else:
            candidates.append(case)
    prepared = engine.events_replay_prepare(
        event_ids=[case.event_id for case in candidates], actor=actor, version=run_version,
        note=note, approval_id=current_approval_id.get(),
    )  # fmt: skip
    ready: dict[int, tuple[ExceptionCase, Event]] = {}
    for case, replay in zip(candidates, prepared, strict=True):
        if isinstance(replay, engine.ReplayNotPossible):
            results[case.pk] = CaseActionRefused(str(replay))
        elif isinstance(replay, Exception):
            results[case.pk] = replay
        else:
            ready[case.pk] = (case, replay)
    closed = cases_change_many(
        cases=[case for case, _ in ready.values()],
        actor=actor,
        action="replay",
        note=note,
        changes=_close_changes(
            state=CaseState.RESOLVED, code=Resolution.REPLAYED, note=note, actor=actor
        ),
        after_extra={"run_version": run_version, "payload_edited": False},
    )
    for pk, conflict in closed.items():
        if conflict is not None:
            results[pk] = conflict
            del ready[pk]
    replays = [replay for _, replay in ready.values()]
    engine.events_replay_save(
        replays=replays, actor=actor, note=note, approval_id=current_approval_id.get()
    )
    results.update({pk: replay for pk, (_, replay) in ready.items()})
    _events_close(event_ids={case.event_id for case, _ in ready.values()}, state=EventState.FAILED)
    return results


@transaction.atomic
def cases_wake_snoozed(*, now: datetime | None = None) -> int:
    """Snoozes that have ended: back to open (or acknowledged, if someone had)."""
    now = now or timezone.now()
    woken = 0
    due = ExceptionCase.objects.filter(state=CaseState.SNOOZED, snoozed_until__lte=now)
    for case in due.select_related("owner_team", "owner_user", "reason")[:1000]:
        state = CaseState.ACKNOWLEDGED if case.acknowledged_at else CaseState.OPEN
        try:
            case_change(
                case=case,
                actor=None,
                version=case.version,
                action="wake",
                note="snooze ended",
                changes={"state": state, "snoozed_until": None},
            )
        except CaseConflict:
            continue
        woken += 1
    return woken
