"""Opening cases, and the operators' actions that keep a case open: claim, assign, acknowledge,
snooze, comment.

Each action takes the case `version` the person was shown. The change is one conditional UPDATE
on that version: when two people act on the same case at once, exactly one matches, and the
other gets CaseConflict with the fresh case instead of silently overwriting the first.
"""

from __future__ import annotations

import copy
import hashlib
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from audit.services import EntryFields, audit_record, audit_record_many
from exceptions import notices
from exceptions.models import (
    OPEN_STATES,
    CaseState,
    Comment,
    ExceptionCase,
    ReasonCode,
    next_deadline,
)
from workflows.models import Event, Team
from workflows.rules import compiled_version

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


class CaseActionForbidden(CaseActionRefused):
    """This person may not take the action on this case (a review only a manager approves)."""


def case_fingerprint(*, workflow_slug: str, reason_code: str, step: str, key: str) -> str:
    """Cases with the same workflow, reason, step and error class (or missing field) group."""
    raw = "\x1f".join([workflow_slug, reason_code, step, key])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _sla(event: Event) -> tuple[timedelta | None, timedelta | None]:
    """The workflow version's SLA clocks, if it names them."""
    try:
        compiled = compiled_version(event.version)
    except Exception:
        # A version the engine can no longer compile is exactly when a processing_error case
        # must still open: the reason code's clocks apply.
        return None, None
    return compiled.acknowledge_within, compiled.resolve_within


@transaction.atomic
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


def case_change(
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


def cases_change_many(
    *,
    cases: list[ExceptionCase],
    actor: Any,
    action: str,
    note: str,
    changes: dict[str, Any],
    after_extra: dict[str, Any] | None = None,
) -> dict[int, CaseConflict | None]:
    """case_change of many cases, each at the version it was read at, in a handful of
    statements whatever their number: each case's id to None if it changed, or to its
    CaseConflict if someone changed it meanwhile. Call it inside a transaction: the cases stay
    locked from the check to the commit."""
    if not cases:
        return {}
    shown = {case.pk: case.version for case in cases}
    locked = dict(
        ExceptionCase.objects.select_for_update(of=("self",))
        .filter(pk__in=shown)
        .order_by("pk")
        .values_list("pk", "version")
    )
    current = {pk for pk, version in shown.items() if locked.get(pk) == version}
    ExceptionCase.objects.filter(pk__in=current).update(
        **changes, version=F("version") + 1, updated_at=timezone.now()
    )
    # Each case as the update left it, from the case read and the changes: the update set
    # exactly these, and the lock keeps everyone else out until the commit.
    entries: list[EntryFields] = []
    for case in cases:
        if case.pk not in current:
            continue
        before = _snapshot(case)
        changed = copy.copy(case)
        for name, value in changes.items():
            setattr(changed, name, value)
        changed.version = case.version + 1
        after = _snapshot(changed) | (after_extra or {})
        entries.append({"target": changed, "before": before, "after": after, "reason": note})
    audit_record_many(actor=actor, action=f"case.{action}", entries=entries)
    results: dict[int, CaseConflict | None] = dict.fromkeys(current)
    for pk in shown.keys() - current:
        results[pk] = CaseConflict(_fresh(pk))
    return results


def require_open(case: ExceptionCase, what: str, version: int | None) -> None:
    """The person saw the case as it is now, and it is still open."""
    # Staleness first: whoever acted on an old view gets the conflict and the fresh state,
    # not a refusal worded for the state someone else just put it in.
    if version is not None and version != case.version:
        raise CaseConflict(_fresh(case.pk))
    if not case.is_open:
        raise CaseActionRefused(
            f"Case {case.pk} is already {case.get_state_display().lower()}: it cannot be {what}."
        )


def require_note(case: ExceptionCase, note: str, what: str) -> None:
    if case.reason.note_required and not note.strip():
        raise CaseActionRefused(
            f"A note is required to {what} a {case.reason.label.lower()} case: say why."
        )


@transaction.atomic
def case_claim(
    *, case: ExceptionCase, actor: Any, version: int | None = None, note: str = ""
) -> ExceptionCase:
    """Make the actor the case's owner (the team stays)."""
    require_open(case, "claimed", version)
    return case_change(
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
    require_open(case, "assigned", version)
    changes: dict[str, Any] = {}
    if team is not _UNCHANGED:
        changes["owner_team"] = team
    if user is not _UNCHANGED:
        changes["owner_user"] = user
    if not changes:
        raise CaseActionRefused("Choose a team or a person to assign the case to.")
    before = _snapshot(case)
    fresh = case_change(
        case=case, actor=actor, version=version, action="assign", note=note, changes=changes
    )
    notices.case_assigned(case=fresh, actor=actor, before=before)
    return fresh


@transaction.atomic
def case_acknowledge(
    *, case: ExceptionCase, actor: Any, version: int | None = None, note: str = ""
) -> ExceptionCase:
    """Someone is on it: stops the acknowledge clock (the resolve clock keeps running)."""
    require_open(case, "acknowledged", version)
    if case.state == CaseState.ACKNOWLEDGED:
        raise CaseActionRefused(f"Case {case.pk} is already acknowledged.")
    acknowledged_at = case.acknowledged_at or timezone.now()
    return case_change(
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
    require_open(case, "snoozed", version)
    if until <= timezone.now():
        raise CaseActionRefused("Snooze until a time in the future.")
    return case_change(
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
