"""The dry run: the engine's own steps with writes turned off, deciding what the engine decides."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEntry
from exceptions.models import ExceptionCase
from tests.factories import ENTERPRISE_EMEA_LEAD, event_create
from tests.support.engine import process_due, reload
from tests.support.sinks import Sink
from workflows.models import Decision, Event, EventState, Step, Team, WorkflowVersion
from workflows.owners import owner_ref
from workflows.services.engine import DryRun, event_dry_run, payload_dry_run
from workflows.signals import attention_needed

pytestmark = pytest.mark.django_db

MakeVersion = Callable[..., WorkflowVersion]
BEFORE_ACTION = (Step.VALIDATE, Step.ENRICH, Step.ROUTE, Step.REVIEW)


def facts(decisions: Iterable[Decision]) -> list[tuple[Any, ...]]:
    """What a decision says, without when it was made or which event it belongs to."""
    return [
        (d.step, d.rule, d.ok, d.explanation, d.inputs, d.result)
        for d in decisions
        if d.step in BEFORE_ACTION
    ]


def dry_run_then_process(version: WorkflowVersion, payload: dict[str, Any]) -> tuple[DryRun, Event]:
    dry = payload_dry_run(version=version, payload=payload)
    event = event_create(version, payload)
    process_due()
    return dry, reload(event)


def assert_same_story(dry: DryRun, event: Event) -> None:
    recorded = Decision.objects.filter(event=event).order_by("created_at", "id")
    assert facts(dry.decisions) == facts(recorded)
    assert dry.owner == owner_ref(event.owner_user or event.owner_team)
    cases = list(ExceptionCase.objects.filter(event=event))
    assert [(c.reason_id, c.detail, c.step) for c in cases] == (
        [(dry.reason_code, dry.detail, dry.stopped_at)] if dry.reason_code else []
    )


# --- where the replay preview used to disagree with the engine ----------------------------------


def test_no_matching_route_goes_to_the_workflow_owner_in_the_dry_run_as_in_the_engine(
    lead_version: MakeVersion, lead_teams: dict[str, Team]
) -> None:
    version = lead_version(
        routes=[{"name": "emea", "when": 'payload.territory == "EMEA"', "owner": "inbound-sdr"}]
    )
    dry, event = dry_run_then_process(version, {**ENTERPRISE_EMEA_LEAD, "territory": "APAC"})

    assert dry.owner == "revenue-ops"
    assert dry.route_decision is not None
    assert dry.route_decision.explanation == (
        "No route matched; routed to the workflow owner revenue-ops (v1)"
    )
    assert dry.reason_code == "" and dry.verdict == "would route and run the action"
    assert_same_story(dry, event)


def test_a_route_rule_that_is_not_a_boolean_is_a_rule_error_in_the_dry_run_as_in_the_engine(
    lead_version: MakeVersion,
) -> None:
    version = lead_version(routes=[{"name": "odd", "when": "payload.email", "owner": "x"}])
    dry, event = dry_run_then_process(version, ENTERPRISE_EMEA_LEAD)

    assert (dry.stopped_at, dry.reason_code) == (Step.ROUTE, "rule_error")
    assert dry.detail == 'Rule odd failed: returned "ada@example.com", not true or false'
    assert dry.verdict == "would stop on a rule error (rule_error)"
    assert_same_story(dry, event)


@pytest.mark.parametrize(
    "payload",
    [
        {"email": 7, "company": {}},
        {"email": "ada@example.com", "company": "Analytical Engines"},
        {"email": "ada@example.com", "company": {"size": 3.0}},  # a whole number: valid
        {"email": "ada@example.com", "company": {"size": 3.5}},
    ],
    ids=["wrong-type-and-missing", "parent-not-an-object", "whole-float", "fraction"],
)
def test_the_dry_run_validates_paths_and_types_in_the_engines_words(
    lead_version: MakeVersion, payload: dict[str, Any]
) -> None:
    dry, event = dry_run_then_process(lead_version(), payload)

    validation = next(d for d in dry.decisions if d.step == Step.VALIDATE)
    assert validation.explanation == (
        Decision.objects.get(event=event, step=Step.VALIDATE).explanation
    )
    assert_same_story(dry, event)


def test_a_wrong_type_and_a_missing_field_are_named_as_the_engine_names_them(
    lead_version: MakeVersion,
) -> None:
    dry = payload_dry_run(version=lead_version(), payload={"email": 7, "company": {}})
    assert dry.detail == (
        "Field email should be string, got integer; Missing required field company.size"
    )
    assert dry.verdict == "would stop at validation (validation_failed)"
    assert dry.case_owner == "revenue-ops"


# --- the rest of the story ------------------------------------------------------------------------


def test_a_held_review_is_the_engines_hold_with_its_case_detail(
    lead_version: MakeVersion, lead_teams: dict[str, Team]
) -> None:
    dry, event = dry_run_then_process(lead_version(), {**ENTERPRISE_EMEA_LEAD, "amount": 5000})

    assert dry.verdict == "would wait for review (review_required)"
    assert dry.owner == dry.case_owner == "emea-enterprise"
    assert event.state == EventState.NEEDS_ATTENTION
    assert_same_story(dry, event)


def test_no_active_owner_is_no_owner_in_both(lead_version: MakeVersion) -> None:
    Team.objects.filter(slug__in=["emea-enterprise", "sales-managers"]).update(active=False)
    dry, event = dry_run_then_process(lead_version(), ENTERPRISE_EMEA_LEAD)

    assert dry.verdict == "would find no owner (no_owner)"
    assert dry.owner == "" and dry.case_owner == ""
    assert_same_story(dry, event)


def test_a_payload_that_passes_reaches_the_action_and_names_its_destination(
    lead_version: MakeVersion, sink: Sink
) -> None:
    version = lead_version()
    dry = payload_dry_run(version=version, payload=ENTERPRISE_EMEA_LEAD)

    assert dry.verdict == "would route and run the action"
    assert (dry.action, dry.destination) == ("webhook", sink.url("/crm/leads"))
    assert dry.context == {"segment": "enterprise"}
    assert [d.step for d in dry.decisions] == list(BEFORE_ACTION)


def test_a_dry_run_saves_nothing_signals_nobody_and_delivers_nothing(
    lead_version: MakeVersion, sink: Sink
) -> None:
    version = lead_version()
    signals: list[dict[str, Any]] = []

    def heard(sender: Any, **kwargs: Any) -> None:
        signals.append(kwargs)

    attention_needed.connect(heard, weak=False)
    try:
        with CaptureQueriesContext(connection) as queries:
            for payload in (
                ENTERPRISE_EMEA_LEAD,
                {"email": 7},
                {**ENTERPRISE_EMEA_LEAD, "amount": 5000},
            ):
                payload_dry_run(version=version, payload=payload)
    finally:
        attention_needed.disconnect(heard)

    writes = [q["sql"] for q in queries if not q["sql"].lstrip().upper().startswith("SELECT")]
    assert writes == []
    assert signals == []
    assert sink.requests() == []
    assert not Event.objects.exists() and not Decision.objects.exists()
    assert not AuditEntry.objects.exists()


def test_an_events_dry_run_runs_under_the_current_version_or_its_own(
    lead_version: MakeVersion,
) -> None:
    original = lead_version()
    event = event_create(original, ENTERPRISE_EMEA_LEAD)
    lead_version(routes=[{"name": "all", "when": "true", "owner": "inbound-sdr"}])
    event = reload(event)  # as the case page loads it, after the new version

    assert event_dry_run(event=event).owner == "inbound-sdr"
    assert event_dry_run(event=event).version_number == 2
    assert event_dry_run(event=event, version="original").owner == "emea-enterprise"
    edited = event_dry_run(event=event, payload={"email": "x@y.z"})
    assert edited.reason_code == "validation_failed"


def test_the_dry_run_shows_the_destination_redacted(lead_version: MakeVersion, sink: Sink) -> None:
    url = sink.url("/crm/leads?token=s3cret").replace("http://", "http://bot:pw@")
    event = event_create(lead_version(url=url), ENTERPRISE_EMEA_LEAD)
    dry = event_dry_run(event=event)
    assert dry.destination.endswith("/crm/leads?redacted")
    assert "s3cret" not in dry.destination and "pw@" not in dry.destination
