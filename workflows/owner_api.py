"""GET /api/v1/workflows/{slug}/owner?at=: who owned a workflow at a moment (DESIGN.md 7)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Schema

from workflows.api import ApiError, ErrorOut, token_of, workflow_for
from workflows.ownership import TeamThen, workflow_owner_at

router = Router(tags=["owners"])


class MemberOut(Schema):
    username: str
    name: str
    role: str
    since: datetime
    until: datetime | None


class TeamOut(Schema):
    team: str
    name: str
    exists: bool
    active: bool  # took work at that moment
    members: list[MemberOut]


class OwnerOut(Schema):
    workflow: str
    at: datetime
    owner: TeamOut | None
    fallback_owners: list[TeamOut]
    source: str  # "definition", "console" or "version"; "" before the workflow existed
    set_by: str
    reason: str
    valid_from: datetime | None
    valid_to: datetime | None


def parse_at(value: str | None) -> datetime:
    """An ISO 8601 moment; one without an offset is UTC. 400 invalid_at when it is not one."""
    if value is None or value == "":
        return timezone.now()
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ApiError(
            400,
            "invalid_at",
            "at must be an ISO 8601 date and time, e.g. 2030-01-02T15:04:05Z.",
            details={"at": value[:100]},
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _team(team: TeamThen) -> TeamOut:
    return TeamOut(
        team=team.slug,
        name=team.name,
        exists=team.exists,
        active=team.active,
        members=[
            MemberOut(username=m.username, name=m.name, role=m.role, since=m.since, until=m.until)
            for m in team.members
        ],
    )


@router.get(
    "/workflows/{slug}/owner",
    response={200: OwnerOut, **{code: ErrorOut for code in (400, 401, 403, 404, 429, 503)}},
    summary="Who owned a workflow at a moment",
)
def workflow_owner(request: HttpRequest, slug: str, at: str | None = None) -> OwnerOut:
    """The owner team, the fallback chain and who was on each team at `at` (default: now),
    from the ownership and membership history."""
    workflow = workflow_for(token_of(request), slug)
    moment = parse_at(at)
    answer = workflow_owner_at(workflow=workflow, at=moment)
    rule = answer.rule
    return OwnerOut(
        workflow=workflow.slug,
        at=moment,
        owner=_team(answer.team) if answer.team is not None else None,
        fallback_owners=[_team(t) for t in answer.fallbacks],
        source=str(rule.get("source", "version" if rule.get("kind") == "definition" else "")),
        set_by=str(rule.get("set_by", "")),
        reason=str(rule.get("reason", "")),
        valid_from=rule.get("valid_from"),
        valid_to=rule.get("valid_to"),
    )
