"""Reads for the owners pages: teams, people and workflows with their open work and SLA standing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Min, Q, QuerySet

from exceptions.models import OPEN_STATES, SLA_SORT_KEY, ExceptionCase
from workflows.models import Membership, Team
from workflows.owners import USER_PREFIX
from workflows.ownership import WorkflowLines, ownerships_now

OPEN_CASE_LIMIT = 12


@dataclass(frozen=True)
class Standing:
    """Open cases and how they stand against their SLA."""

    open: int = 0
    breached: int = 0
    unassigned: int = 0
    acknowledged: int = 0
    oldest: datetime | None = None


def _standing(rows: QuerySet[ExceptionCase], by: str, now: datetime) -> dict[Any, Standing]:
    counted = (
        rows.filter(state__in=OPEN_STATES)
        .order_by()
        .values(by)
        .annotate(
            n=Count("id"),
            breached=Count("id", filter=Q(sla_due_at__lt=now)),
            unassigned=Count("id", filter=Q(owner_user__isnull=True)),
            acknowledged=Count("id", filter=Q(state="acknowledged")),
            oldest=Min("opened_at"),
        )
    )
    return {
        row[by]: Standing(
            row["n"], row["breached"], row["unassigned"], row["acknowledged"], row["oldest"]
        )
        for row in counted
    }


def standing_by_team(now: datetime) -> dict[int | None, Standing]:
    return _standing(ExceptionCase.objects.all(), "owner_team", now)


def standing_by_person(now: datetime) -> dict[int | None, Standing]:
    return _standing(ExceptionCase.objects.all(), "owner_user", now)


def memberships_now(now: datetime) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(valid_from__lte=now)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=now))
        .select_related("user", "team")
        .order_by("team__slug", "-role", "user__username")
    )


@dataclass
class TeamRow:
    team: Team
    members: list[Membership] = field(default_factory=list)
    owns: list[WorkflowLines] = field(default_factory=list)
    backs_up: list[tuple[WorkflowLines, int]] = field(default_factory=list)
    standing: Standing = field(default_factory=Standing)

    @property
    def leads(self) -> list[Membership]:
        return [m for m in self.members if m.role == Membership.LEAD]

    @property
    def active_members(self) -> list[Membership]:
        return [m for m in self.members if m.user.is_active]


def team_rows(now: datetime) -> list[TeamRow]:
    """Every team with its people now, the workflows it owns or backs up, and its open work."""
    rows = {team.pk: TeamRow(team) for team in Team.objects.order_by("-active", "name")}
    by_slug = {row.team.slug: row for row in rows.values()}
    for membership in memberships_now(now):
        rows[membership.team_id].members.append(membership)
    for owned in ownerships_now(at=now):
        if owned.lines.owner in by_slug:
            by_slug[owned.lines.owner].owns.append(owned)
        for position, slug in enumerate(owned.lines.fallback_owners, start=1):
            if slug in by_slug:
                by_slug[slug].backs_up.append((owned, position))
    standing = standing_by_team(now)
    for row in rows.values():
        row.standing = standing.get(row.team.pk, Standing())
    return list(rows.values())


@dataclass
class PersonRow:
    person: Any
    memberships: list[Membership] = field(default_factory=list)
    standing: Standing = field(default_factory=Standing)


def people_rows(now: datetime) -> list[PersonRow]:
    """Everyone who is or was on a team, or holds open cases, with their teams now."""
    standing = standing_by_person(now)
    on_teams = Membership.objects.values("user_id")
    people = (
        get_user_model()
        .objects.filter(Q(pk__in=on_teams) | Q(pk__in=[k for k in standing if k is not None]))
        .order_by("-is_active", "username")
    )
    rows = {
        person.pk: PersonRow(person, standing=standing.get(person.pk, Standing()))
        for person in people
    }
    for membership in memberships_now(now):
        if membership.user_id in rows:
            rows[membership.user_id].memberships.append(membership)
    return list(rows.values())


def open_cases(**owner: Any) -> QuerySet[ExceptionCase]:
    """The open cases of a team (owner_team=) or a person (owner_user=), most urgent first."""
    return (
        ExceptionCase.objects.filter(state__in=OPEN_STATES, **owner)
        .select_related("workflow", "reason", "owner_team", "owner_user")
        .defer("search", "resolution_note")
        .alias(sla_key=SLA_SORT_KEY)
        .order_by("sla_key", "id")
    )


@dataclass
class TeamPage:
    row: TeamRow
    history: list[Membership]
    cases: list[ExceptionCase]


def team_page(*, team: Team, now: datetime) -> TeamPage:
    row = next(r for r in team_rows(now) if r.team.pk == team.pk)
    history = list(
        Membership.objects.filter(team=team).select_related("user").order_by("-valid_from", "-id")
    )
    cases = list(open_cases(owner_team=team)[:OPEN_CASE_LIMIT])
    return TeamPage(row=row, history=history, cases=cases)


@dataclass
class PersonPage:
    person: Any
    history: list[Membership]
    current: list[Membership]
    cases: list[ExceptionCase]
    standing: Standing
    owns: list[WorkflowLines]  # workflows owned by a team the person is on now
    named_in: list[WorkflowLines]  # workflows whose current version routes to the person


def person_page(*, person: Any, now: datetime) -> PersonPage:
    history = list(
        Membership.objects.filter(user=person).select_related("team").order_by("-valid_from")
    )
    current = [
        m for m in history if m.valid_from <= now and (m.valid_to is None or m.valid_to > now)
    ]
    teams_now = {m.team.slug for m in current}
    owned = ownerships_now(at=now)
    ref = USER_PREFIX + person.get_username()
    return PersonPage(
        person=person,
        history=history,
        current=current,
        cases=list(open_cases(owner_user=person)[:OPEN_CASE_LIMIT]),
        standing=standing_by_person(now).get(person.pk, Standing()),
        owns=[w for w in owned if w.lines.owner in teams_now],
        named_in=[w for w in owned if _routes_to(w, ref)],
    )


def _routes_to(owned: WorkflowLines, ref: str) -> bool:
    version = owned.workflow.current_version
    routes = version.definition.get("routes", []) if version is not None else []
    return any(route.get("owner") == ref for route in routes)
