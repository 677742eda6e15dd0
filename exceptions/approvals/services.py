"""Every write to approval requests: asking, editing, approving, rejecting, expiring.

An approval is bound to what was asked: the hash of what the action acts on, the workflow
version it runs under and the request's own version. Approving re-checks all three against
what the approver was shown and against the world now; any difference refuses the approval
and says what changed. An approved request runs at once, in the same transaction (a bulk one
as a bulk job), with the approval id on every audit entry it leaves.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from audit.actors import actor_for_user
from audit.canonical import canonical_hash
from audit.services import audit_record
from exceptions import services as case_services
from exceptions.approvals.binding import (
    Seen,
    ownership_lines,
    subject,
    version_now,
    what_changed,
)
from exceptions.approvals.execution import approval_execute, carrying_out
from exceptions.approvals.models import ApprovalKind, ApprovalRequest, ApprovalState
from exceptions.models import ExceptionCase
from workflows import four_eyes
from workflows.models import Event, Workflow
from workflows.services.teams import OwnersRefused

OBJECT_TYPE = "approval_request"
DECIDE = "exceptions.decide_approvalrequest"


class ApprovalRefused(ValueError):
    """The request cannot be asked, edited or decided as it stands; nothing changed."""


class ApprovalForbidden(ApprovalRefused):
    """This person may not decide this request (their own, or not in the required role)."""


class ApprovalStale(ApprovalRefused):
    """What the approver saw is not what would run now; says what changed.

    The refusal itself is on the trail. When the world moved on (the workflow's version, the
    thing acted on), the request is closed as refused; when only the request was edited since
    the approver looked, it stays pending for them to look again.
    """

    def __init__(self, approval: ApprovalRequest, what_changed: list[str]) -> None:
        self.approval = approval
        self.what_changed = what_changed
        super().__init__(
            f"Approval of request #{approval.pk} refused: it changed since it was shown to you. "
            + " ".join(what_changed)
        )


def _snapshot(approval: ApprovalRequest) -> dict[str, Any]:
    return {
        "kind": approval.kind,
        "state": approval.state,
        "version": approval.version,
        "payload_hash": approval.payload_hash,
        "workflow_version": approval.workflow_version.number if approval.workflow_version else None,
        "required_role": approval.required_role,
        "event": approval.event_id,
        "case": approval.case_id,
    }


def _audit(
    approval: ApprovalRequest,
    *,
    actor: Any,
    action: str,
    before: Any = None,
    after: Any = None,
    reason: str = "",
) -> None:
    audit_record(
        actor=actor,
        action=action,
        object_type=OBJECT_TYPE,
        object_id=str(approval.pk),
        before=before,
        after=after,
        reason=reason,
        approval_id=approval.pk,
        workflow=approval.workflow.slug if approval.workflow is not None else "",
    )


# --- asking -----------------------------------------------------------------------------------


@transaction.atomic
def approval_request_create(
    *,
    kind: str,
    actor: Any,
    reason: str,
    params: dict[str, Any],
    event: Event | None = None,
    case: ExceptionCase | None = None,
    workflow: Workflow | None = None,
) -> ApprovalRequest:
    """Ask for a second person's approval of a risky action; it waits until decided or expired."""
    if kind not in ApprovalKind.values:
        raise ApprovalRefused(f"{kind!r} is not a kind of approval.")
    if not reason.strip():
        raise ApprovalRefused("Say why in the note: the approver decides on your reason.")
    if case is not None:
        event = case.event
    if event is not None and workflow is None:
        workflow = event.workflow
    now = timezone.now()
    approval = ApprovalRequest(
        kind=kind,
        requested_by=actor,
        requested_at=now,
        reason=reason.strip(),
        required_role=settings.HANDOFF_APPROVAL_ROLES.get(kind, "manager"),
        event=event,
        case=case,
        workflow=workflow,
        params=params,
        expires_at=now + timedelta(hours=settings.HANDOFF_APPROVAL_TTL_HOURS),
    )
    approval.payload_hash = canonical_hash(subject(approval))
    approval.workflow_version = version_now(approval)
    approval.save()
    _audit(
        approval, actor=actor, action="approval.request", after=_snapshot(approval), reason=reason
    )
    return approval


def approval_for_case_action(
    *,
    required: four_eyes.ApprovalRequired,
    case: ExceptionCase,
    actor: Any,
    action: str,
    params: dict[str, Any],
    note: str,
) -> ApprovalRequest:
    """The request a case action (a replay) asked for when the engine said it needs one.

    It keeps the action's registry name and arguments, and runs them as they are once approved.
    """
    return approval_request_create(
        kind=required.kind,
        actor=actor,
        reason=note,
        params={
            "action": action,
            "params": params,
            "run_version": params.get("version", "original"),
        },
        case=case,
    )


