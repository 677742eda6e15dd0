"""Who acted in a case file and who approved, with the roles they held then and hold today.

"Then" is what each audit entry froze when it was written (the actor's groups and team
memberships at that moment), never today's groups read back: a manager who has since lost the
role is still shown as the manager who approved.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q

from audit.models import AuditEntry
from exceptions.case_file.owners import moment
from exceptions.case_file.records import CASE_TYPE, CaseFileRecords
from exceptions.models import Resolution
from exceptions.services.closing import REVIEW_REASON
from workflows.models import Membership

REVIEW_VERDICTS = (Resolution.APPROVED, Resolution.REJECTED)


def _today(user_ids: list[int], now: datetime) -> dict[int, dict[str, Any]]:
    """Each person's roles, memberships and whether they are active, as of now (3 queries)."""
    found: dict[int, dict[str, Any]] = {}
    for user in get_user_model().objects.filter(pk__in=user_ids).prefetch_related("groups"):
        roles = sorted(group.name for group in user.groups.all())
        if user.is_superuser:
            roles.append("superuser")
        found[user.pk] = {"roles": roles, "memberships": [], "active": user.is_active}
    memberships = (
        Membership.objects.filter(user_id__in=user_ids, valid_from__lte=now)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=now))
        .select_related("team")
        .order_by("team__slug")
    )
    for m in memberships:
        if m.user_id in found:
            found[m.user_id]["memberships"].append({"team": m.team.slug, "role": m.role})
    return found


def file_people(records: CaseFileRecords, *, now: datetime) -> list[dict[str, Any]]:
    """Everyone on the file's entries: each way they stood when they acted, and today."""
    people: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in records.audit.rows:
        person = people.setdefault(
            (entry.actor_kind, entry.actor_label),
            {
                "label": entry.actor_label,
                "kind": entry.actor_kind,
                "user_id": entry.actor_id,
                "then": [],
                "today": None,
            },
        )
        stood = {"roles": entry.actor_roles, "memberships": entry.actor_memberships}
        same = [s for s in person["then"] if s["roles"] == stood["roles"]]
        same = [s for s in same if s["memberships"] == stood["memberships"]]
        if same:
            same[0]["last_at"] = moment(entry.created_at)
            same[0]["entries"].append(entry.pk)
        else:
            at = moment(entry.created_at)
            person["then"].append({**stood, "first_at": at, "last_at": at, "entries": [entry.pk]})
    ids = [p["user_id"] for p in people.values() if p["user_id"] is not None]
    today = _today(ids, now)
    for person in people.values():
        if person["user_id"] is not None:
            person["today"] = today.get(person["user_id"])
    return sorted(people.values(), key=lambda p: (p["kind"], p["label"]))


def _gate(records: CaseFileRecords, event_id: int, before: datetime) -> tuple[str, str | None]:
    """The review rule that held the event (its last hold by `before`) and the role it named
    as approver, as the engine's decision recorded it."""
    holds = [
        d
        for d in records.decisions.rows
        if d.event_id == event_id
        and d.step == "review"
        and isinstance(d.result, dict)
        and d.result.get("hold")
        and d.created_at <= before
    ]
    if not holds:
        return "", None
    hold = holds[-1]
    return hold.rule, hold.result.get("approver_role") or None


def review_verdict(entry: AuditEntry) -> str:
    """ "approved" or "rejected" when the entry closed a review case so, else ""."""
    after = entry.after if isinstance(entry.after, dict) else {}
    code = after.get("resolution_code")
    if entry.action == "case.resolve" and code in REVIEW_VERDICTS:
        return str(code)
    return ""


# An approval request's decisions, as its entries name them.
REQUEST_VERDICTS = {"approval.approve": "approved", "approval.reject": "rejected"}
APPROVAL_TYPE = "approval_request"


def file_approvals(records: CaseFileRecords, people: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each review and each approval request a person approved or rejected: who, under which
    roles then (frozen on the entry) and today."""
    cases = {str(c.pk): c for c in records.cases.rows}
    today = {(p["kind"], p["label"]): p["today"] for p in people}
    found = []
    for entry in records.audit.rows:
        after = entry.after if isinstance(entry.after, dict) else {}
        if entry.object_type == APPROVAL_TYPE and entry.action in REQUEST_VERDICTS:
            verdict, kind = REQUEST_VERDICTS[entry.action], "request"
            case_id, event_id = after.get("case"), after.get("event")
            gate, role = "", after.get("required_role") or None
        else:
            case = cases.get(entry.object_id) if entry.object_type == CASE_TYPE else None
            verdict, kind = review_verdict(entry), "review"
            if not verdict or case is None or case.reason_id != REVIEW_REASON:
                continue
            case_id, event_id = case.pk, case.event_id
            gate, role = _gate(records, case.event_id, case.opened_at)
        found.append(
            {
                "kind": kind,
                "verdict": verdict,
                "case": case_id,
                "event": event_id,
                "entry": entry.pk,
                "seq": entry.seq,
                "at": moment(entry.created_at),
                "by": entry.actor_label,
                "roles_then": entry.actor_roles,
                "memberships_then": entry.actor_memberships,
                "roles_today": (today.get((entry.actor_kind, entry.actor_label)) or {}).get(
                    "roles"
                ),
                "note": entry.reason,
                "rule": gate,
                "approver_role": role,
                "role_held_then": role in entry.actor_roles if role else None,
                "approval_id": entry.approval_id,
            }
        )
    return found
