"""The readiness audit: each control computed from the definition and the history, with evidence;
the printable pages and GET /api/v1/workflows/{slug}/readiness."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from audit.actors import Actor
from console.catalogue.readiness import scorecards
from exceptions.models import ExceptionCase
from tests import factories
from tests.support.api import Api, error_code
from workflows.models import Attempt, Event, Outcome, Team, Workflow
from workflows.services.engine import event_replay
from workflows.services.ingest import event_ingest
from workflows.services.tokens import api_token_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def teams() -> dict[str, Team]:
    """The lead-routing teams, each with one active member."""
    found = {}
    for slug in factories.LEAD_TEAMS:
        team = factories.TeamFactory(slug=slug)
        factories.MembershipFactory(team=team, user__username=f"{slug}-member")
        found[slug] = team
    return found


def flow(teams, **changes) -> Workflow:
    return factories.version_create(factories.definition(**changes)).workflow


def controls(workflow: Workflow) -> dict[str, tuple[str, str]]:
    workflow.refresh_from_db()
    (card,) = scorecards([workflow])
    return {c.id: (c.status, c.evidence) for c in card.controls}


def test_a_workflow_without_an_outcome_check_fails_that_control_with_the_reason(teams) -> None:
    workflow = flow(teams, outcome={"confirm_within": None})
    status, evidence = controls(workflow)["outcome_visible"]
    assert status == "fail"
    assert evidence.startswith("No outcome check: a 2xx from the destination is taken as the")
    assert "Set outcome.confirm_within" in evidence


def test_an_outcome_check_with_a_known_outcome_rate_passes(teams) -> None:
    workflow = flow(teams, outcome={"confirm_within": 600})
    event = factories.event_create(workflow.current_version, factories.GOOD_LEAD, state="succeeded")
    Outcome.objects.create(event=event, status="achieved", source="callback")
    status, evidence = controls(workflow)["outcome_visible"]
    assert status == "pass"
    assert "confirmed by the destination within 10m" in evidence and "100.0%" in evidence


def test_a_workflow_whose_owner_team_is_inactive_fails_the_owner_control(teams) -> None:
    workflow = flow(teams)
    assert controls(workflow)["owner_active"][0] == "pass"
    Team.objects.filter(slug="revenue-ops").update(active=False)
    status, evidence = controls(workflow)["owner_active"]
    assert status == "fail"
    assert evidence == "The owner team revenue-ops is inactive."


def test_a_workflow_whose_owner_left_fails_the_owner_control(teams) -> None:
    workflow = flow(teams)
    # The owner team's only member is deactivated: the team is there, nobody can take work.
    get_user_model().objects.filter(username="revenue-ops-member").update(is_active=False)
    status, evidence = controls(workflow)["owner_active"]
    assert status == "fail"
    assert evidence == "The owner team revenue-ops has no active members."


def test_a_deactivated_person_owning_a_route_warns(teams, make_user) -> None:
    leaver = make_user("operator", username="lee")
    routes = [{"name": "all", "when": "true", "owner": "user:lee"}]
    workflow = flow(teams, routes=routes)
    assert controls(workflow)["owner_active"][0] == "pass"
    leaver.is_active = False
    leaver.save()
    status, evidence = controls(workflow)["owner_active"]
    assert status == "warn" and "route owner user:lee is deactivated" in evidence


def test_an_inactive_fallback_or_route_owner_warns(teams) -> None:
    workflow = flow(teams)
    Team.objects.filter(slug="emea-enterprise").update(active=False)
    status, evidence = controls(workflow)["owner_active"]
    assert status == "warn" and "route owner emea-enterprise is inactive" in evidence


def test_definition_controls_fail_what_is_missing(teams) -> None:
    workflow = flow(
        teams, required_fields=[], sla={"acknowledge_within": None, "resolve_within": None}
    )
    found = controls(workflow)
    assert found["required_fields"] == (
        "fail", "No required field: any payload is accepted, however incomplete.",
    )  # fmt: skip
    assert found["sla"][0] == "fail" and found["sla"][1].startswith("No SLA")


def test_idempotency_in_use_is_measured_on_the_events(teams) -> None:
    workflow = flow(teams)
    assert controls(workflow)["trigger"][0] == "warn"  # no event yet
    factories.event_create(workflow.current_version, factories.GOOD_LEAD)
    status, evidence = controls(workflow)["trigger"]
    assert status == "fail" and "0 of 1 events" in evidence
    for n in range(39):
        with transaction.atomic():
            event_ingest(
                workflow=workflow, payload=factories.GOOD_LEAD, raw_body_hash="",
                idempotency_key=f"lead-{n}", headers={}, source="test",
            )  # fmt: skip
    status, evidence = controls(workflow)["trigger"]
    assert status == "pass" and "39 of 40 events" in evidence


def test_an_open_case_without_an_owner_fails_ownership(teams) -> None:
    workflow = flow(teams)
    factories.case(flow=workflow)
    assert controls(workflow)["exceptions_owned"][0] == "pass"
    factories.case(flow=workflow, owner=None)
    status, evidence = controls(workflow)["exceptions_owned"]
    assert status == "fail" and evidence.endswith("1 without an owner.")


def test_failed_events_never_replayed_warn_and_succeeding_replays_pass(teams, operator) -> None:
    workflow = flow(teams)
    failed = factories.event_create(workflow.current_version, factories.GOOD_LEAD, state="failed")
    assert controls(workflow)["replayable"][0] == "warn"
    replay = event_replay(event=failed, actor=operator)
    Event.objects.filter(pk=replay.pk).update(state="succeeded")
    status, evidence = controls(workflow)["replayable"]
    assert status == "pass" and "1 replays in the last 30 days: 1 succeeded" in evidence


def test_review_for_routine_events_fails_above_the_share(teams) -> None:
    workflow = flow(teams)
    for _ in range(3):
        factories.case(flow=workflow, reason="review_required", step="review", key="big-refund")
    status, evidence = controls(workflow)["review_for_judgement"]
    assert status == "fail" and "3 of 3 events (100.0%) waited for a review" in evidence


def test_errors_doubling_against_the_week_before_fail_the_trend(teams) -> None:
    workflow = flow(teams)
    version = workflow.current_version
    now = timezone.now()

    def events(days_ago: int, total: int, errored: int) -> None:
        with time_machine.travel(now - timedelta(days=days_ago), tick=False):
            for i in range(total):
                event = factories.event_create(version, factories.GOOD_LEAD, state="succeeded")
                if i < errored:
                    Attempt.objects.create(
                        event=event, number=1, trigger="auto", started_at=event.received_at,
                        finished_at=event.received_at, status="failed", duration_ms=5,
                    )  # fmt: skip

    events(10, 10, 1)  # 10% the week before
    events(1, 10, 4)  # 40% now
    status, evidence = controls(workflow)["trend"]
    assert status == "fail"
    assert "error rate 40.0% (was 10.0%)" in evidence and "Errors have doubled" in evidence


def test_the_pages_show_the_scorecards(teams, client, make_user) -> None:
    workflow = flow(teams, outcome={"confirm_within": None})
    client.force_login(make_user("auditor"))
    page = client.get(f"/workflows/{workflow.slug}/").content.decode()
    assert 'data-testid="readiness"' in page
    assert 'data-control="outcome_visible" data-status="fail"' in page
    printable = client.get(f"/workflows/{workflow.slug}/readiness/").content.decode()
    assert "Readiness audit: Lead routing" in printable and "No outcome check" in printable
    every = client.get("/readiness/").content.decode()
    assert 'id="wf-lead-routing"' in every
    catalogue = client.get("/workflows/").content.decode()
    assert 'data-testid="readiness-lead-routing"' in catalogue and "fail</span>" in catalogue


def test_the_api_gives_the_controls_to_a_token_of_that_workflow(client, teams) -> None:
    workflow = flow(teams, outcome={"confirm_within": None})
    other = factories.version_create(factories.open_definition("other-flow", "revenue-ops"))
    actor = Actor(kind="system", label="tests")
    _, token = api_token_create(
        name="ci", workflow_slugs=[workflow.slug], all_workflows=False, actor=actor
    )
    api = Api(client, token)
    response = api.get("/workflows/lead-routing/readiness")
    assert response.status_code == 200
    body = response.json()
    assert body["workflow"] == "lead-routing" and body["status"] == "fail"
    ids = [c["id"] for c in body["controls"]]
    assert ids[:2] == ["trigger", "required_fields"] and len(ids) == 9
    outcome = next(c for c in body["controls"] if c["id"] == "outcome_visible")
    assert outcome["status"] == "fail" and "No outcome check" in outcome["evidence"]
    assert set(body["controls"][0]) == {"id", "title", "status", "evidence"}
    forbidden = api.get(f"/workflows/{other.workflow.slug}/readiness")
    assert forbidden.status_code == 403 and error_code(forbidden) == "forbidden"
    assert error_code(api.get("/workflows/nope/readiness")) == "unknown_workflow"
    assert Api(client, None).get("/workflows/lead-routing/readiness").status_code == 401
    assert ExceptionCase.objects.count() == 0