def approval_for_event_replay(
    *, required: four_eyes.ApprovalRequired, event: Event, actor: Any, run_version: str, note: str
) -> ApprovalRequest:
    """The request a replay from the event's own page asked for."""
    return approval_request_create(
        kind=required.kind,
        actor=actor,
        reason=note,
        params={"run_version": run_version},
        event=event,
    )


def approval_for_bulk(
    *,
    required: four_eyes.ApprovalRequired,
    actor: Any,
    action: str,
    params: dict[str, Any],
    note: str,
    cases: QuerySet[ExceptionCase],
    scope: str,
) -> ApprovalRequest:
    """The request a large bulk replay or dismiss asked for: the list of cases is fixed now."""
    ids = sorted(set(cases.order_by().values_list("id", flat=True)))
    return approval_request_create(
        kind=required.kind,
        actor=actor,
        reason=note,
        params={"action": action, "params": params, "cases": ids, "scope": scope},
    )


def approval_for_ownership(
    *,
    required: four_eyes.ApprovalRequired,
    workflow: Workflow,
    actor: Any,
    owner: str,
    fallback_owners: list[str],
    reason: str,
) -> ApprovalRequest:
    """The request a change of a workflow's owners asked for; the before is bound too."""
    after = {"owner": owner, "fallback_owners": [slug for slug in fallback_owners if slug]}
    return approval_request_create(
        kind=required.kind,
        actor=actor,
        reason=reason,
        params={"before": ownership_lines(workflow), "after": after},
        workflow=workflow,
    )


def _locked(approval: ApprovalRequest) -> ApprovalRequest:
    return (
        ApprovalRequest.objects.select_for_update(of=("self",))
        .select_related("event", "case", "workflow", "workflow_version", "requested_by")
        .get(pk=approval.pk)
    )


@transaction.atomic
def approval_request_edit(
    *,
    approval: ApprovalRequest,
    actor: Any,
    version: int,
    reason: str,
    payload: dict[str, Any] | None = None,
) -> ApprovalRequest:
    """The requester changes their pending request (its reason, an edited replay's payload).

    Its version goes up, so an approval given to what was shown before is refused.
    """
    locked = _locked(approval)
    if locked.requested_by_id != getattr(actor, "pk", None):
        raise ApprovalForbidden("Only the person who asked can change the request.")
    if not locked.is_pending:
        raise ApprovalRefused(f"Request #{locked.pk} is {locked.state}: it cannot change now.")
    if version != locked.version:
        raise ApprovalRefused(
            f"Request #{locked.pk} is at version {locked.version}, not {version}: reload it."
        )
    if not reason.strip():
        raise ApprovalRefused("Say why in the note: the approver decides on your reason.")
    if payload is not None and locked.kind != ApprovalKind.EDITED_REPLAY:
        raise ApprovalRefused("Only an edited replay's payload can be changed.")
    before = {**_snapshot(locked), "reason": locked.reason, **_payload_of(locked)}
    if payload is not None:
        locked.params = {**locked.params, "params": {**locked.params["params"], "payload": payload}}
    locked.reason = reason.strip()
    locked.version += 1
    locked.payload_hash = canonical_hash(subject(locked))
    locked.save(update_fields=["params", "reason", "version", "payload_hash", "updated_at"])
    after = {**_snapshot(locked), "reason": locked.reason, **_payload_of(locked)}
    _audit(locked, actor=actor, action="approval.edit", before=before, after=after, reason=reason)
    return locked


def _payload_of(approval: ApprovalRequest) -> dict[str, Any]:
    if approval.kind == ApprovalKind.EDITED_REPLAY:
        return {"payload": approval.params["params"]["payload"]}
    return {}


# --- deciding ---------------------------------------------------------------------------------


def may_decide(approval: ApprovalRequest, user: Any) -> str:
    """Why this person may not decide the request ("" if they may)."""
    if approval.requested_by_id == user.pk:
        return "You asked for this: someone else must decide it."
    if not user.has_perm(DECIDE):
        return "Your role cannot approve or reject requests."
    if not four_eyes.holds_role(user, approval.required_role):
        return f"Only a {approval.required_role} may decide this request."
    return ""


def _require_decider(approval: ApprovalRequest, actor: Any, now: datetime) -> None:
    refusal = may_decide(approval, actor)
    if refusal:
        raise ApprovalForbidden(refusal)
    if not approval.is_pending:
        raise ApprovalRefused(
            f"Request #{approval.pk} is already {approval.get_state_display().lower()}."
        )
    if approval.is_expired(now):
        raise ApprovalRefused(f"Request #{approval.pk} expired: ask again if it is still needed.")


_DECISION_ACTIONS: dict[str, str] = {
    ApprovalState.APPROVED: "approval.approve",
    ApprovalState.REJECTED: "approval.reject",
}


