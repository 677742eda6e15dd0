"""Every write to exception cases: opening them, the operators' actions, comments, bulk jobs.

Each action takes the case `version` the person was shown. The change is one conditional UPDATE
on that version: when two people act on the same case at once, exactly one matches, and the
other gets CaseConflict with the fresh case instead of silently overwriting the first.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from audit.services import audit_record
from exceptions import notices
from exceptions.models import (
    OPEN_STATES,
    BulkItemState,
    BulkJob,
    BulkJobItem,
    BulkJobState,
    CaseState,
    Comment,
    DismissReason,
    ExceptionCase,
    ReasonCode,
    Resolution,
    SavedView,
    next_deadline,
)
from workflows.models import Event, EventState, Team
from workflows.rules import compiled_version
from workflows.services import engine

BULK_CHUNK_SIZE = 100
# Up to this many cases a bulk action runs inside the request; above it, as a Celery job.
BULK_INLINE_MAX = 200
REVIEW_REASON = "review_required"

# The case's words for full-text search: its detail and every string and number of the payload.
_SEARCH_SQL = """
UPDATE exceptions_exceptioncase AS c
SET search = to_tsvector('simple', c.detail)
    || jsonb_to_tsvector('simple', e.payload, '["string", "numeric"]')
FROM workflows_event AS e
WHERE c.id = %s AND e.id = c.event_id
"""


class CaseConflict(Exception):
    """Someone changed the case since it was shown; carries the fresh case."""

    def __init__(self, case: ExceptionCase) -> None:
        self.case = case
        who = case.closed_by or case.owner_user
        super().__init__(
            f"Case {case.pk} was changed by someone else while you were looking at it "
            f"(it is now {case.get_state_display().lower()}"
            + (f", {who.get_username()}" if who else "")
            + "). Nothing was changed by your action: here is the current state."
        )


class CaseActionRefused(ValueError):
    """The action does not apply to the case as it is (closed, missing note, wrong code)."""


def case_fingerprint(*, workflow_slug: str, reason_code: str, step: str, key: str) -> str:
    """Cases with the same workflow, reason, step and error class (or missing field) group."""
    raw = "\x1f".join([workflow_slug, reason_code, step, key])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@transaction.atomic
def _sla(event: Event) -> tuple[timedelta | None, timedelta | None]:
    """The workflow version's SLA clocks, if it names them."""
    try:
        compiled = compiled_version(event.version)
    except Exception:
        # A version the engine can no longer compile is exactly when a processing_error case
        # must still open: the reason code's clocks apply.
        return None, None
    return compiled.acknowledge_within, compiled.resolve_within


def case_open_or_join(
    *,
    event: Event,
    reason_code: str,
    detail: str,
    owner: Any,
    step: str,
    fingerprint_key: str = "",
) -> tuple[ExceptionCase, bool]:
    """Open a case for the event, or return the open one with the same reason. (case, created)"""
    existing = (
        ExceptionCase.objects.select_for_update()
        .filter(event=event, reason__code=reason_code, state__in=OPEN_STATES)
        .first()
    )
    if existing is not None:
        return existing, False
    reason = ReasonCode.objects.get(code=reason_code)
    acknowledge_within, resolve_within = _sla(event)
    now = timezone.now()
    acknowledge_within = acknowledge_within or reason.default_acknowledge_within
    resolve_within = resolve_within or reason.default_resolve_within
    case = ExceptionCase(
        event=event,
        workflow_id=event.workflow_id,
        reason=reason,
        step=step,
        detail=detail,
        fingerprint=case_fingerprint(
            workflow_slug=event.workflow.slug,
            reason_code=reason_code,
            step=step,
            key=fingerprint_key,
        ),
        opened_at=now,
        acknowledge_due_at=now + acknowledge_within if acknowledge_within else None,
        resolve_due_at=now + resolve_within if resolve_within else None,
    )
    case.sla_due_at = next_deadline(case)
    if isinstance(owner, Team):
        case.owner_team = owner
    elif isinstance(owner, get_user_model()):
        case.owner_user = owner
    case.save()
    with connection.cursor() as cursor:
        cursor.execute(_SEARCH_SQL, [case.pk])
    return case, True


# --- the operators' actions ---------------------------------------------------------------


