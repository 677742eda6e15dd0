"""Reads of owners, workflows and events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from workflows.models import Decision, Membership, ShapeDrift, Step


def memberships_at(user: Any, at: datetime) -> list[dict[str, Any]]:
    """The user's team memberships in force at `at`, as the audit trail freezes them."""
    rows = (
        Membership.objects.filter(user=user, valid_from__lte=at)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=at))
        .select_related("team")
        .order_by("team__slug")
    )
    return [{"team": m.team.slug, "role": m.role} for m in rows]


def active_members(*, team_id: int, at: datetime) -> QuerySet[Membership]:
    """Memberships of active people on the team at `at`."""
    return (
        Membership.objects.filter(team_id=team_id, valid_from__lte=at, user__is_active=True)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=at))
        .select_related("user")
    )


def event_shape_drift(event_id: int) -> list[dict[str, str]]:
    """How the event's payload departed from its workflow's usual shape (empty if it did not)."""
    changes = ShapeDrift.objects.filter(event_id=event_id).values_list("changes", flat=True)
    return list(changes.first() or [])


def review_approver_role(*, event_id: int) -> str:
    """The role the review gate that last held the event names as its approver ("": anyone).

    Read from the engine's own decision, so it is the rule of the version that held the event.
    """
    decision = (
        Decision.objects.filter(event_id=event_id, step=Step.REVIEW, result__hold=True)
        .order_by("-id")
        .only("result")
        .first()
    )
    if decision is None or not isinstance(decision.result, dict):
        return ""
    return str(decision.result.get("approver_role") or "")
