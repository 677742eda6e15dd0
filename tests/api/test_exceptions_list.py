"""GET /api/v1/exceptions: filters, cursor pagination, token scope."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from exceptions.models import ExceptionCase
from tests import factories
from tests.factories import UserFactory
from tests.support.api import Api, error_code
from tests.support.cursors import MALFORMED
from workflows.models import Team, Workflow

pytestmark = pytest.mark.django_db


@pytest.fixture
def open_case(workflow: Workflow, team: Team) -> Callable[..., ExceptionCase]:
    opened = iter(range(1000))
    base = timezone.now() - timedelta(days=1)

    def make(
        *,
        slug: str = "lead-routing",
        reason: str = "validation_failed",
        state: str = "open",
        owner: Any = None,
        at: Any = None,
    ) -> ExceptionCase:
        return factories.case(
            flow=Workflow.objects.get(slug=slug),
            reason=reason,
            detail="missing email",
            key="email",
            payload={"n": next(opened)},
            owner=owner,
            state=state,
            opened_at=at or base + timedelta(minutes=next(opened)),
        )

    return make


def ids(response: Any) -> list[int]:
    return [case["id"] for case in response.json()["results"]]


def test_cases_are_listed_newest_first(api: Api, open_case: Callable[..., ExceptionCase]) -> None:
    older, newer = open_case(), open_case()

    response = api.get("/exceptions")

    assert response.status_code == 200
    assert ids(response) == [newer.pk, older.pk]
    first = response.json()["results"][0]
    assert first["workflow"] == "lead-routing"
    assert first["reason"] == "validation_failed"
    assert first["event_id"] == newer.event_id
    assert response.json()["next_cursor"] is None


def test_cases_filter_by_state_workflow_reason_and_owner(
    api: Api,
    open_case: Callable[..., ExceptionCase],
    team: Team,
    make_workflow: Callable[..., Workflow],
    make_token: Callable[..., Any],
) -> None:
    make_workflow("refunds")
    everything = api.as_token(make_token(all_workflows=True)[1])
    sam = UserFactory(username="sam")
    by_team = open_case(owner=team)
    by_sam = open_case(owner=sam, reason="no_owner")
    resolved = open_case(state="resolved")
    refund = open_case(slug="refunds")

    assert ids(everything.get("/exceptions", data={"owner": "revenue-ops"})) == [by_team.pk]
    assert ids(everything.get("/exceptions", data={"owner": "user:sam"})) == [by_sam.pk]
    assert ids(everything.get("/exceptions", data={"reason": "no_owner"})) == [by_sam.pk]
    assert ids(everything.get("/exceptions", data={"state": "resolved"})) == [resolved.pk]
    assert ids(everything.get("/exceptions", data={"workflow": "refunds"})) == [refund.pk]
    assert ids(everything.get("/exceptions", data={"owner": "nobody"})) == []


def test_only_cases_of_workflows_the_token_may_see_are_listed(
    api: Api,
    open_case: Callable[..., ExceptionCase],
    make_workflow: Callable[..., Workflow],
    make_token: Callable[..., Any],
) -> None:
    refunds = make_workflow("refunds")
    open_case()
    refund_case = open_case(slug="refunds")
    refunds_only = api.as_token(make_token(refunds)[1])

    assert ids(refunds_only.get("/exceptions")) == [refund_case.pk]
    assert refund_case.pk not in ids(api.get("/exceptions"))


def test_pages_follow_the_cursor_without_gaps_or_repeats(
    api: Api, open_case: Callable[..., ExceptionCase]
) -> None:
    same_time = timezone.now() - timedelta(hours=1)
    cases = [open_case(at=same_time) for _ in range(3)] + [open_case() for _ in range(4)]
    expected = [c.pk for c in sorted(cases, key=lambda c: (c.opened_at, c.pk), reverse=True)]

    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = api.get("/exceptions", data=params)
        assert response.status_code == 200
        seen += ids(response)
        pages += 1
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break

    assert seen == expected
    assert pages == 4


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 201},
        {"limit": "ten"},
        {"state": "bogus"},
        {"cursor": "not!base64"},
        {"cursor": "bm90IGpzb24="},
        {"cursor": "WyJub3QgYSBkYXRlIiwgMV0="},
        {"workflow": "has space"},
        {"owner": "user:"},
        {"reason": "a\x00b"},
    ],
)
def test_bad_filters_are_400_invalid_request(api: Api, params: dict[str, Any]) -> None:
    response = api.get("/exceptions", data=params)

    assert response.status_code == 400
    assert error_code(response) == "invalid_request"


def test_listing_needs_a_token(api: Api) -> None:
    response = api.as_token(None).get("/exceptions")

    assert response.status_code == 401
    assert error_code(response) == "unauthenticated"


@pytest.mark.parametrize("cursor", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_cursor_is_400_invalid_request(
    api: Api, open_case: Callable[..., ExceptionCase], cursor: str
) -> None:
    open_case()

    response = api.get("/exceptions", data={"cursor": cursor})

    assert response.status_code == 400
    assert error_code(response) == "invalid_request"
    assert "cursor" in json.dumps(response.json()["error"])
