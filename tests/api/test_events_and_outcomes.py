"""GET /api/v1/events/{id} and POST /api/v1/events/{id}/outcome."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from exceptions.models import ExceptionCase
from exceptions.services import case_open_or_join
from tests.factories import UserFactory, decision_add
from tests.support.api import Api, error_code
from workflows.models import (
    Attempt,
    Decision,
    Event,
    EventState,
    Outcome,
    Team,
    Workflow,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def make_event(api: Api) -> Callable[..., Event]:
    def make(state: str = EventState.RECEIVED, slug: str = "lead-routing", **fields: Any) -> Event:
        response = api.post(f"/workflows/{slug}/events", {"email": "ada@example.com"})
        assert response.status_code == 202
        Event.objects.filter(pk=response.json()["id"]).update(state=state, **fields)
        return Event.objects.get(pk=response.json()["id"])

    return make


def test_an_event_is_shown_with_all_its_records(
    api: Api, workflow: Workflow, team: Team, make_event: Callable[..., Event]
) -> None:
    event = make_event(EventState.NEEDS_ATTENTION, owner_team=team, context={"segment": "smb"})
    now = timezone.now()
    decision_add(
        event,
        step="route",
        rule="default",
        inputs={"payload.email": "ada@example.com"},
        result={
            "route": "default",
            "matched_owner": "revenue-ops",
            "owner": "revenue-ops",
            "fallback": 0,
        },
        explanation="Routed to revenue-ops by the default route.",
    )
    Attempt.objects.create(
        event=event,
        number=1,
        trigger="auto",
        started_at=now,
        finished_at=now + timedelta(milliseconds=120),
        status="rejected",
        http_status=422,
        error_class="HTTPStatusError",
        error_message="422 Unprocessable",
        duration_ms=120,
    )
    case, _ = case_open_or_join(
        event=event,
        reason_code="delivery_rejected",
        detail="The CRM refused the lead",
        owner=team,
        step="deliver",
        fingerprint_key="HTTPStatusError",
    )
    Outcome.objects.create(event=event, status="failed", source="delivery", evidence={"x": 1})

    response = api.get(f"/events/{event.pk}")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == event.pk
    assert body["workflow"] == "lead-routing"
    assert body["version"] == 1
    assert body["state"] == "needs_attention"
    assert body["payload"] == {"email": "ada@example.com"}
    assert body["context"] == {"segment": "smb"}
    assert body["owner"] == {"team": "revenue-ops", "user": None}
    [decision] = body["decisions"]
    assert decision["step"] == "route"
    assert decision["rule"] == "default"
    assert decision["version"] == 1
    assert decision["inputs"] == {"payload.email": "ada@example.com"}
    assert decision["explanation"] == "Routed to revenue-ops by the default route."
    [attempt] = body["attempts"]
    assert attempt["number"] == 1
    assert attempt["http_status"] == 422
    assert attempt["error_class"] == "HTTPStatusError"
    assert attempt["duration_ms"] == 120
    assert attempt["actor"] == "system"
    [shown_case] = body["exceptions"]
    assert shown_case["id"] == case.pk
    assert shown_case["reason"] == "delivery_rejected"
    assert shown_case["state"] == "open"
    assert shown_case["owner"] == {"team": "revenue-ops", "user": None}
    assert "resolve_due_at" in shown_case
    [outcome] = body["outcomes"]
    assert outcome["status"] == "failed"
    assert outcome["source"] == "delivery"


def test_an_unknown_event_is_404_not_found(api: Api, workflow: Workflow) -> None:
    for event_id in (999_999_999, 2**63, 10**30, 0):
        response = api.get(f"/events/{event_id}")
        assert response.status_code == 404
        assert error_code(response) == "not_found"


def test_an_event_of_a_workflow_the_token_cannot_see_is_404(
    api: Api,
    make_event: Callable[..., Event],
    make_workflow: Callable[..., Workflow],
    make_token: Callable[..., Any],
) -> None:
    event = make_event()
    outsider = api.as_token(make_token(make_workflow("refunds"))[1])

    response = outsider.get(f"/events/{event.pk}")
    outcome = outsider.post(f"/events/{event.pk}/outcome", {"status": "achieved"})

    assert response.status_code == 404
    assert error_code(response) == "not_found"
    assert outcome.status_code == 404
    assert Outcome.objects.count() == 0


# --- outcomes -------------------------------------------------------------------------------


def test_achieved_on_a_delivered_event_closes_it_as_succeeded(
    api: Api, make_event: Callable[..., Event]
) -> None:
    event = make_event(EventState.DELIVERED)

    response = api.post(
        f"/events/{event.pk}/outcome", {"status": "achieved", "evidence": {"deal": "D-1"}}
    )

    assert response.status_code == 200
    assert response.json()["event_state"] == "succeeded"
    event.refresh_from_db()
    assert event.state == "succeeded"
    assert event.completed_at is not None
    outcome = Outcome.objects.get(event=event)
    assert outcome.source == "callback"
    assert outcome.status == "achieved"
    assert outcome.evidence == {"deal": "D-1"}
    assert outcome.reported_by.startswith("integration-")
    decision = Decision.objects.get(event=event, step="outcome")
    assert decision.version_number == 1
    assert decision.ok is True
    assert "achieved" in decision.explanation
    assert "D-1" in decision.explanation


def test_the_outcome_report_is_audited_with_the_tokens_name_as_actor(
    api: Api, workflow: Workflow, make_token: Callable[..., Any], make_event: Any
) -> None:
    event = make_event(EventState.DELIVERED)
    crm = api.as_token(make_token(workflow, name="crm-callbacks")[1])

    crm.post(f"/events/{event.pk}/outcome", {"status": "achieved"})

    entry = AuditEntry.objects.get(action="outcome.report")
    assert entry.actor_kind == "token"
    assert entry.actor_label == "crm-callbacks"
    assert entry.object_type == "workflows.event"
    assert entry.object_id == str(event.pk)
    assert entry.before == {"state": "delivered"}
    assert entry.after["state"] == "succeeded"


def test_failed_on_a_delivered_event_needs_attention_and_opens_an_outcome_failed_case(
    api: Api, make_event: Callable[..., Event]
) -> None:
    owner = UserFactory(username="sam")
    event = make_event(EventState.DELIVERED, owner_user=owner)

    response = api.post(
        f"/events/{event.pk}/outcome",
        {"status": "failed", "evidence": {"reason": "duplicate lead in CRM"}},
    )

    assert response.status_code == 200
    event.refresh_from_db()
    assert event.state == "needs_attention"
    case = ExceptionCase.objects.get(event=event)
    assert case.reason_id == "outcome_failed"
    assert case.step == "outcome"
    assert case.owner_user == owner
    assert "duplicate lead in CRM" in case.detail
    assert Decision.objects.get(event=event, step="outcome").ok is False


@pytest.mark.parametrize(
    "state", [EventState.RECEIVED, EventState.PROCESSING, EventState.RETRY_SCHEDULED]
)
def test_a_failed_outcome_before_delivery_is_only_recorded(
    api: Api, make_event: Callable[..., Event], state: str
) -> None:
    event = make_event(state)

    response = api.post(f"/events/{event.pk}/outcome", {"status": "failed"})

    assert response.status_code == 200
    event.refresh_from_db()
    assert event.state == state
    assert Outcome.objects.filter(event=event, source="callback").count() == 1
    assert not ExceptionCase.objects.filter(event=event).exists()


@pytest.mark.parametrize("state", [EventState.SUCCEEDED, EventState.FAILED, EventState.CANCELLED])
def test_an_outcome_for_a_closed_event_is_409_and_records_nothing(
    api: Api, make_event: Callable[..., Event], state: str
) -> None:
    event = make_event(state)

    response = api.post(f"/events/{event.pk}/outcome", {"status": "achieved"})

    assert response.status_code == 409
    assert error_code(response) == "outcome_conflict"
    assert not Outcome.objects.filter(event=event).exists()
    assert not AuditEntry.objects.filter(action="outcome.report").exists()


def test_a_second_callback_outcome_is_409(api: Api, make_event: Callable[..., Event]) -> None:
    event = make_event(EventState.PROCESSING)
    api.post(f"/events/{event.pk}/outcome", {"status": "achieved"})

    again = api.post(f"/events/{event.pk}/outcome", {"status": "failed"})

    assert again.status_code == 409
    assert error_code(again) == "outcome_conflict"
    assert Outcome.objects.filter(event=event).count() == 1


def test_after_a_retry_the_destination_may_report_on_the_new_delivery(
    api: Api, make_event: Callable[..., Event]
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    first_claim = timezone.now() - timedelta(minutes=10)
    event = make_event(EventState.DELIVERED, claimed_at=first_claim)
    assert api.post(f"/events/{event.pk}/outcome", {"status": "failed"}).status_code == 200
    # An operator retries; the engine claims and delivers the event again.
    Event.objects.filter(pk=event.pk).update(state=EventState.DELIVERED, claimed_at=timezone.now())

    second = api.post(f"/events/{event.pk}/outcome", {"status": "achieved"})

    assert second.status_code == 200
    event.refresh_from_db()
    assert event.state == EventState.SUCCEEDED
    assert Outcome.objects.filter(event=event, source="callback").count() == 2


@pytest.mark.parametrize(
    "body",
    [
        {"status": "maybe"},
        {"evidence": {}},
        {"status": "achieved", "evidence": "not an object"},
        {"status": "expired"},
    ],
)
def test_an_outcome_that_does_not_match_the_schema_is_400_invalid_request(
    api: Api, make_event: Callable[..., Event], body: dict[str, Any]
) -> None:
    event = make_event(EventState.DELIVERED)

    response = api.post(f"/events/{event.pk}/outcome", body)

    assert response.status_code == 400
    assert error_code(response) == "invalid_request"
    assert response.json()["error"]["details"]
