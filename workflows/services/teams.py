"""Writes of teams and memberships, each audited in its own transaction.

Nothing is overwritten: a membership ends (valid_to) and a new one starts; a team that stops
taking work is deactivated with the time it stopped, so "who was on team X, in which role, at T"
and "did team X take work at T" stay queries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from workflows.models import Membership, Team


class OwnersRefused(ValueError):
    """A change to teams, memberships or ownership that cannot be made, and why."""


def _clean(obj: Team | Membership) -> None:
    try:
        obj.full_clean()
    except ValidationError as exc:
        messages = [m for errors in exc.message_dict.values() for m in errors]
        raise OwnersRefused(" ".join(messages)) from exc


@transaction.atomic
def team_create(*, slug: str, name: str, actor: Any, reason: str = "") -> Team:
    team = Team(slug=slug, name=name.strip())
    _clean(team)
    team.save()
    audit_record(
        actor=actor,
        action="team.create",
        target=team,
        after={"slug": slug, "name": team.name},
        reason=reason,
    )
    return team


@transaction.atomic
def team_rename(*, team: Team, name: str, actor: Any, reason: str = "") -> Team:
    """A team's name changes; its slug, which definitions and history name it by, does not."""
    team = Team.objects.select_for_update().get(pk=team.pk)
    before = team.name
    team.name = name.strip()
    if team.name == before:
        raise OwnersRefused(f"The team is already called {before!r}.")
    _clean(team)
    team.save(update_fields=["name"])
    audit_record(
        actor=actor,
        action="team.rename",
        target=team,
        before={"name": before},
        after={"name": team.name},
        reason=reason,
    )
    return team


@transaction.atomic
def team_deactivate(*, team: Team, actor: Any, reason: str) -> Team:
    """The team stops taking work: routing passes it over for the next in the fallback chain.

    Its memberships are kept as they are (history), and its open cases stay with it until
    someone reassigns them; the ownership-gaps radar lists both.
    """
    if not reason.strip():
        raise OwnersRefused("Say why the team is deactivated.")
    team = Team.objects.select_for_update().get(pk=team.pk)
    if not team.active:
        raise OwnersRefused(f"Team {team.slug} is already inactive.")
    team.active = False
    team.deactivated_at = timezone.now()
    team.save(update_fields=["active", "deactivated_at"])
    audit_record(
        actor=actor,
        action="team.deactivate",
        target=team,
        before={"active": True},
        after={"active": False, "deactivated_at": team.deactivated_at},
        reason=reason,
    )
    return team


@transaction.atomic
def membership_start(
    *, user: Any, team: Team, role: str, actor: Any, reason: str = ""
) -> Membership:
    """Put a person on a team; an open membership on the same team in another role is ended
    first (a change of role is an end and a start). The same role again changes nothing."""
    if not user.is_active:
        raise OwnersRefused(f"{user.get_username()} is deactivated: they cannot join a team.")
    if not team.active:
        raise OwnersRefused(f"Team {team.slug} is inactive: nobody can join it.")
    if role not in dict(Membership.ROLE_CHOICES):
        raise OwnersRefused(f"{role!r} is not a membership role (member or lead).")
    now = timezone.now()
    current = (
        Membership.objects.select_for_update()
        .filter(user=user, team=team, valid_to__isnull=True)
        .first()
    )
    if current is not None:
        if current.role == role:
            return current
        membership_end(membership=current, actor=actor, at=now, reason=reason)
    membership = Membership(user=user, team=team, role=role, valid_from=now)
    _clean(membership)
    membership.save()
    audit_record(
        actor=actor,
        action="membership.start",
        target=membership,
        after={"user": user.get_username(), "team": team.slug, "role": role},
        reason=reason,
    )
    return membership


@transaction.atomic
def membership_end(
    *, membership: Membership, actor: Any, at: datetime | None = None, reason: str = ""
) -> Membership:
    membership = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("user", "team")
        .get(pk=membership.pk)
    )
    if membership.valid_to is not None:
        raise OwnersRefused("This membership has already ended.")
    membership.valid_to = at or timezone.now()
    membership.save(update_fields=["valid_to"])
    audit_record(
        actor=actor,
        action="membership.end",
        target=membership,
        before={
            "user": membership.user.get_username(),
            "team": membership.team.slug,
            "role": membership.role,
        },
        after={"valid_to": membership.valid_to},
        reason=reason,
    )
    return membership


@transaction.atomic
def membership_change_role(
    *, membership: Membership, role: str, actor: Any, reason: str = ""
) -> Membership:
    """End the membership and start one in the new role: the old role stays on the record."""
    if membership.valid_to is not None:
        raise OwnersRefused("This membership has ended: start a new one instead.")
    if membership.role == role:
        raise OwnersRefused(f"{membership.user.get_username()} is already a {role} of the team.")
    return membership_start(
        user=membership.user, team=membership.team, role=role, actor=actor, reason=reason
    )