def _snapshot(case: ExceptionCase) -> dict[str, Any]:
    return {
        "state": case.state,
        "owner_team": case.owner_team.slug if case.owner_team is not None else None,
        "owner_user": case.owner_user.get_username() if case.owner_user is not None else None,
        "snoozed_until": case.snoozed_until,
        "resolution_code": case.resolution_code or None,
        "version": case.version,
    }


def _fresh(pk: int) -> ExceptionCase:
    return ExceptionCase.objects.select_related(
        "owner_team", "owner_user", "closed_by", "reason", "workflow"
    ).get(pk=pk)


def _change(
    *,
    case: ExceptionCase,
    actor: Any,
    version: int | None,
    action: str,
    note: str,
    changes: dict[str, Any],
    after_extra: dict[str, Any] | None = None,
) -> ExceptionCase:
    """Apply `changes` if the case is still at the version shown; audit it with the note."""
    shown = case.version if version is None else version
    if shown != case.version:
        raise CaseConflict(_fresh(case.pk))
    before = _snapshot(case)
    now = timezone.now()
    updated = ExceptionCase.objects.filter(pk=case.pk, version=shown).update(
        **changes, version=F("version") + 1, updated_at=now
    )
    if not updated:
        raise CaseConflict(_fresh(case.pk))
    fresh = _fresh(case.pk)
    after = _snapshot(fresh)
    if after_extra:
        after.update(after_extra)
    audit_record(
        actor=actor, action=f"case.{action}", target=fresh, before=before, after=after, reason=note
    )
    return fresh


def _require_open(case: ExceptionCase, what: str, version: int | None) -> None:
    """The person saw the case as it is now, and it is still open."""
    # Staleness first: whoever acted on an old view gets the conflict and the fresh state,
    # not a refusal worded for the state someone else just put it in.
    if version is not None and version != case.version:
        raise CaseConflict(_fresh(case.pk))
    if not case.is_open:
        raise CaseActionRefused(
            f"Case {case.pk} is already {case.get_state_display().lower()}: it cannot be {what}."
        )


def _require_note(case: ExceptionCase, note: str, what: str) -> None:
    if case.reason.note_required and not note.strip():
        raise CaseActionRefused(
            f"A note is required to {what} a {case.reason.label.lower()} case: say why."
        )


@transaction.atomic
def case_claim(
    *, case: ExceptionCase, actor: Any, version: int | None = None, note: str = ""
) -> ExceptionCase:
    """Make the actor the case's owner (the team stays)."""
    _require_open(case, "claimed", version)
    return _change(
        case=case,
        actor=actor,
        version=version,
        action="claim",
        note=note,
        changes={"owner_user": actor},
    )


_UNCHANGED: Any = object()


@transaction.atomic
def case_assign(
    *,
    case: ExceptionCase,
    actor: Any,
    team: Team | None = _UNCHANGED,
    user: Any = _UNCHANGED,
    version: int | None = None,
    note: str = "",
) -> ExceptionCase:
    """Give the case to a team and/or a person; None clears that side (unassigned)."""
    _require_open(case, "assigned", version)
    changes: dict[str, Any] = {}
    if team is not _UNCHANGED:
        changes["owner_team"] = team
    if user is not _UNCHANGED:
        changes["owner_user"] = user
    if not changes:
        raise CaseActionRefused("Choose a team or a person to assign the case to.")
    before = _snapshot(case)
    fresh = _change(
        case=case, actor=actor, version=version, action="assign", note=note, changes=changes
    )
    notices.case_assigned(case=fresh, actor=actor, before=before)
    return fresh


@transaction.atomic
def case_acknowledge(
    *, case: ExceptionCase, actor: Any, version: int | None = None, note: str = ""
) -> ExceptionCase:
    """Someone is on it: stops the acknowledge clock (the resolve clock keeps running)."""
    _require_open(case, "acknowledged", version)
    if case.state == CaseState.ACKNOWLEDGED:
        raise CaseActionRefused(f"Case {case.pk} is already acknowledged.")
    acknowledged_at = case.acknowledged_at or timezone.now()
    return _change(
        case=case,
        actor=actor,
        version=version,
        action="acknowledge",
        note=note,
        changes={
            "state": CaseState.ACKNOWLEDGED,
            "acknowledged_at": acknowledged_at,
            "snoozed_until": None,
            "sla_due_at": case.resolve_due_at,
        },
    )


