"""The overview: the few numbers each role needs first."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import ChainCheck
from tests import factories
from workflows.models import Outcome

pytestmark = pytest.mark.django_db


def test_an_operator_sees_their_open_and_overdue_cases(client, operator) -> None:
    flow = factories.workflow()
    mine = factories.case(flow=flow, owner=operator)
    late = factories.case(flow=flow, owner=operator)
    late.sla_due_at = timezone.now() - timedelta(minutes=5)
    late.save()
    factories.case(flow=flow)  # the team's, not this person's
    client.force_login(operator)
    response = client.get("/")
    counts = {view.name: view.count for view in response.context["my_work"]}
    assert counts == {"My open cases": 2, "My overdue cases": 1}
    html = response.content.decode()
    assert 'data-testid="my-work"' in html
    assert "manager-numbers" not in html and "admin-numbers" not in html
    assert mine.pk  # both cases are this operator's


def test_a_manager_sees_the_outcome_rate_gaps_and_the_sla(client, make_user) -> None:
    manager = make_user("manager", username="maria")
    flow = factories.workflow()
    for status in ("achieved", "achieved", "achieved", "failed"):
        event = factories.event_create(flow.current_version, {"n": 1}, state="succeeded")
        Outcome.objects.create(event=event, status=status, source="callback")
    # No owner (a gap) and past its SLA; its event waits for a person: a missing outcome.
    late = factories.case(flow=flow, owner=None)
    late.sla_due_at = timezone.now() - timedelta(minutes=1)
    late.save()
    client.force_login(manager)
    response = client.get("/")
    numbers = response.context["manager"]
    assert numbers["outcome_rate"] == 60.0  # 3 achieved of 5: one failed, one missing
    assert numbers["gaps"] >= 1
    assert numbers["breached"].count == 1
    assert numbers["sla_met"] is None  # nothing closed yet
    html = response.content.decode()
    assert "60.0%" in html
    assert 'data-testid="my-work"' not in html


def test_an_admin_sees_workflows_with_failures_and_failing_readiness(client, make_user) -> None:
    admin = make_user("admin", username="adam")
    flow = factories.workflow()
    failed = factories.event_create(flow.current_version, {"n": 1}, state="failed")
    Outcome.objects.create(event=failed, status="failed", source="callback")
    client.force_login(admin)
    response = client.get("/")
    numbers = response.context["admin"]
    assert [slug for slug, _, _ in numbers["failing"]] == [flow.slug]
    # The queue's workflow has no outcome check and no action: its readiness fails.
    assert [card.workflow.slug for card in numbers["readiness_fails"]] == [flow.slug]
    assert f'href="/workflows/{flow.slug}/readiness/"' in response.content.decode()


def test_an_auditor_sees_whether_the_chain_was_verified_intact(client, auditor) -> None:
    ChainCheck.objects.create(checked_at=timezone.now(), ok=False, broken_seq=41, problem="hash")
    client.force_login(auditor)
    html = client.get("/").content.decode()
    assert "broken at entry #41" in html
    assert "role-numbers" not in html


def test_recent_events_list_each_state_once_under_a_total(client, operator) -> None:
    flow = factories.workflow()
    factories.event_create(flow.current_version, {"n": 1})
    client.force_login(operator)
    html = client.get("/").content.decode()
    assert html.count("<dt>Received</dt>") == 1  # the state; the total is "All events"
    assert "<dt>All events</dt>" in html


def test_the_favicon_is_linked_and_served(client, operator) -> None:
    client.force_login(operator)
    assert 'rel="icon"' in client.get("/").content.decode()
    client.logout()
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith(".ico")
