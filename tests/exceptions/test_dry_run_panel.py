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


def test_the_replay_form_warns_when_the_event_was_already_delivered(signed_in) -> None:
    from django.utils import timezone

    from workflows.models import Attempt

    case = factories.case()
    page = signed_in.get(f"/exceptions/{case.pk}/").content.decode()
    assert 'data-testid="replay-delivered-warning"' not in page
    now = timezone.now()
    Attempt.objects.create(
        event=case.event, number=1, trigger="auto", started_at=now, finished_at=now,
        status="succeeded", http_status=200, duration_ms=12,
    )  # fmt: skip
    page = html.unescape(signed_in.get(f"/exceptions/{case.pk}/").content.decode())
    assert 'data-testid="replay-delivered-warning"' in page
    assert "The destination accepted this event (HTTP 200" in page
    assert "Why replay it anyway (required)" in page

    refused = signed_in.post(
        f"/exceptions/{case.pk}/replay/", {"version": case.version, "run_version": "original"}
    )
    assert refused.status_code == 422
    assert "already delivered" in html.unescape(refused.content.decode())


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
        ('{"n": ' + "9" * 5000 + "}", "is not valid JSON"),
        ('{"a": ' * 120 + "1" + "}" * 120, "nested deeper than 100 levels"),
        ('{"text": "nul \\u0000 here"}', "NUL character"),
        ('{"text": "\\ud800"}', "unpaired surrogate"),
        ('{"x": NaN}', "NaN is not JSON"),
        ("[1, 2]", "must be a JSON object, not a JSON array"),
        ('{"blob": "' + "x" * 300_000 + '"}', "larger than the limit of 262144 bytes"),
    ],
    ids=["deep arrays", "huge integer", "deep objects", "nul", "surrogate", "nan", "array", "size"],
)
def test_an_edited_payload_has_the_apis_limits(signed_in, payload: str, message: str) -> None:
    case = factories.case()
    for url, data in (
        (f"/exceptions/{case.pk}/preview/", {"payload": payload}),
        (
            f"/exceptions/{case.pk}/replay_edit/",
            {"payload": payload, "version": case.version, "note": "fix the typo"},
        ),
    ):
        response = signed_in.post(url, data, **HTMX)
        assert response.status_code == 422, url
        assert message in html.unescape(response.content.decode()), url
    case.refresh_from_db()
    assert case.is_open


def test_a_case_whose_version_cannot_compile_still_shows(signed_in, settings) -> None:
    from tests.support.engine import process_due

    settings.HANDOFF_PROCESSING_ATTEMPTS = 1
    broken = factories.definition(slug="broken", name="Broken")
    del broken["retry"]
    event = factories.event_create(factories.version_create(broken), factories.GOOD_LEAD)
    process_due()
    case = event.exception_cases.get()
    assert case.reason_id == "processing_error"

    page = signed_in.get(f"/exceptions/{case.pk}/")
    assert page.status_code == 200
    body = html.unescape(page.content.decode())
    assert "The current version cannot run: the definition: missing 'retry'" in body
    assert signed_in.get(f"/events/{event.pk}/").status_code == 200