@transaction.atomic
def case_snooze(
    *,
    case: ExceptionCase,
    actor: Any,
    until: datetime,
    version: int | None = None,
    note: str = "",
) -> ExceptionCase:
    """Hide the case from the open views until `until`. The SLA clocks keep running."""
    _require_open(case, "snoozed", version)
    if until <= timezone.now():
        raise CaseActionRefused("Snooze until a time in the future.")
    return _change(
        case=case,
        actor=actor,
        version=version,
        action="snooze",
        note=note,
        changes={"state": CaseState.SNOOZED, "snoozed_until": until},
    )


@transaction.atomic
def case_comment(*, case: ExceptionCase, actor: Any, body: str) -> Comment:
    """A comment does not change the case, so it needs no version: it never conflicts."""
    body = body.strip()
    if not body:
        raise CaseActionRefused("A comment cannot be empty.")
    comment = Comment.objects.create(case=case, author=actor, body=body)
    audit_record(
        actor=actor,
        action="case.comment",
        target=case,
        after={"comment_id": comment.pk, "body": body},
        reason=body,
    )
    return comment


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
    blocked = ExceptionCase.objects.filter(event_id=event_id, state__in=OPEN_STATES).exists()
    return not blocked and engine.event_close(event_id=event_id, state=state)


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
        return engine.event_replay(
            event=event, actor=actor, version=version, payload_override=payload, note=note
        )
    except engine.ReplayNotPossible as exc:
        raise CaseActionRefused(str(exc)) from exc


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
    _require_open(case, "resolved", version)
    if resolution not in Resolution.values or resolution in (Resolution.RETRIED, "replayed"):
        raise CaseActionRefused(f"{resolution!r} is not a resolution code.")
    is_review = case.reason_id == REVIEW_REASON
    if resolution in (Resolution.APPROVED, Resolution.REJECTED) and not is_review:
        raise CaseActionRefused("Approve and reject apply to review cases only.")
    _require_note(case, note, "resolve")
    fresh = _change(
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
    _require_open(case, "dismissed", version)
    if reason not in DismissReason.values:
        raise CaseActionRefused(f"{reason!r} is not a dismiss reason.")
    _require_note(case, note, "dismiss")
    fresh = _change(
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
    _require_open(case, "retried", version)
    fresh = _change(
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
    _require_open(case, "replayed", version)
    if run_version not in ("original", "current"):
        raise CaseActionRefused("Replay under the original or the current version.")
    if payload is not None:
        if not isinstance(payload, dict):
            raise CaseActionRefused("An edited payload must be a JSON object.")
        if not note.strip():
            raise CaseActionRefused("Say why the payload was edited: a note is required.")
    fresh = _change(
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


@transaction.atomic
def cases_wake_snoozed(*, now: datetime | None = None) -> int:
    """Snoozes that have ended: back to open (or acknowledged, if someone had)."""
    now = now or timezone.now()
    woken = 0
    due = ExceptionCase.objects.filter(state=CaseState.SNOOZED, snoozed_until__lte=now)
    for case in due.select_related("owner_team", "owner_user", "reason")[:1000]:
        state = CaseState.ACKNOWLEDGED if case.acknowledged_at else CaseState.OPEN
        try:
            _change(
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


# --- saved views ------------------------------------------------------------------------------


@transaction.atomic
def saved_view_save(*, owner: Any, name: str, query: str) -> SavedView:
    """Create or replace the person's view of that name. A preference: not on the audit trail."""
    name = name.strip()
    if not name:
        raise CaseActionRefused("Give the view a name.")
    view, _ = SavedView.objects.update_or_create(
        owner=owner, name=name, defaults={"query": query, "created_at": timezone.now()}
    )
    return view


@transaction.atomic
def saved_view_delete(*, view: SavedView, actor: Any) -> None:
    if view.owner_id != actor.pk:
        raise CaseActionRefused("Only its owner can delete a saved view.")
    view.delete()


# --- bulk actions -----------------------------------------------------------------------------


@transaction.atomic
def bulk_job_create(
    *,
    actor: Any,
    action: str,
    params: dict[str, Any],
    note: str,
    cases: QuerySet[ExceptionCase],
    scope: str,
) -> BulkJob:
    """Fix the list of cases (one INSERT ... SELECT) and record who asked for what, and why."""
    _registry().bulk_action(action)  # refuses a name that is not one
    job = BulkJob.objects.create(
        created_by=actor, action=action, params=params, note=note, scope=scope
    )
    ids = cases.order_by().values("id")
    sql, sql_params = ids.query.sql_with_params()
    # The inner query is Django's own SQL for the queryset; its values stay parameters. A
    # queryset that joins can list a case twice: the job holds it once, and counts it once.
    insert = (
        "INSERT INTO exceptions_bulkjobitem (job_id, case_id, state, message) "  # noqa: S608
        f"SELECT %s, q.id, 'pending', '' FROM ({sql}) AS q ORDER BY q.id "
        "ON CONFLICT (job_id, case_id) DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(insert, [job.pk, *sql_params])
        total = cursor.rowcount
    BulkJob.objects.filter(pk=job.pk).update(total=total)
    job.total = total
    audit_record(
        actor=actor,
        action="bulk.start",
        target=job,
        after={"action": action, "params": params, "total": total, "scope": scope},
        reason=note,
    )
    return job


def _registry() -> ModuleType:
    """The registry of case actions. It calls the services above, so it is imported on use."""
    from exceptions import actions

    return actions


def bulk_job_run_chunk(*, job_id: int, size: int | None = None) -> bool:
    """Work through the next chunk of a job in one transaction; True while items remain.

    Items are claimed with SKIP LOCKED, so two workers on the same job take different chunks,
    and a chunk whose worker dies rolls back to pending for the message's redelivery. A case
    that changed meanwhile, or that the action does not apply to, is skipped with the reason.
    """
    size = size or BULK_CHUNK_SIZE
    now = timezone.now()
    BulkJob.objects.filter(pk=job_id, state=BulkJobState.QUEUED).update(
        state=BulkJobState.RUNNING, started_at=now
    )
    registry = _registry()
    with transaction.atomic():
        job = BulkJob.objects.select_related("created_by").get(pk=job_id)
        items = list(
            BulkJobItem.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(job_id=job_id, state=BulkItemState.PENDING)
            .select_related("case__reason", "case__owner_team", "case__owner_user")
            .order_by("id")[:size]
        )
        counts = {state: 0 for state in BulkItemState.values}
        for item in items:
            try:
                with transaction.atomic():
                    registry.bulk_apply(case=item.case, job=job)
                item.state, item.message = BulkItemState.SUCCEEDED, ""
            except (CaseConflict, CaseActionRefused) as exc:
                item.state, item.message = BulkItemState.SKIPPED, str(exc)
            except Exception as exc:  # one bad case must not stop the other thousands
                item.state = BulkItemState.FAILED
                item.message = f"{type(exc).__name__}: {exc}"[:2000]
            counts[item.state] += 1
        BulkJobItem.objects.bulk_update(items, ["state", "message"])
        BulkJob.objects.filter(pk=job_id).update(
            progressed_at=timezone.now(),
            done=F("done") + len(items),
            succeeded=F("succeeded") + counts[BulkItemState.SUCCEEDED],
            skipped=F("skipped") + counts[BulkItemState.SKIPPED],
            failed=F("failed") + counts[BulkItemState.FAILED],
        )
    # Checked after the chunk committed, against committed counters: whichever worker commits
    # the last chunk sees done == total, and the conditional update lets only one finish it.
    BulkJob.objects.filter(pk=job_id, done__gte=F("total")).exclude(state=BulkJobState.DONE).update(
        state=BulkJobState.DONE, finished_at=timezone.now()
    )
    # Nothing claimable means another worker holds the rest: its chain finishes the job.
    return (
        bool(items)
        and BulkJobItem.objects.filter(job_id=job_id, state=BulkItemState.PENDING).exists()
    )


def bulk_job_run_inline(*, job: BulkJob) -> BulkJob:
    """Run a small job to the end inside the request."""
    while bulk_job_run_chunk(job_id=job.pk):
        pass
    return BulkJob.objects.get(pk=job.pk)
