"""The case page's replay preview shows the engine's dry run in the engine's own words."""

from __future__ import annotations

import html

import pytest

from tests import factories
from workflows.services.engine import event_dry_run

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def signed_in(client, operator):
    client.force_login(operator)
    return client


def test_the_case_page_shows_each_decision_the_dry_run_would_record(signed_in, operator) -> None:
    factories.MembershipFactory(user=operator, team=factories.team("revenue-ops"))
    case = factories.case(payload={"email": "dana@example.com", "company": {"size": 20}})

    body = html.unescape(signed_in.get(f"/exceptions/{case.pk}/").content.decode())

    dry = event_dry_run(event=case.event)
    assert "would route and finish (no action)" in body
    assert [d.step for d in dry.decisions] == ["validate", "enrich", "route", "review", "deliver"]
    for decision in dry.decisions:
        assert decision.explanation in body
    assert "Routed to revenue-ops (rule default, v1)" in body


def test_an_edited_payload_is_previewed_with_the_case_it_would_open(signed_in) -> None:
    case = factories.case()
    response = signed_in.post(
        f"/exceptions/{case.pk}/preview/", {"payload": '{"email": 7, "company": {}}'}, **HTMX
    )

    body = html.unescape(response.content.decode())
    assert "would stop at validation (validation_failed)" in body
    assert (
        "It would open a case: Field email should be string, got integer; "
        "Missing required field company.size"
    ) in body
    assert "<html" not in body  # only the fragment
