"""The destination's callback closes an event exactly as the engine closes it on an outcome."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from audit.actors import actor_for_token
from exceptions.models import ExceptionCase
from tests.factories import ENTERPRISE_EMEA_LEAD, event_create
from tests.support.engine import process_due, reload
from tests.support.sinks import Reply, Sink
from workflows.models import Decision, Event, EventState, OutcomeStatus, Step, WorkflowVersion
from workflows.services.outcomes import outcome_report

pytestmark = pytest.mark.django_db

MakeVersion = Callable[..., WorkflowVersion]
CRM = actor_for_token("crm-callbacks")


def awaiting_confirmation(lead_version: MakeVersion) -> Event:
    event = event_create(lead_version(outcome={"confirm_within": 600}), ENTERPRISE_EMEA_LEAD)
    process_due()
    event = reload(event)
    assert event.state == EventState.DELIVERED
    assert event.outcome_due_at is not None
    return event


def test_an_achieved_callback_closes_the_event_and_clears_its_confirmation_deadline(
    lead_version: MakeVersion, sink: Sink
) -> None:
    event = awaiting_confirmation(lead_version)

    outcome_report(
        event=event, status=OutcomeStatus.ACHIEVED, evidence={"crm_id": "L-1"}, actor=CRM
    )

    event = reload(event)
    assert event.state == EventState.SUCCEEDED
    assert event.completed_at is not None
    assert event.outcome_due_at is None
    assert event.next_attempt_at is None


def test_a_failed_callback_opens_outcome_failed_and_clears_the_confirmation_deadline(
    lead_version: MakeVersion, lead_teams, sink: Sink
) -> None:
    event = awaiting_confirmation(lead_version)

    outcome_report(event=event, status=OutcomeStatus.FAILED, evidence={"why": "dup"}, actor=CRM)

    event = reload(event)
    assert event.state == EventState.NEEDS_ATTENTION
    assert event.outcome_due_at is None
    case = ExceptionCase.objects.get(event=event)
    assert (case.reason_id, case.step) == ("outcome_failed", Step.OUTCOME)
    assert case.owner_team == lead_teams["emea-enterprise"]
    assert case.detail == 'The destination reported the outcome failed. Evidence: {"why": "dup"}'


def test_an_achieved_callback_for_an_event_waiting_for_a_retry_settles_it_and_cancels_the_retry(
    lead_version: MakeVersion, sink: Sink
) -> None:
    # The destination answered 503 but did process the event, and says so by callback.
    sink.script("/crm/leads", Reply(503))
    event = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    process_due()
    assert reload(event).state == EventState.RETRY_SCHEDULED

    outcome_report(
        event=event, status=OutcomeStatus.ACHIEVED, evidence={"crm_id": "L-9"}, actor=CRM
    )

    event = reload(event)
    assert event.state == EventState.SUCCEEDED
    assert event.next_attempt_at is None
    decision = Decision.objects.filter(event=event, rule="callback").get()
    assert decision.explanation == (
        'Destination reported the outcome achieved (evidence: {"crm_id": "L-9"}) while a retry '
        "was scheduled; the retry is cancelled."
    )
    assert process_due().claimed == 0
    assert len(sink.requests()) == 1, "the retry never went out"


def test_a_failed_callback_for_an_event_waiting_for_a_retry_leaves_the_retry(
    lead_version: MakeVersion, sink: Sink
) -> None:
    sink.script("/crm/leads", Reply(503))
    event = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    process_due()
    outcome_report(event=event, status=OutcomeStatus.FAILED, evidence={}, actor=CRM)
    event = reload(event)
    assert event.state == EventState.RETRY_SCHEDULED
    assert event.next_attempt_at is not None