def _decide(
    approval: ApprovalRequest, *, state: str, actor: Any, comment: str, now: datetime
) -> None:
    """Record the decision with the decider's roles as they are now; an approval or a
    rejection goes on the trail here (a refusal says more, where it is made)."""
    before = _snapshot(approval)
    approval.state = state
    approval.decided_by = actor
    approval.decided_at = now
    approval.decider_roles = list(actor_for_user(actor, now).roles)
    approval.comment = comment.strip()
    approval.save(
        update_fields=[
            "state",
            "decided_by",
            "decided_at",
            "decider_roles",
            "comment",
            "updated_at",
        ]
    )
    if state in _DECISION_ACTIONS:
        _audit(
            approval,
            actor=actor,
            action=_DECISION_ACTIONS[state],
            before=before,
            after={**_snapshot(approval), "decider_roles": approval.decider_roles},
            reason=comment,
        )


def approval_approve(
    *, approval: ApprovalRequest, actor: Any, seen: Seen, comment: str = ""
) -> ApprovalRequest:
    """Approve and run the request, if it is still exactly what the approver was shown.

    Raises ApprovalForbidden (the requester, or not the required role), ApprovalRefused (no
    longer pending, expired, or the action itself was refused now) or ApprovalStale (what
    changed); a stale or refused approval is still on the trail.
    """
    refusal: ApprovalRefused
    with transaction.atomic():
        now = timezone.now()
        locked = _locked(approval)
        _require_decider(locked, actor, now)
        changed, world_moved = what_changed(locked, seen)
        if not changed:
            _decide(locked, state=ApprovalState.APPROVED, actor=actor, comment=comment, now=now)
            try:
                with transaction.atomic(), carrying_out(locked):
                    result = approval_execute(locked)
            except (
                case_services.CaseActionRefused,
                case_services.CaseConflict,
                OwnersRefused,
                four_eyes.ApprovalRequired,
            ) as exc:
                said = f"Approved, but it could not run: {exc}"
                _close_refused(locked, actor=actor, comment=comment, why=[said], now=now)
                refusal = ApprovalRefused(said)
            else:
                locked.state = ApprovalState.EXECUTED
                locked.result = result
                locked.save(update_fields=["state", "result", "updated_at"])
                _audit(
                    locked,
                    actor=actor,
                    action="approval.execute",
                    after={"state": locked.state, **result},
                )
                return locked
        elif world_moved:
            _close_refused(locked, actor=actor, comment=comment, why=changed, now=now)
            refusal = ApprovalStale(locked, changed)
        else:
            # Only the approver's view is old: the trail keeps the attempt; the request waits.
            _audit(
                locked,
                actor=actor,
                action="approval.refuse",
                before={"version": seen.version, "payload_hash": seen.payload_hash},
                after={**_snapshot(locked), "what_changed": changed},
                reason=" ".join(changed),
            )
            refusal = ApprovalStale(locked, changed)
    raise refusal


def _close_refused(
    approval: ApprovalRequest, *, actor: Any, comment: str, why: list[str], now: datetime
) -> None:
    before = _snapshot(approval)
    _decide(approval, state=ApprovalState.REFUSED, actor=actor, comment=comment, now=now)
    approval.result = {"refused": why}
    approval.save(update_fields=["result", "updated_at"])
    _audit(
        approval,
        actor=actor,
        action="approval.refuse",
        before=before,
        after={**_snapshot(approval), "what_changed": why},
        reason=" ".join(why),
    )


@transaction.atomic
def approval_reject(
    *, approval: ApprovalRequest, actor: Any, version: int, comment: str
) -> ApprovalRequest:
    """Reject the request with a comment saying why; it never runs and stays on the trail."""
    now = timezone.now()
    locked = _locked(approval)
    _require_decider(locked, actor, now)
    if not comment.strip():
        raise ApprovalRefused("Say why you reject it: a comment is required.")
    if version != locked.version:
        raise ApprovalStale(
            locked,
            [f"The request was edited: you saw version {version}, it is now at {locked.version}."],
        )
    _decide(locked, state=ApprovalState.REJECTED, actor=actor, comment=comment, now=now)
    return locked


@transaction.atomic
def approvals_expire(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Requests nobody decided in time: expired, on the trail, never run."""
    now = now or timezone.now()
    due = (
        ApprovalRequest.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(state=ApprovalState.PENDING, expires_at__lte=now)
        .select_related("workflow", "workflow_version")
        .order_by("expires_at", "id")[:limit]
    )
    expired = 0
    for approval in due:
        before = _snapshot(approval)
        approval.state = ApprovalState.EXPIRED
        approval.save(update_fields=["state", "updated_at"])
        _audit(
            approval,
            actor=None,
            action="approval.expire",
            before=before,
            after=_snapshot(approval),
            reason=f"nobody decided within {settings.HANDOFF_APPROVAL_TTL_HOURS} hours",
        )
        expired += 1
    return expired
