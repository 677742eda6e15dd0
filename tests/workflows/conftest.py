from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.factories import LEAD_TEAMS, MembershipFactory, TeamFactory, definition, version_create
from tests.support.sinks import Sink
from workflows.models import Team, WorkflowVersion


@pytest.fixture
def lead_teams(db: None) -> dict[str, Team]:
    """The lead-routing teams, each with one active member."""
    teams = {}
    for slug in LEAD_TEAMS:
        team = TeamFactory(slug=slug)
        MembershipFactory(team=team, user__username=f"{slug}-member")
        teams[slug] = team
    return teams


@pytest.fixture
def lead_version(lead_teams: dict[str, Team], sink: Sink) -> Callable[..., WorkflowVersion]:
    """make(**changes): a new version of lead-routing whose webhook goes to the sink."""

    def make(path: str = "/crm/leads", **changes: Any) -> WorkflowVersion:
        changes.setdefault("url", sink.url(path))
        return version_create(definition(**changes))

    return make
