"""Validate, enrich, route and review: each step's decision, its explanation, and its exceptions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone

from exceptions.models import ExceptionCase
from tests.factories import (
    ENTERPRISE_EMEA_LEAD,
    MembershipFactory,
    TeamFactory,
    UserFactory,
    event_create,
)
from tests.support.engine import process_due, reload
from tests.support.sinks import Sink
from workflows.definitions import json_type, json_type_matches
from workflows.models import Decision, EventState, Step, Team, WorkflowVersion

pytestmark = pytest.mark.django_db

MakeVersion = Callable[..., WorkflowVersion]


def decisions(event, step: str | None = None) -> list[Decision]:
    rows = Decision.objects.filter(event=event).order_by("created_at", "id")
    return list(rows.filter(step=step) if step else rows)


def only_case(event) -> ExceptionCase:
    cases = list(ExceptionCase.objects.filter(event=event))
    assert len(cases) == 1, cases
    return cases[0]


# --- validate ---------------------------------------------------------------------------------


def test_valid_event_is_validated_with_a_count_of_its_fields(lead_version: MakeVersion) -> None:
    event = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    process_due()
    (decision,) = decisions(event, Step.VALIDATE)
    assert decision.ok
    assert decision.rule == "required_fields"
    assert decision.version_number == 1
    assert decision.explanation == "Validated: all 2 required fields present with the right types"
    assert decision.inputs == {"email": "ada@example.com", "company.size": 800}


def test_missing_required_field_opens_validation_failed_naming_it(
    lead_version: MakeVersion, lead_teams: dict[str, Team], sink: Sink
) -> None:
    event = event_create(lead_version(), {"email": "ada@example.com", "company": {}})
    process_due()

    event = reload(event)
    assert event.state == EventState.NEEDS_ATTENTION
    assert event.step == Step.VALIDATE
    (decision,) = decisions(event)
    assert not decision.ok
    assert decision.explanation == "Missing required field company.size"
    case = only_case(event)
    assert case.reason_id == "validation_failed"
    assert case.detail == "Missing required field company.size"
    assert case.step == Step.VALIDATE
    assert case.owner_team == lead_teams["revenue-ops"]
    assert sink.requests() == []


def test_mistyped_field_names_expected_and_actual_types(lead_version: MakeVersion) -> None:
    event = event_create(lead_version(), {"email": "ada@example.com", "company": {"size": "800"}})
    process_due()
    assert decisions(event)[0].explanation == "Field company.size should be integer, got string"
    assert only_case(event).detail == "Field company.size should be integer, got string"


def test_same_missing_field_groups_cases_and_other_fields_do_not(
    lead_version: MakeVersion,
) -> None:
    version = lead_version()
    first = event_create(version, {"email": "a@example.com", "company": {}})
    second = event_create(version, {"email": "b@example.com", "company": {}})
    third = event_create(version, {"company": {"size": 3}})
    process_due()
    assert only_case(first).fingerprint == only_case(second).fingerprint
    assert only_case(first).fingerprint != only_case(third).fingerprint


@pytest.mark.parametrize(
    ("value", "expected", "matches"),
    [
        (3, "integer", True),
        (3.0, "integer", True),
        (3.5, "integer", False),
        (True, "integer", False),
        (3, "number", True),
        (3.5, "number", True),
        (False, "number", False),
        (True, "boolean", True),
        ("x", "string", True),
        (None, "null", True),
        (None, "string", False),
        ({}, "object", True),
        ([], "array", True),
        ([], "object", False),
    ],
)
def test_json_types(value: object, expected: str, matches: bool) -> None:
    assert json_type_matches(value, expected) is matches


def test_json_type_names() -> None:
    assert [json_type(v) for v in (True, 1, 1.5, "s", None, {}, [])] == [
        "boolean", "integer", "number", "string", "null", "object", "array",
    ]  # fmt: skip


# --- enrich -----------------------------------------------------------------------------------


def test_enrich_stores_context_and_explains_the_value(lead_version: MakeVersion) -> None:
    event = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    process_due()
    assert reload(event).context == {"segment": "enterprise"}
    (decision,) = decisions(event, Step.ENRICH)
    assert decision.explanation == 'Enriched segment = "enterprise" (rule segment, v1)'
    assert decision.inputs == {"payload.company.size": 800}
    assert decision.result == {"field": "segment", "value": "enterprise"}


def test_later_enrich_rules_read_earlier_ones_through_context(lead_version: MakeVersion) -> None:
    version = lead_version(
        enrich=[
            {"name": "segment", "expr": 'payload.company.size >= 500 ? "enterprise" : "smb"'},
            {"name": "priority", "expr": 'context.segment == "enterprise" ? 1 : 3'},
        ]
    )
    event = event_create(version, ENTERPRISE_EMEA_LEAD)
    process_due()
    assert reload(event).context == {"segment": "enterprise", "priority": 1}
    assert [d.explanation for d in decisions(event, Step.ENRICH)] == [
        'Enriched segment = "enterprise" (rule segment, v1)',
        "Enriched priority = 1 (rule priority, v1)",
    ]


def test_enrich_rule_error_opens_rule_error_and_stays_on_enrich(
    lead_version: MakeVersion, sink: Sink
) -> None:
    version = lead_version(enrich=[{"name": "ratio", "expr": "payload.company.size / 0"}])
    event = event_create(version, ENTERPRISE_EMEA_LEAD)
    result = process_due()

    assert result.crashed == 0
    event = reload(event)
    assert event.state == EventState.NEEDS_ATTENTION
    assert event.step == Step.ENRICH
    decision = decisions(event, Step.ENRICH)[0]
    assert not decision.ok
    assert decision.rule == "ratio"
    assert decision.result["error_class"] == "ZeroDivisionError"
    assert decision.explanation.startswith("Rule ratio failed: division by zero")
    case = only_case(event)
    assert case.reason_id == "rule_error"
    assert case.step == Step.ENRICH
    assert sink.requests() == []


def test_rule_error_in_one_event_does_not_stop_the_rest_of_the_batch(
    lead_version: MakeVersion, sink: Sink
) -> None:
    version = lead_version(
        required_fields=[],
        enrich=[{"name": "segment", "expr": 'payload.company.size >= 500 ? "enterprise" : "smb"'}],
    )
    broken = event_create(version, {"email": "no-company@example.com"})
    good = event_create(version, ENTERPRISE_EMEA_LEAD)
    result = process_due()

    assert result.written == 2
    assert reload(broken).state == EventState.NEEDS_ATTENTION
    assert only_case(broken).reason_id == "rule_error"
    assert decisions(broken, Step.ENRICH)[0].result["error_class"] == "MissingField"
    assert reload(good).state == EventState.SUCCEEDED
    assert len(sink.requests()) == 1


# --- route ------------------------------------------------------------------------------------


def test_first_matching_route_wins_and_says_why(
    lead_version: MakeVersion, lead_teams: dict[str, Team]
) -> None:
    event = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    process_due()
    event = reload(event)
    assert event.owner_team == lead_teams["emea-enterprise"]
    assert event.owner_user is None
    (decision,) = decisions(event, Step.ROUTE)
    assert decision.rule == "enterprise-emea"
    assert decision.inputs == {"context.segment": "enterprise", "payload.territory": "EMEA"}
    assert decision.explanation == (
        "Routed to emea-enterprise because segment was enterprise and territory was EMEA "
        "(rule enterprise-emea, v1)"
    )


def test_default_route_when_nothing_more_specific_matches(
    lead_version: MakeVersion, lead_teams: dict[str, Team]
) -> None:
    event = event_create(lead_version(), {**ENTERPRISE_EMEA_LEAD, "territory": "APAC"})
    process_due()
    assert reload(event).owner_team == lead_teams["inbound-sdr"]
    assert decisions(event, Step.ROUTE)[0].explanation == "Routed to inbound-sdr (rule default, v1)"


def test_no_matching_route_goes_to_the_workflow_owner(
    lead_version: MakeVersion, lead_teams: dict[str, Team]
) -> None:
    version = lead_version(
        routes=[{"name": "emea", "when": 'payload.territory == "EMEA"', "owner": "inbound-sdr"}]
    )
    event = event_create(version, {**ENTERPRISE_EMEA_LEAD, "territory": "APAC"})
    process_due()
    assert reload(event).owner_team == lead_teams["revenue-ops"]
    assert decisions(event, Step.ROUTE)[0].explanation == (
        "No route matched; routed to the workflow owner revenue-ops (v1)"
    )


def test_owner_without_active_members_falls_back_along_the_chain(
    lead_version: MakeVersion, lead_teams: dict[str, Team]
) -> None:
    membership = lead_teams["emea-enterprise"].memberships.get()
    membership.valid_to = timezone.now() - timedelta(minutes=1)
    membership.save()
    event = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    process_due()

    event = reload(event)
    assert event.owner_team == lead_teams["sales-managers"]
    (decision,) = decisions(event, Step.ROUTE)
    assert decision.ok
    assert decision.result["fallback"] == 1
    assert decision.explanation.endswith(
        ". Owner emea-enterprise has no active members; fell back to sales-managers "
        "(fallback 1 of 1)"
    )


def test_deactivated_people_do_not_count_as_members(
    lead_version: MakeVersion, lead_teams: dict[str, Team]
) -> None:
    person = lead_teams["emea-enterprise"].memberships.get().user
    person.is_active = False
    person.save()
    event = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    process_due()
    assert reload(event).owner_team == lead_teams["sales-managers"]


def test_inactive_fallback_is_skipped_for_the_next_one(
    lead_version: MakeVersion, lead_teams: dict[str, Team]
) -> None:
    Team.objects.filter(slug__in=["emea-enterprise", "sales-managers"]).update(active=False)
    version = lead_version(fallback_owners=["sales-managers", "revenue-ops"])
    event = event_create(version, ENTERPRISE_EMEA_LEAD)
    process_due()
    assert reload(event).owner_team == lead_teams["revenue-ops"]
    assert decisions(event, Step.ROUTE)[0].explanation.endswith(
        ". Owner emea-enterprise is inactive; fallback sales-managers (1 of 2) is inactive; "
        "fell back to revenue-ops (fallback 2 of 2)"
    )


def test_no_active_owner_anywhere_opens_no_owner(lead_version: MakeVersion, sink: Sink) -> None:
    Team.objects.filter(slug__in=["emea-enterprise", "sales-managers"]).update(active=False)
    event = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    process_due()

    event = reload(event)
    assert event.state == EventState.NEEDS_ATTENTION
    assert event.step == Step.ROUTE
    assert event.owner_team is None
    (decision,) = decisions(event, Step.ROUTE)
    assert not decision.ok
    case = only_case(event)
    assert case.reason_id == "no_owner"
    assert case.owner_team is None
    assert case.detail == (
        "Owner emea-enterprise is inactive; fallback sales-managers (1 of 1) is inactive; "
        "no active owner is left"
    )
    assert sink.requests() == []


def test_no_owner_with_an_empty_fallback_chain(lead_version: MakeVersion) -> None:
    Team.objects.filter(slug="emea-enterprise").update(active=False)
    event = event_create(lead_version(fallback_owners=[]), ENTERPRISE_EMEA_LEAD)
    process_due()
    assert only_case(event).detail == (
        "Owner emea-enterprise is inactive and the workflow has no fallback owners"
    )


def test_route_to_a_person(lead_version: MakeVersion, sink: Sink) -> None:
    ada = UserFactory(username="ada")
    version = lead_version(routes=[{"name": "ada", "when": "true", "owner": "user:ada"}])
    event = event_create(version, ENTERPRISE_EMEA_LEAD)
    process_due()
    event = reload(event)
    assert event.owner_user == ada
    assert event.owner_team is None
    assert sink.requests()[0].json()["owner"] == "user:ada"


def test_deactivated_person_falls_back(
    lead_version: MakeVersion, lead_teams: dict[str, Team]
) -> None:
    UserFactory(username="ada", is_active=False)
    version = lead_version(routes=[{"name": "ada", "when": "true", "owner": "user:ada"}])
    event = event_create(version, ENTERPRISE_EMEA_LEAD)
    process_due()
    assert reload(event).owner_team == lead_teams["sales-managers"]
    assert "Owner user:ada is deactivated; fell back to sales-managers" in (
        decisions(event, Step.ROUTE)[0].explanation
    )


def test_team_with_a_new_member_is_active_again(
    lead_version: MakeVersion, lead_teams: dict[str, Team]
) -> None:
    team = TeamFactory(slug="night-shift")
    version = lead_version(routes=[{"name": "night", "when": "true", "owner": "night-shift"}])
    first = event_create(version, ENTERPRISE_EMEA_LEAD)
    process_due()
    MembershipFactory(team=team)
    second = event_create(version, ENTERPRISE_EMEA_LEAD)
    process_due()
    assert reload(first).owner_team == lead_teams["sales-managers"]
    assert reload(second).owner_team == team


def test_route_rule_that_is_not_a_boolean_is_a_rule_error(lead_version: MakeVersion) -> None:
    version = lead_version(routes=[{"name": "odd", "when": "payload.email", "owner": "x"}])
    event = event_create(version, ENTERPRISE_EMEA_LEAD)
    process_due()
    case = only_case(event)
    assert case.reason_id == "rule_error"
    assert case.step == Step.ROUTE
    assert case.detail == 'Rule odd failed: returned "ada@example.com", not true or false'


# --- review -----------------------------------------------------------------------------------


def test_review_rule_opens_review_required_before_the_action_runs(
    lead_version: MakeVersion, lead_teams: dict[str, Team], sink: Sink
) -> None:
    event = event_create(lead_version(), {**ENTERPRISE_EMEA_LEAD, "amount": 5000})
    process_due()

    event = reload(event)
    assert event.state == EventState.NEEDS_ATTENTION
    assert event.step == Step.REVIEW
    assert event.attempts.count() == 0
    assert sink.requests() == []
    (decision,) = decisions(event, Step.REVIEW)
    assert decision.rule == "big-refund"
    assert decision.explanation == (
        "Held for review: Refunds above 1000 need a manager "
        "(rule big-refund matched because amount was 5000, v1)"
    )
    case = only_case(event)
    assert case.reason_id == "review_required"
    assert case.owner_team == lead_teams["emea-enterprise"]
    assert case.detail.startswith("Refunds above 1000 need a manager")


def test_cleared_review_lets_the_action_run(lead_version: MakeVersion, sink: Sink) -> None:
    event = event_create(
        lead_version(), {**ENTERPRISE_EMEA_LEAD, "amount": 5000}, review_cleared=True
    )
    process_due()
    assert reload(event).state == EventState.SUCCEEDED
    assert decisions(event, Step.REVIEW)[0].explanation == (
        "Review big-refund matched because amount was 5000; already cleared by a person (v1)"
    )
    assert len(sink.requests()) == 1


def test_review_that_does_not_match_is_recorded(lead_version: MakeVersion) -> None:
    event = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    process_due()
    assert decisions(event, Step.REVIEW)[0].explanation == (
        "Review rule big-refund did not match (v1)"
    )


def test_review_rule_error_is_a_rule_error(lead_version: MakeVersion, sink: Sink) -> None:
    version = lead_version(
        review=[{"name": "big", "when": "payload.amount > 1000", "reason": "Big"}]
    )
    event = event_create(version, ENTERPRISE_EMEA_LEAD)
    process_due()
    case = only_case(event)
    assert case.reason_id == "rule_error"
    assert case.step == Step.REVIEW
    assert case.detail == "Rule big failed: no such field: amount"
    assert sink.requests() == []
