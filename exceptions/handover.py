"""A person leaves: they are deactivated, their memberships end, their open work is handed on.

Each open case goes to the case's team when someone active is left on it, else along the
workflow's fallback chain in force (the workflow's owner first when the case had no team), to
the first team that can take work. One audit entry per case, in the same transaction as the
deactivation, so the hand-over is all or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from exceptions.models import OPEN_STATES, ExceptionCase
from exceptions.services import case_assign
from workflows.models import Membership, Team
from workflows.ownership import owner_lines_at
from workflows.rules import compiled_version
from workflows.selectors import active_members
from workflows.services.teams import OwnersRefused, membership_end


@dataclass
class Handover:
    moved: int = 0
    unowned: int = 0  # cases for which no team could take the work
    to_teams: dict[str, int] = field(default_factory=dict)


@transaction.atomic
def person_deactivate(*, person: Any, actor: Any, reason: str) -> Handover:
    """Deactivate a person who leaves, end their memberships and hand on their open cases."""
    if not reason.strip():
        raise OwnersRefused("Say why the person is deactivated.")
    person = get_user_model().objects.select_for_update().get(pk=person.pk)
    if not person.is_active:
        raise OwnersRefused(f"{person.get_username()} is already deactivated.")
    if actor is not None and getattr(actor, "pk", None) == person.pk:
        raise OwnersRefused("Nobody deactivates themselves: ask another admin.")
    person.is_active = False
    person.save(update_fields=["is_active"])
    audit_record(
        actor=actor,
        action="user.deactivate",
        target=person,
        before={"is_active": True},
        after={"is_active": False},
        reason=reason,
    )
    return person_handover(person=person, actor=actor, reason=reason)


@transaction.atomic
def person_handover(*, person: Any, actor: Any, reason: str) -> Handover:
    """End a deactivated person's memberships and hand on each of their open cases.

    Also what Django's admin calls when someone unticks "active" there.
    """
    now = timezone.now()
    for membership in Membership.objects.filter(user=person, valid_to__isnull=True):
        membership_end(membership=membership, actor=actor, at=now, reason=f"left: {reason}")
    result = Handover()
    cases = (
        ExceptionCase.objects.select_for_update(of=("self",))
        .filter(owner_user=person, state__in=OPEN_STATES)
        .select_related("owner_team", "event__version", "reason")
        .order_by("id")
    )
    can_take: dict[str, Team | None] = {}
    note = f"Handed over: {person.get_username()} left ({reason})"
    for case in cases:
        team = _next_team(case, now, can_take)
        case_assign(
            case=case,
            actor=actor,
            team=team if team is not None else case.owner_team,
            user=None,
            version=case.version,
            note=note,
        )
        result.moved += 1
        if team is None:
            result.unowned += 1
        else:
            result.to_teams[team.slug] = result.to_teams.get(team.slug, 0) + 1
    return result


def _next_team(case: ExceptionCase, now: Any, can_take: dict[str, Team | None]) -> Team | None:
    """The first team, in hand-over order, with someone active on it now."""
    lines = owner_lines_at(
        workflow_id=case.workflow_id, compiled=compiled_version(case.event.version), at=now
    )
    first = [case.owner_team.slug] if case.owner_team is not None else [lines.owner]
    for slug in [*first, *lines.fallback_owners]:
        if slug not in can_take:
            team = Team.objects.filter(slug=slug, active=True).first()
            staffed = team is not None and active_members(team_id=team.pk, at=now).exists()
            can_take[slug] = team if staffed else None
        if can_take[slug] is not None:
            return can_take[slug]
    return None
