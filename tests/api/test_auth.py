"""Bearer tokens, scopes and the per-token rate limit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client, override_settings
from django.utils import timezone

from audit.actors import Actor
from tests.support.api import Api, error_code
from workflows.models import ApiToken, Event, Workflow
from workflows.services.tokens import api_token_revoke

pytestmark = pytest.mark.django_db

PATH = "/workflows/lead-routing/events"


def test_a_request_without_a_token_is_401_and_never_a_login_redirect(
    api: Api, workflow: Workflow
) -> None:
    response = api.as_token(None).post(PATH, {"a": 1})

    assert response.status_code == 401
    assert error_code(response) == "unauthenticated"
    assert response["WWW-Authenticate"] == "Bearer"
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer hnd_" + "A" * 43,
        "Bearer not-a-token",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        "hnd_" + "A" * 43,
    ],
)
def test_a_wrong_or_malformed_token_is_401(
    api: Api, workflow: Workflow, authorization: str
) -> None:
    response = api.as_token(None).post(PATH, {"a": 1}, headers={"Authorization": authorization})

    assert response.status_code == 401
    assert error_code(response) == "unauthenticated"


def test_a_revoked_token_is_401(
    api: Api, workflow: Workflow, make_token: Callable[..., Any]
) -> None:
    token, plaintext = make_token(workflow)
    api_token_revoke(token=token, actor=Actor(kind="system", label="tests"))

    response = api.as_token(plaintext).post(PATH, {"a": 1})

    assert response.status_code == 401
    assert error_code(response) == "unauthenticated"
    assert "revoked" in response.json()["error"]["message"].lower()


def test_a_token_not_scoped_to_the_workflow_is_403(
    api: Api, workflow: Workflow, make_workflow: Callable[..., Workflow], make_token: Any
) -> None:
    other = make_workflow("refunds")
    refunds_only = api.as_token(make_token(other)[1])

    response = refunds_only.post(PATH, {"a": 1})

    assert response.status_code == 403
    assert error_code(response) == "forbidden"
    assert Event.objects.count() == 0


def test_a_token_for_all_workflows_may_send_to_any(
    api: Api, workflow: Workflow, make_token: Callable[..., Any]
) -> None:
    everything = api.as_token(make_token(all_workflows=True)[1])

    assert everything.post(PATH, {"a": 1}).status_code == 202


def test_api_posts_need_no_csrf_token(workflow: Workflow, token: str) -> None:
    strict = Api(Client(enforce_csrf_checks=True), token)

    assert strict.post(PATH, {"a": 1}).status_code == 202


def test_use_is_recorded_at_most_once_a_minute(
    api: Api, workflow: Workflow, make_token: Callable[..., Any]
) -> None:
    token, plaintext = make_token(workflow)
    caller = api.as_token(plaintext)
    start = timezone.now()

    with time_machine.travel(start, tick=False):
        caller.post(PATH, {"n": 1})
    first_use = ApiToken.objects.get(pk=token.pk).last_used_at
    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        caller.post(PATH, {"n": 2})
    within_a_minute = ApiToken.objects.get(pk=token.pk).last_used_at
    with time_machine.travel(start + timedelta(seconds=90), tick=False):
        caller.post(PATH, {"n": 3})
    later = ApiToken.objects.get(pk=token.pk).last_used_at

    assert first_use == start
    assert within_a_minute == start
    assert later == start + timedelta(seconds=90)


@override_settings(HANDOFF_API_RATE_LIMIT=2, HANDOFF_API_RATE_WINDOW_SECONDS=60)
def test_requests_over_the_limit_are_429_with_retry_after(
    api: Api, workflow: Workflow, make_token: Callable[..., Any]
) -> None:
    caller = api.as_token(make_token(workflow)[1])
    other_token = api.as_token(make_token(workflow)[1])

    statuses = [caller.post(PATH, {"n": n}).status_code for n in range(2)]
    limited = caller.post(PATH, {"n": 3})

    assert statuses == [202, 202]
    assert limited.status_code == 429
    assert error_code(limited) == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert Event.objects.count() == 2
    assert other_token.post(PATH, {"n": 4}).status_code == 202, "limits are per token"
