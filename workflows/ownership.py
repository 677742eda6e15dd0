"""Reads of workflow ownership over time: the lines in force, and who owned what at a moment.

Everything here is answered from history (ownership rows, memberships with their dates, team
deactivation times and the route decisions the engine recorded), never from how things are now,
so "who owned it then" does not change when people or teams change later.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Q

from workflows.models import (
    Decision,
    Event,
    Membership,
    OwnershipSource,
    Step,
    Team,
    Workflow,
    WorkflowOwnership,
)
from workflows.owners import owner_username
from workflows.rules import CompiledWorkflow

# No ownership row: the version's own definition names the owners.
FROM_VERSION = "version"


@dataclass(frozen=True)
class OwnerLines:
    """A workflow's owner team and fallback chain as routing reads them, and where from."""

    owner: str
    fallback_owners: tuple[str, ...]
    source: str  # "definition", "console", or FROM_VERSION when no row exists
    record_id: int | None = None
    set_by: str = ""
    reason: str = ""
    valid_from: datetime | None = None

    def lines_differ_from(self, compiled: CompiledWorkflow) -> bool:
        """Whether these are not what the version's own definition says."""
        return (self.owner, self.fallback_owners) != (compiled.owner, compiled.fallback_owners)

    def describe(self) -> str:
        """Where these lines come from, in words."""
        if self.source == OwnershipSource.CONSOLE:
            return f"set in the console by {self.set_by}" + (
                f": “{self.reason}”" if self.reason else ""
            )
        if self.source == OwnershipSource.DEFINITION:
            return "from its definition"
        return "from its version's definition"


def ownership_in_force(*, workflow_id: int, at: datetime) -> WorkflowOwnership | None:
    return (
        WorkflowOwnership.objects.filter(workflow_id=workflow_id, valid_from__lte=at)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=at))
        .order_by("-valid_from", "-id")
        .first()
    )


def lines_of(record: WorkflowOwnership) -> OwnerLines:
    return OwnerLines(
        owner=record.owner,
        fallback_owners=tuple(record.fallback_owners),
        source=record.source,
        record_id=record.pk,
        set_by=record.set_by,
        reason=record.reason,
        valid_from=record.valid_from,
    )


def owner_lines_at(*, workflow_id: int, compiled: CompiledWorkflow, at: datetime) -> OwnerLines:
    """The owner lines routing uses at `at`: the ownership row in force, else the version's."""
    record = ownership_in_force(workflow_id=workflow_id, at=at)
    if record is not None:
        return lines_of(record)
    return OwnerLines(
        owner=compiled.owner, fallback_owners=compiled.fallback_owners, source=FROM_VERSION
    )


def ownership_history(*, workflow: Workflow) -> list[WorkflowOwnership]:
    return list(
        WorkflowOwnership.objects.filter(workflow=workflow)
        .select_related("version")
        .order_by("-valid_from", "-id")
    )


def members_at(*, team_id: int, at: datetime) -> list[Membership]:
    """Everyone on the team at `at`, leads first, as the membership rows say."""
    return list(
        Membership.objects.filter(team_id=team_id, valid_from__lte=at)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=at))
        .select_related("user")
        .order_by("-role", "user__username")
    )


# --- who owned it at a moment ---------------------------------------------------------------


@dataclass(frozen=True)
class MemberThen:
    username: str
    name: str
    role: str
    since: datetime
    until: datetime | None
    active_now: bool


@dataclass(frozen=True)
class TeamThen:
    """A team as it stood at a moment: whether it took work, and who was on it."""

    slug: str
    name: str
    exists: bool
    active: bool
    members: list[MemberThen] = field(default_factory=list)

    @property
    def can_take_work(self) -> bool:
        return self.exists and self.active and bool(self.members)


@dataclass(frozen=True)
class TeamHistory:
    """A team and every membership it ever had, read once: how it stood at any moment.

    What reads the same team at many moments (a case file: one per decision) asks this
    instead of querying for each moment.
    """

    slug: str
    team: Team | None
    memberships: list[Membership] = field(default_factory=list)

    def at(self, at: datetime) -> TeamThen:
        team = self.team
        if team is None:
            return TeamThen(slug=self.slug, name=self.slug, exists=False, active=False)
        current = [
            m
            for m in self.memberships
            if m.valid_from <= at and (m.valid_to is None or m.valid_to > at)
        ]
        # As members_at orders them: by role (descending), then by username.
        current.sort(key=lambda m: m.user.get_username())
        current.sort(key=lambda m: m.role, reverse=True)
        members = [
            MemberThen(
                username=m.user.get_username(),
                name=m.user.get_full_name() or m.user.get_username(),
                role=m.role,
                since=m.valid_from,
                until=m.valid_to,
                active_now=m.user.is_active,
            )
            for m in current
        ]
        return TeamThen(
            slug=team.slug, name=team.name, exists=True, active=team.active_at(at), members=members
        )


def team_histories(
    slugs: Iterable[str], *, earliest: datetime, latest: datetime
) -> dict[str, TeamHistory]:
    """Each team named, with the memberships in force at some moment from earliest to latest:
    two queries however many teams and moments."""
    wanted = sorted(set(slugs))
    teams = {team.slug: team for team in Team.objects.filter(slug__in=wanted)}
    memberships: dict[int, list[Membership]] = {team.pk: [] for team in teams.values()}
    rows = (
        Membership.objects.filter(team__in=list(teams.values()), valid_from__lte=latest)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=earliest))
        .select_related("user")
    )
    for membership in rows:
        memberships[membership.team_id].append(membership)
    return {
        slug: TeamHistory(
            slug=slug,
            team=teams.get(slug),
            memberships=memberships.get(teams[slug].pk, []) if slug in teams else [],
        )
        for slug in wanted
    }


