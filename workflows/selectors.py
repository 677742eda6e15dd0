"""Reads of owners, workflows and events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from workflows.models import Membership


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
