"""Who owned a workflow, an event or a case at a moment: the one selector, from history alone.

A workflow's answer is its ownership row in force then; an event's is the route decision the
engine had recorded by then (or, before routing, its workflow's owner); a case's comes from its
audit trail, whose entries keep the owner before and after every change. Each answer names the
rule it came through and who was on the team at that moment, as their memberships say.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from audit.models import AuditEntry
from exceptions.models import ExceptionCase
from workflows.models import Decision, Event, Workflow
from workflows.owners import USER_PREFIX, owner_ref
from workflows.ownership import (
    OwnerAt,
    TeamThen,
    event_owner_at,
    route_owner_at,
    team_then,
    workflow_owner_at,
)

CASE_TYPE = "exceptions.exceptioncase"
_OWNER_KEYS = ("owner_team", "owner_user")


def owner_at(
    *,
    at: datetime,
    workflow: Workflow | None = None,
    event: Event | None = None,
    case: ExceptionCase | None = None,
) -> OwnerAt:
    """Who owned the one thing named (a workflow, an event or a case) at `at`."""
    named = [thing for thing in (workflow, event, case) if thing is not None]
    if len(named) != 1:
        raise TypeError("owner_at answers for exactly one workflow, event or case")
    if case is not None:
        return case_owner_at(case=case, at=at)
    if event is not None:
        return event_owner_at(event=event, at=at)
    assert workflow is not None  # one of the three was given
    return workflow_owner_at(workflow=workflow, at=at)


def _owner_changes(case: ExceptionCase) -> list[AuditEntry]:
    """The case's audit entries that say who owned it before and after."""
    entries = AuditEntry.objects.filter(object_type=CASE_TYPE, object_id=str(case.pk)).order_by(
        "created_at", "id"
    )
    return [e for e in entries if isinstance(e.after, dict) and "owner_team" in e.after]


def _case_owner(
    case: ExceptionCase, snapshot: Any, at: datetime, through: str, rule: dict[str, Any]
) -> OwnerAt:
    snapshot = snapshot if isinstance(snapshot, dict) else {}
    team_slug = snapshot.get("owner_team") or ""
    person = snapshot.get("owner_user") or ""
    team: TeamThen | None = team_then(team_slug, at) if team_slug else None
    return OwnerAt(
        subject=f"case {case.pk}",
        at=at,
        owner=team_slug or (USER_PREFIX + person if person else ""),
        through=through,
        rule=rule,
        team=team,
        person=person,
    )


def _now_snapshot(case: ExceptionCase) -> dict[str, Any]:
    return {
        "owner_team": case.owner_team.slug if case.owner_team is not None else None,
        "owner_user": case.owner_user.get_username() if case.owner_user is not None else None,
    }


def case_owner_at(*, case: ExceptionCase, at: datetime) -> OwnerAt:
    """The case's owner at `at`: as the last owner change by then left it, or as the case
    opened (the owner before the first change, or today's when nobody has changed it)."""
    if at < case.opened_at:
        return OwnerAt(
            subject=f"case {case.pk}", at=at, owner="", through="the case was not open yet", rule={}
        )
    changes = _owner_changes(case)
    done = [e for e in changes if e.created_at <= at]
    if done:
        entry = done[-1]
        note = f": “{entry.reason}”" if entry.reason else ""
        return _case_owner(
            case,
            entry.after,
            at,
            f"{entry.action.removeprefix('case.')} by {entry.actor_label} "
            f"on {entry.created_at:%Y-%m-%d %H:%M} UTC{note}",
            {"kind": "audit", "entry": entry.pk, "action": entry.action},
        )
    opening = changes[0].before if changes else _now_snapshot(case)
    return _case_owner(case, opening, at, _opening_words(case), {"kind": "opened", "case": case.pk})


def _opening_words(case: ExceptionCase) -> str:
    route = (
        Decision.objects.filter(
            event_id=case.event_id, step="route", created_at__lte=case.opened_at
        )
        .order_by("-created_at", "-id")
        .first()
    )
    if route is not None and route.ok:
        return f"given to it when the case opened, as routed: {route.explanation}"
    return "given to it when the case opened: the owner the engine named (the workflow's owner)"


# --- owners beside each decision, for the case and event pages ------------------------------


@dataclass(frozen=True)
class DecisionOwner:
    """Who owned the event when a decision was made, and whether that is still so."""

    decision: Decision
    then: OwnerAt
    same_as_today: bool


def owners_by_decision(
    *, event: Event, decisions: list[Decision], today: str, limit: int = 30
) -> list[DecisionOwner]:
    """For each decision (the first `limit`), the event's owner at that moment."""
    rows = []
    routed: OwnerAt | None = None
    for decision in decisions[:limit]:
        if decision.step == "route":
            routed = route_owner_at(decision, subject=f"event {event.pk}", at=decision.created_at)
            then = routed
        elif routed is not None:
            then = _still(routed, decision.created_at)
        else:
            then = event_owner_at(event=event, at=decision.created_at)
        rows.append(DecisionOwner(decision, then, same_as_today=then.owner == today))
    return rows


def _still(routed: OwnerAt, at: datetime) -> OwnerAt:
    """The routed owner at a later decision: the same owner, its team as it stood then."""
    team = team_then(routed.team.slug, at) if routed.team is not None else None
    return OwnerAt(
        subject=routed.subject,
        at=at,
        owner=routed.owner,
        through=routed.through,
        rule=routed.rule,
        team=team,
        person=routed.person,
    )


def owner_panel(
    *, event: Event, decisions: list[Decision], now: datetime, case: ExceptionCase | None = None
) -> dict[str, Any]:
    """What the "owner then and now" panel of the case and event pages shows: on a case page,
    each decision's owner is set beside the case's owner today; on an event page, the event's."""
    event_today = owner_ref(event.owner_user or event.owner_team)
    today = event_today
    context: dict[str, Any] = {
        "event_owner_today": event_today,
        "event_team_today": (
            team_then(event.owner_team.slug, now) if event.owner_team is not None else None
        ),
    }
    if case is not None:
        case_today = _case_owner(case, _now_snapshot(case), now, "today", {"kind": "now"})
        context["case_owner_opened"] = case_owner_at(case=case, at=case.opened_at)
        context["case_owner_today"] = case_today
        today = case_today.owner
    context["owner_today"] = today
    if case is not None:
        context["case_owner_changes"] = [
            (entry, _case_owner(case, entry.after, entry.created_at, "", {}))
            for entry in _owner_changes(case)
        ]
    context["owners_then"] = owners_by_decision(event=event, decisions=decisions, today=today)
    return context
