"""An operator who handled a case by hand records the outcome: the case and the event close on it."""

from __future__ import annotations

import pytest

from audit.models import AuditEntry
from exceptions.actions import ACTIONS
from exceptions.models import CaseState, ExceptionCase, Resolution
from exceptions.services import CaseActionRefused, case_record_outcome
from tests import factories
from workflows.models import (
    Decision,
    Event,
    EventState,
    Outcome,
    OutcomeSource,
    OutcomeStatus,
)
from workflows.services.manual_outcomes import outcome_record_manual
from workflows.services.outcomes import OutcomeConflict

pytestmark = pytest.mark.django_db

EVIDENCE = {"by_hand": "Entered the lead in the CRM myself", "link": "https://crm.example/l/9"}


def test_an_achieved_outcome_resolves_the_case_and_the_event_succeeds(operator) -> None:
    case = factories.case(reason="delivery_failed", step="deliver", key="ReadTimeout")
    case_record_outcome(
        case=case, actor=operator, status="achieved", evidence=EVIDENCE, note="CRM was down"
    )
    case.refresh_from_db()
    assert case.state == CaseState.RESOLVED
    assert case.resolution_code == Resolution.HANDLED_MANUALLY
    event = Event.objects.get(pk=case.event_id)
    assert event.state == EventState.SUCCEEDED and event.completed_at is not None
    outcome = Outcome.objects.get(event=event)
    assert (outcome.status, outcome.source) == (OutcomeStatus.ACHIEVED, OutcomeSource.MANUAL)
    assert outcome.evidence == EVIDENCE and outcome.reported_by == operator.username
    decision = Decision.objects.get(event=event, rule="manual")
    assert decision.ok and "achieved by hand: recorded by olivia" in decision.explanation
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"case.record_outcome", "outcome.record_manual"} <= actions
    assert AuditEntry.objects.get(action="outcome.record_manual").reason == "CRM was down"


def test_a_failed_outcome_closes_the_event_as_failed_without_a_new_case(operator) -> None:
    case = factories.case(reason="review_required", step="review", key="big-refund")
    case_record_outcome(case=case, actor=operator, status="failed", evidence=EVIDENCE)
    event = Event.objects.get(pk=case.event_id)
    assert event.state == EventState.FAILED
    outcome = Outcome.objects.get(event=event)
    assert (outcome.status, outcome.source) == (OutcomeStatus.FAILED, OutcomeSource.MANUAL)
    # The person reporting the failure is the one a case would ask: none opens.
    assert ExceptionCase.objects.filter(event=event).count() == 1


def test_recording_is_refused_while_another_case_holds_the_event(operator) -> None:
    case = factories.case()
    event = Event.objects.get(pk=case.event_id)
    other = ExceptionCase.objects.create(
        event=event,
        workflow=event.workflow,
        reason_id="no_owner",
        step="route",
        detail="No owner",
        fingerprint="x",
    )
    with pytest.raises(CaseActionRefused, match=f"Case {other.pk} is also open"):
        case_record_outcome(case=case, actor=operator, status="achieved", evidence=EVIDENCE)
    case.refresh_from_db()
    assert case.is_open and not Outcome.objects.exists()


def test_an_event_that_succeeded_takes_no_manual_outcome(operator) -> None:
    flow = factories.workflow()
    event = factories.event_create(flow.current_version, factories.GOOD_LEAD, state="succeeded")
    with pytest.raises(OutcomeConflict, match="no outcome left to record"):
        outcome_record_manual(event=event, status="achieved", evidence=EVIDENCE, actor=operator)


def test_a_delivered_event_waiting_for_confirmation_closes_on_a_manual_report(operator) -> None:
    flow = factories.workflow()
    event = factories.event_create(flow.current_version, factories.GOOD_LEAD, state="delivered")
    outcome_record_manual(event=event, status="achieved", evidence=EVIDENCE, actor=operator)
    event.refresh_from_db()
    assert event.state == EventState.SUCCEEDED and event.outcome_due_at is None


def test_the_case_page_offers_it_and_the_action_needs_evidence(client, operator) -> None:
    assert "record_outcome" in ACTIONS
    case = factories.case()
    client.force_login(operator)
    page = client.get(f"/exceptions/{case.pk}/").content.decode()
    assert 'data-testid="record-outcome"' in page and 'id="outcome-id_evidence"' in page

    url = f"/exceptions/{case.pk}/record_outcome/"
    missing = client.post(url, {"version": case.version, "status": "achieved"})
    assert missing.status_code == 422
    assert not Outcome.objects.exists()

    done = client.post(
        url,
        {"version": case.version, "status": "achieved", "evidence": "Called the customer"},
        HTTP_HX_REQUEST="true",
    )
    assert done.status_code == 200
    assert "the outcome you recorded closes its event" in done.content.decode()
    outcome = Outcome.objects.get(event_id=case.event_id)
    assert outcome.evidence == {"by_hand": "Called the customer"}


def test_an_auditor_cannot_record_an_outcome(client, auditor) -> None:
    case = factories.case()
    client.force_login(auditor)
    response = client.post(
        f"/exceptions/{case.pk}/record_outcome/",
        {"version": case.version, "status": "achieved", "evidence": "x"},
    )
    assert response.status_code == 403
    assert not Outcome.objects.exists()