def team_then(slug: str, at: datetime) -> TeamThen:
    return team_histories([slug], earliest=at, latest=at)[slug].at(at)


# How a reader that already holds teams' histories sees a team at a moment.
TeamAt = Callable[[str, datetime], TeamThen]


@dataclass(frozen=True)
class OwnerAt:
    """Who owned something at a moment, through which rule, and who was on that team then."""

    subject: str  # "workflow lead-routing", "event 12", "case 7"
    at: datetime
    owner: str  # team slug, user:<name>, or "" for nobody
    through: str  # the rule, in words
    rule: dict[str, Any]  # {"kind": ..., and the record it names}
    team: TeamThen | None = None  # the owner team (or the person's case team) as it stood then
    person: str = ""  # username, when a person owned it
    fallbacks: list[TeamThen] = field(default_factory=list)

    @property
    def nobody(self) -> bool:
        return not self.owner and not self.person


def workflow_owner_at(*, workflow: Workflow, at: datetime) -> OwnerAt:
    """The workflow's owner team and fallback chain in force at `at`, each with its people."""
    record = ownership_in_force(workflow_id=workflow.pk, at=at)
    if record is not None:
        lines = lines_of(record)
        rule: dict[str, Any] = {
            "kind": "ownership",
            "id": record.pk,
            "source": record.source,
            "valid_from": record.valid_from,
            "valid_to": record.valid_to,
            "set_by": record.set_by,
            "reason": record.reason,
        }
    elif workflow.current_version is not None and workflow.created_at <= at:
        # Loaded before ownership was kept: the definition is the only record there is. Read
        # from the stored definition, not compiled: a version the engine can no longer compile
        # still had an owner.
        definition = workflow.current_version.definition
        lines = OwnerLines(
            owner=str(definition.get("owner") or ""),
            fallback_owners=tuple(definition.get("fallback_owners") or ()),
            source=FROM_VERSION,
        )
        rule = {"kind": "definition", "version": workflow.current_version.number}
    else:
        return OwnerAt(
            subject=f"workflow {workflow.slug}",
            at=at,
            owner="",
            through="the workflow did not exist yet",
            rule={"kind": "none"},
        )
    return OwnerAt(
        subject=f"workflow {workflow.slug}",
        at=at,
        owner=lines.owner,
        through=f"the workflow's owner, {lines.describe()}",
        rule=rule,
        team=team_then(lines.owner, at),
        fallbacks=[team_then(slug, at) for slug in lines.fallback_owners],
    )


def owner_then(
    ref: str, at: datetime, *, team_at: TeamAt = team_then
) -> tuple[TeamThen | None, str]:
    """(team as it stood, person's username) for an owner reference."""
    if not ref:
        return None, ""
    username = owner_username(ref)
    if username is not None:
        return None, username
    return team_at(ref, at), ""


def event_owner_at(*, event: Event, at: datetime) -> OwnerAt:
    """Whom the engine gave the event to by `at`: its last route decision by then, or, before
    routing, the workflow's owner in force (who gets a validation failure)."""
    subject = f"event {event.pk}"
    if at < event.received_at:
        return OwnerAt(subject=subject, at=at, owner="", through="not received yet", rule={})
    decision = (
        Decision.objects.filter(event=event, step=Step.ROUTE, created_at__lte=at)
        .order_by("-created_at", "-id")
        .first()
    )
    if decision is None:
        workflow_then = workflow_owner_at(workflow=event.workflow, at=at)
        return OwnerAt(
            subject=subject,
            at=at,
            owner=workflow_then.owner,
            through=f"not routed yet: {workflow_then.through}",
            rule={"kind": "workflow", **workflow_then.rule},
            team=workflow_then.team,
        )
    return route_owner_at(decision, subject=subject, at=at)


def route_owner_at(
    decision: Decision, *, subject: str, at: datetime, team_at: TeamAt = team_then
) -> OwnerAt:
    """The owner a route decision chose, as the decision recorded it; its team as team_at
    reads it at `at`."""
    result = decision.result if isinstance(decision.result, dict) else {}
    chosen = str(result.get("owner") or "")
    rule = {
        "kind": "route",
        "decision": decision.pk,
        "route": result.get("route", ""),
        "version": decision.version_number,
        "fallback": result.get("fallback", 0),
        "ownership": result.get("ownership"),
    }
    if not decision.ok or not chosen:
        return OwnerAt(subject=subject, at=at, owner="", through=decision.explanation, rule=rule)
    team, person = owner_then(chosen, at, team_at=team_at)
    return OwnerAt(
        subject=subject,
        at=at,
        owner=chosen,
        through=decision.explanation,
        rule=rule,
        team=team,
        person=person,
    )


@dataclass(frozen=True)
class WorkflowLines:
    workflow: Workflow
    lines: OwnerLines


def ownerships_now(*, at: datetime) -> list[WorkflowLines]:
    """Every workflow with a current version and its owner lines in force at `at`."""
    records = {
        r.workflow_id: r
        for r in WorkflowOwnership.objects.filter(valid_from__lte=at).filter(
            Q(valid_to__isnull=True) | Q(valid_to__gt=at)
        )
    }
    found = []
    for workflow in Workflow.objects.exclude(current_version=None).select_related(
        "current_version"
    ):
        record = records.get(workflow.pk)
        if record is not None:
            lines = lines_of(record)
        else:
            assert workflow.current_version is not None  # excluded above
            definition = workflow.current_version.definition
            lines = OwnerLines(
                owner=definition["owner"],
                fallback_owners=tuple(definition.get("fallback_owners") or ()),
                source=FROM_VERSION,
            )
        found.append(WorkflowLines(workflow, lines))
    return sorted(found, key=lambda w: w.workflow.name)
