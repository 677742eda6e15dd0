"""Reassigning many cases at once: which cases a scope names, what would move, and the job.

The move itself is the registry's "assign" action run as a bulk job (exceptions.actions,
services.bulk_job_*): small moves finish inside the request, large ones run on the workers
with the queue's progress bar. The reason is the job's note, so it is on every case's entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import QueryDict

from exceptions import selectors, services
from exceptions.actions import REASSIGN_ANY
from exceptions.models import OPEN_STATES, BulkJob, ExceptionCase
from workflows.models import Membership, Team

PREVIEW_LIMIT = 50
SCOPE_KEYS = ("case", "person", "off_team", "team", "owner_scope", "query")


class ScopeRefused(ValueError):
    """The scope names nothing, or more than this person may move."""


@dataclass(frozen=True)
class Scope:
    words: str  # what was chosen, for the page and the job's record
    params: QueryDict  # the scope as the page's query string carries it
    cases: QuerySet[ExceptionCase]


def _open() -> QuerySet[ExceptionCase]:
    return ExceptionCase.objects.filter(state__in=OPEN_STATES)


def scope_from(params: QueryDict, *, user: Any, now: datetime) -> Scope:
    """The open cases a reassignment's scope names. Others than managers and admins may only
    move cases that are theirs or nobody's in person."""
    kept = QueryDict(mutable=True)
    for key in SCOPE_KEYS:
        if key in params:
            kept.setlist(key, params.getlist(key))
    cases, words = _cases(params, user=user, now=now)
    if not user.has_perm(REASSIGN_ANY):
        cases = cases.filter(Q(owner_user__isnull=True) | Q(owner_user=user))
        words += " (only those that are yours or unassigned)"
    return Scope(words=words, params=kept, cases=cases)


def _cases(params: QueryDict, *, user: Any, now: datetime) -> tuple[QuerySet[ExceptionCase], str]:
    if params.getlist("case"):
        ids = [int(v) for v in params.getlist("case") if v.isdigit()]
        return _open().filter(pk__in=ids), f"{len(ids)} selected cases"
    if params.get("person"):
        person = get_user_model().objects.filter(username=params["person"]).first()
        if person is None:
            raise ScopeRefused(f"There is nobody called {params['person']!r}.")
        cases = _open().filter(owner_user=person)
        if params.get("off_team"):
            on_team = Membership.objects.filter(
                user_id=person.pk, team_id=OuterRef("owner_team_id"), valid_from__lte=now
            ).filter(Q(valid_to__isnull=True) | Q(valid_to__gt=now))
            cases = cases.filter(owner_team__isnull=False).filter(~Exists(on_team))
            return cases, f"open cases of {person.get_username()} on teams they are not on"
        left = "" if person.is_active else " (left)"
        return cases, f"all open cases of {person.get_username()}{left}"
    if params.get("team"):
        team = Team.objects.filter(slug=params["team"]).first()
        if team is None:
            raise ScopeRefused(f"There is no team {params['team']!r}.")
        return _open().filter(owner_team=team), f"all open cases of team {team.slug}"
    scope = params.get("owner_scope", "")
    if scope == "no_owner":
        no_owner = Q(reason_id="no_owner") | Q(owner_team=None, owner_user=None)
        return _open().filter(no_owner), "cases with no owner"
    if scope == "unassigned_late":
        late = _open().filter(
            owner_user__isnull=True, acknowledged_at__isnull=True, acknowledge_due_at__lt=now
        )
        return late, "unassigned cases past their acknowledge SLA"
    if "query" in params:
        text = params.get("query", "")
        return selectors.cases_matching(QueryDict(text), user=user), f"everything matching: {text}"
    raise ScopeRefused("Choose what to reassign: cases, a person's or a team's open work.")


def move_params(*, team: Team | None, person: Any) -> dict[str, Any]:
    """The assign action's parameters: to a team, the person is cleared (the team picks it up);
    to a person, the team is kept unless one is chosen too."""
    if team is None and person is None:
        raise ScopeRefused("Choose a team or a person to move the cases to.")
    params: dict[str, Any] = {}
    if team is not None:
        params["team"] = team.slug
        params["user"] = None
    if person is not None:
        params["user"] = person.get_username()
    return params


@dataclass(frozen=True)
class PreviewRow:
    case: ExceptionCase
    now_owner: str
    new_owner: str


def preview(scope: Scope, *, team: Team | None, person: Any) -> tuple[int, list[PreviewRow]]:
    """(how many would move, the first PREVIEW_LIMIT of them with their owner before and after)."""
    rows = []
    shown = (
        scope.cases.select_related("workflow", "reason", "owner_team", "owner_user")
        .defer("search", "resolution_note")
        .order_by("id")[:PREVIEW_LIMIT]
    )
    for case in shown:
        before = _owner_words(case.owner_team, case.owner_user)
        after_team = team if team is not None else case.owner_team
        after_person = person if person is not None else (None if team else case.owner_user)
        rows.append(PreviewRow(case, before, _owner_words(after_team, after_person)))
    return scope.cases.count(), rows


def _owner_words(team: Team | None, person: Any) -> str:
    parts = [team.slug] if team is not None else []
    if person is not None:
        parts.append(person.get_username() + ("" if person.is_active else " (left)"))
    return " / ".join(parts) or "no owner"


def reassign_start(
    *, scope: Scope, team: Team | None, person: Any, reason: str, actor: Any
) -> BulkJob:
    """Fix the cases and start the move as a bulk job of the assign action, reason as its note."""
    if not reason.strip():
        raise ScopeRefused("Say why: a reason is required to reassign.")
    return services.bulk_job_create(
        actor=actor,
        action="assign",
        params=move_params(team=team, person=person),
        note=reason.strip(),
        cases=scope.cases,
        scope=f"reassign {scope.words}"[:2000],
    )
