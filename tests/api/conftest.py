from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.test import Client

from audit.actors import Actor
from tests.factories import TeamFactory, open_definition, version_create
from tests.support.api import Api
from workflows import dispatch, ratelimit
from workflows.models import ApiToken, Team, Workflow
from workflows.services.tokens import api_token_create

TEST_ACTOR = Actor(kind="system", label="tests")


@pytest.fixture(autouse=True)
def _fresh_backoffs(monkeypatch: pytest.MonkeyPatch) -> None:
    # A test that takes Redis or the broker down must not leave the next one skipping them.
    monkeypatch.setattr(ratelimit, "_redis_down_until", 0.0)
    monkeypatch.setattr(dispatch, "_broker_down_until", 0.0)


@pytest.fixture
def team(db: None) -> Team:
    return TeamFactory(slug="revenue-ops", name="Revenue ops")


@pytest.fixture
def make_workflow(team: Team) -> Callable[..., Workflow]:
    def make(slug: str = "lead-routing", *, inbound_secret: str = "") -> Workflow:
        definition = open_definition(slug, team.slug)
        return version_create(definition, inbound_secret=inbound_secret).workflow

    return make


@pytest.fixture
def workflow(make_workflow: Callable[..., Workflow]) -> Workflow:
    return make_workflow()


@pytest.fixture
def make_token(db: None) -> Callable[..., tuple[ApiToken, str]]:
    counter = iter(range(1, 10_000))

    def make(
        *workflows: Workflow, all_workflows: bool = False, name: str | None = None
    ) -> tuple[ApiToken, str]:
        return api_token_create(
            name=name or f"integration-{next(counter)}",
            workflow_slugs=[w.slug for w in workflows],
            all_workflows=all_workflows,
            actor=TEST_ACTOR,
        )

    return make


@pytest.fixture
def token(make_token: Callable[..., tuple[ApiToken, str]], workflow: Workflow) -> str:
    """The plaintext of a token scoped to `workflow`."""
    return make_token(workflow)[1]


@pytest.fixture
def api(client: Client, token: str) -> Iterator[Api]:
    yield Api(client, token)
