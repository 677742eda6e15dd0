"""/events/: every event in any state, its filters and pages; retry and replay from its page."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection

from audit.models import AuditEntry
from exceptions.approvals.models import ApprovalRequest
from exceptions.event_filters import events_matching
from tests import factories
from tests.support.cursors import MALFORMED
from workflows.models import (
    Attempt,
    AttemptStatus,
    Event,
    EventState,
    Outcome,
    OutcomeSource,
    OutcomeStatus,
    Team,
    Workflow,
)

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
DAY1 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY2 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


def event_ids(response) -> list[int]:
    return [int(i) for i in re.findall(r'data-event="(\d+)"', response.content.decode())]


@pytest.fixture
def signed_in(client, operator):
    client.force_login(operator)
    return client


def lead(email: str, **extra) -> dict:
    return {"email": email, "company": {"name": "Example", "size": 12}, **extra}


def made(payload: dict, *, at: datetime = DAY1, **fields) -> Event:
    flow = Workflow.objects.filter(slug="lead-routing").first() or factories.workflow()
    with time_machine.travel(at, tick=False):
        return factories.event_create(flow.current_version, payload, **fields)


def outcome(event: Event, status: str, source: str = OutcomeSource.CALLBACK) -> Outcome:
    return Outcome.objects.create(event=event, status=status, source=source)


def test_the_list_shows_events_in_every_state_linking_to_their_pages(signed_in) -> None:
    states = [EventState.RECEIVED, EventState.SUCCEEDED, EventState.FAILED, EventState.CANCELLED]
    events = [made(lead(f"p{i}@example.com"), state=s) for i, s in enumerate(states)]
    case = factories.case()
    response = signed_in.get("/events/")
    assert response.status_code == 200
    body = response.content.decode()
    assert set(event_ids(response)) == {e.pk for e in events} | {case.event_id}
    for event in events:
        assert f'href="/events/{event.pk}/"' in body
    assert f'href="/exceptions/{case.pk}/"' in body  # the open case that holds its event
    assert "p1@example.com" in body  # the start of the payload, to tell rows apart
    assert response["Vary"].count("HX-Request") == 1


def test_an_htmx_request_returns_only_the_rows(signed_in) -> None:
    made(lead("a@example.com"))
    full = signed_in.get("/events/").content.decode()
    fragment = signed_in.get("/events/", **HTMX).content.decode()
    assert fragment.lstrip().startswith('<div id="results"')
    assert 'id="filters"' not in fragment
    assert fragment.strip() in full


def test_each_filter_narrows_the_list(signed_in, operator) -> None:
    first = made(lead("ada@analytical.test"), at=DAY1, state=EventState.SUCCEEDED)
    second = made(lead("bob@globex.test", order="ORD-77"), at=DAY2, state=EventState.FAILED)
    ops = Team.objects.get(slug="revenue-ops")
    Event.objects.filter(pk=first.pk).update(owner_team=ops)
    Event.objects.filter(pk=second.pk).update(owner_user=operator)
    outcome(first, OutcomeStatus.ACHIEVED)
    outcome(second, OutcomeStatus.ACHIEVED)
    outcome(second, OutcomeStatus.FAILED, OutcomeSource.MANUAL)
    other = factories.version_create(factories.open_definition("other-flow", "revenue-ops"))
    third = factories.event_create(other, {"ticket": "T-1"})

    def ids(query: str) -> set[int]:
        response = signed_in.get(f"/events/?{query}")
        assert response.status_code == 200, response.content
        return set(event_ids(response))

    assert ids("workflow=other-flow") == {third.pk}
    assert ids("workflow=lead-routing&version=1") == {first.pk, second.pk}
    assert ids("version=2") == set()
    assert ids("state=failed&state=received") == {second.pk, third.pk}
    assert ids("owner=revenue-ops") == {first.pk}
    assert ids(f"owner=user:{operator.username}") == {second.pk}
    assert ids("owner=none") == {third.pk}
    assert ids("received_after=2026-03-03&received_before=2026-03-03") == {second.pk}
    assert ids("received_before=2026-03-02") == {first.pk}
    assert ids("outcome=achieved") == {first.pk}  # the latest outcome counts
    assert ids("outcome=failed") == {second.pk}
    assert ids("outcome=manual") == {second.pk}
    assert ids("outcome=none") == {third.pk}
    assert ids("q=ada@analytical.test") == {first.pk}
    assert ids("q=ORD-77") == {second.pk}
    assert ids(f"q=%23{third.pk}") == {third.pk}
    assert ids("q=nowhere") == set()
    assert ids("workflow=no-such-flow") == set()


def test_payload_search_is_answered_by_the_expression_index() -> None:
    made(lead("ada@analytical.test"))
    queryset = events_matching({"q": "ada@analytical.test"}).order_by("-received_at", "-id")[:50]
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "event_payload_search_idx" in plan


def test_pages_follow_each_other_without_overlap_and_back(signed_in) -> None:
    events = [made(lead(f"p{i}@example.com")) for i in range(30)]
    first = signed_in.get("/events/?per=25")
    assert len(event_ids(first)) == 25
    assert event_ids(first) == sorted((e.pk for e in events), reverse=True)[:25]
    next_url = re.search(r'href="(\?[^"]*after=[^"]+)" hx-get', first.content.decode()).group(1)
    second = signed_in.get(f"/events/{next_url.replace('&amp;', '&')}")
    assert set(event_ids(second)) == {e.pk for e in events} - set(event_ids(first))
    prev_url = re.search(r'href="(\?[^"]*before=[^"]+)" hx-get', second.content.decode()).group(1)
    back = signed_in.get(f"/events/{prev_url.replace('&amp;', '&')}")
    assert event_ids(back) == event_ids(first)


@pytest.mark.parametrize("cursor", list(MALFORMED.values())[:8], ids=list(MALFORMED)[:8])
def test_a_cursor_we_did_not_hand_out_is_a_400(signed_in, cursor: str) -> None:
    response = signed_in.get("/events/", {"after": cursor})
    assert response.status_code == 400
    assert "Start from the first page" in response.content.decode()


def test_every_role_reads_the_list_and_nobody_signed_out_does(client, make_user) -> None:
    made(lead("a@example.com"))
    assert client.get("/events/").status_code == 302
    for role in ("operator", "manager", "admin", "auditor"):
        client.force_login(make_user(role))
        assert client.get("/events/").status_code == 200


# --- retry and replay from the event page ------------------------------------------------------


def test_a_failed_event_without_an_open_case_is_retried_from_its_page(signed_in) -> None:
    event = made(lead("a@example.com"), state=EventState.FAILED, step="deliver")
    page = signed_in.get(f"/events/{event.pk}/").content.decode()
    assert 'data-testid="event-actions"' in page and "Retry step" in page
    response = signed_in.post(f"/events/{event.pk}/retry/", {"note": "CRM is back"}, follow=True)
    assert "will run again" in response.content.decode()
    event.refresh_from_db()
    assert event.state == EventState.RECEIVED and event.pending_trigger == "retry"
    entry = AuditEntry.objects.get(action="event.retry")
    assert entry.reason == "CRM is back" and entry.object_id == str(event.pk)


def test_an_event_held_by_an_open_case_is_worked_on_the_case_not_its_page(signed_in) -> None:
    case = factories.case()
    page = signed_in.get(f"/events/{case.event_id}/").content.decode()
    assert 'data-testid="event-actions"' not in page
    response = signed_in.post(f"/events/{case.event_id}/replay/", {"run_version": "original"})
    assert response.status_code == 302
    assert Event.objects.filter(replay_of_id=case.event_id).count() == 0
    messages = signed_in.get(f"/events/{case.event_id}/").content.decode()
    assert f"Case {case.pk} is open on this event" in messages


def test_replaying_a_delivered_event_needs_a_reason_and_an_approval(signed_in, operator) -> None:
    event = made(lead("a@example.com"), state=EventState.SUCCEEDED, step="outcome")
    Attempt.objects.create(
        event=event,
        number=1,
        trigger="auto",
        started_at=DAY1,
        finished_at=DAY1,
        status=AttemptStatus.SUCCEEDED,
        http_status=200,
        duration_ms=40,
    )
    page = signed_in.get(f"/events/{event.pk}/").content.decode()
    assert 'data-testid="replay-delivered-warning"' in page
    assert "Retry step" not in page  # a succeeded event has no step to rerun

    refused = signed_in.post(
        f"/events/{event.pk}/replay/", {"run_version": "original"}, follow=True
    )
    assert "already delivered" in refused.content.decode()
    assert not Event.objects.filter(replay_of=event).exists()

    asked = signed_in.post(
        f"/events/{event.pk}/replay/",
        {"run_version": "current", "note": "CRM lost the lead"},
        follow=True,
    )
    # Sending it again waits for a second person: nothing is replayed yet.
    assert not Event.objects.filter(replay_of=event).exists()
    approval = ApprovalRequest.objects.get(event=event)
    assert (approval.kind, approval.state, approval.reason) == (
        "delivered_replay",
        "pending",
        "CRM lost the lead",
    )
    assert f"Approval request #{approval.pk} waits for a manager" in asked.content.decode()


def test_an_event_still_running_offers_nothing_and_refuses_a_replay(signed_in) -> None:
    event = made(lead("a@example.com"), state=EventState.PROCESSING)
    assert (
        'data-testid="event-actions"' not in signed_in.get(f"/events/{event.pk}/").content.decode()
    )
    signed_in.post(f"/events/{event.pk}/replay/", {"run_version": "original"})
    assert not Event.objects.filter(replay_of=event).exists()


def test_an_auditor_sees_no_actions_and_cannot_post_them(client, auditor) -> None:
    event = made(lead("a@example.com"), state=EventState.FAILED)
    client.force_login(auditor)
    assert 'data-testid="event-actions"' not in client.get(f"/events/{event.pk}/").content.decode()
    assert client.post(f"/events/{event.pk}/retry/").status_code == 403
    assert (
        client.post(f"/events/{event.pk}/replay/", {"run_version": "original"}).status_code == 403
    )
    event.refresh_from_db()
    assert event.state == EventState.FAILED
