"""Deliver and outcome: the signed webhook, how each answer is classified, retries, outcomes."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from exceptions.models import ExceptionCase
from tests.factories import ENTERPRISE_EMEA_LEAD, event_create
from tests.support.engine import process_due, reload
from tests.support.sinks import Reply, Sink, unused_url
from workflows.models import (
    Attempt,
    AttemptStatus,
    Decision,
    EventState,
    Outcome,
    OutcomeSource,
    OutcomeStatus,
    Step,
    WorkflowVersion,
)
from workflows.services.engine import batch, outcomes_expire_due

pytestmark = pytest.mark.django_db

MakeVersion = Callable[..., WorkflowVersion]
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def last_decision(event, step: str) -> Decision:
    return Decision.objects.filter(event=event, step=step).order_by("created_at", "id").last()


def reasons(event) -> list[str]:
    return list(ExceptionCase.objects.filter(event=event).values_list("reason_id", flat=True))


def test_delivery_posts_the_signed_document_and_succeeds(
    lead_version: MakeVersion, sink: Sink
) -> None:
    version = lead_version()
    event = event_create(version, ENTERPRISE_EMEA_LEAD)
    process_due()

    (request,) = sink.requests("/crm/leads")
    assert request.headers["webhook-id"] == str(event.pk)
    assert request.headers["content-type"] == "application/json"
    body = request.verified(version.workflow.signing_secret)
    assert body == {
        "event_id": event.pk,
        "workflow": "lead-routing",
        "version": 1,
        "payload": ENTERPRISE_EMEA_LEAD,
        "context": {"segment": "enterprise"},
        "owner": "emea-enterprise",
    }

    event = reload(event)
    assert event.state == EventState.SUCCEEDED
    assert event.step == Step.OUTCOME
    assert event.completed_at is not None
    assert event.attempt_count == 1
    (attempt,) = event.attempts.all()
    assert attempt.number == 1
    assert attempt.trigger == "auto"
    assert attempt.actor is None
    assert attempt.actor_label == "system"
    assert attempt.status == AttemptStatus.SUCCEEDED
    assert attempt.http_status == 200
    assert attempt.started_at <= attempt.finished_at
    deliver = last_decision(event, Step.DELIVER)
    assert re.fullmatch(
        rf"Delivered to {re.escape(sink.url('/crm/leads'))} : HTTP 200 in \d+ ms \(attempt 1\)",
        deliver.explanation,
    )
    (outcome,) = event.outcomes.all()
    assert (outcome.status, outcome.source) == (OutcomeStatus.ACHIEVED, OutcomeSource.DELIVERY)
    assert outcome.evidence == {"http_status": 200}
    assert last_decision(event, Step.OUTCOME).explanation == (
        "Outcome achieved: the destination answered HTTP 200 (v1)"
    )
    assert [d.step for d in event.decisions.order_by("created_at", "id")] == [
        "validate", "enrich", "route", "review", "deliver", "outcome",
    ]  # fmt: skip


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_any_2xx_is_delivered(lead_version: MakeVersion, sink: Sink, status: int) -> None:
    event = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    sink.script("/crm/leads", Reply(status, body=b""))
    process_due()
    assert reload(event).state == EventState.SUCCEEDED


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(lead_version: MakeVersion, sink: Sink, status: int) -> None:
    event = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    sink.script("/crm/leads", Reply(status, body=b"busy"))
    process_due()

    event = reload(event)
    assert event.state == EventState.RETRY_SCHEDULED
    assert event.step == Step.DELIVER
    (attempt,) = event.attempts.all()
    assert attempt.status == AttemptStatus.FAILED
    assert attempt.http_status == status
    assert attempt.error_class == f"HTTP {status}"
    assert attempt.error_message == "busy"
    assert reasons(event) == []
    assert last_decision(event, Step.DELIVER).explanation == (
        f"HTTP {status} from {sink.url('/crm/leads')}; retry 1 of 6 in 5 seconds"
    )


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 422, 301, 302, 307])
def test_other_answers_are_rejected_at_once(
    lead_version: MakeVersion, sink: Sink, status: int
) -> None:
    event = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    sink.script("/crm/leads", Reply(status, body=b"no such lead list"))
    process_due()

    event = reload(event)
    assert event.state == EventState.NEEDS_ATTENTION
    assert event.step == Step.DELIVER
    (attempt,) = event.attempts.all()
    assert attempt.status == AttemptStatus.REJECTED
    case = ExceptionCase.objects.get(event=event)
    assert case.reason_id == "delivery_rejected"
    assert case.detail.startswith(f"HTTP {status} from {sink.url('/crm/leads')} (attempt 1)")
    assert last_decision(event, Step.DELIVER).explanation == (
        f"HTTP {status} from {sink.url('/crm/leads')}; rejected, not retried (attempt 1)"
    )
    assert len(sink.requests()) == 1


def test_rejections_with_the_same_status_group_together(
    lead_version: MakeVersion, sink: Sink
) -> None:
    version = lead_version()
    events = [event_create(version, ENTERPRISE_EMEA_LEAD) for _ in range(3)]
    sink.script("/crm/leads", Reply(400), Reply(400), Reply(422))
    process_due()
    fingerprints = [ExceptionCase.objects.get(event=e).fingerprint for e in events]
    assert len(set(fingerprints)) == 2


def test_connection_refused_is_retried(lead_version: MakeVersion) -> None:
    event = event_create(lead_version(url=unused_url("/crm/leads")), ENTERPRISE_EMEA_LEAD)
    process_due()
    event = reload(event)
    assert event.state == EventState.RETRY_SCHEDULED
    attempt = event.attempts.get()
    assert attempt.error_class == "ConnectError"
    assert attempt.http_status is None
    assert "; retry 1 of 6 in 5 seconds" in last_decision(event, Step.DELIVER).explanation


def test_timeout_is_retried(lead_version: MakeVersion, sink: Sink) -> None:
    version = lead_version(
        action={"type": "webhook", "url": sink.url("/slow"), "timeout_seconds": 0.3}
    )
    sink.script("/slow", Reply(200, delay=1.5))
    event = event_create(version, ENTERPRISE_EMEA_LEAD)
    process_due()
    event = reload(event)
    assert event.state == EventState.RETRY_SCHEDULED
    assert event.attempts.get().error_class == "ReadTimeout"


def test_redirects_are_not_followed(lead_version: MakeVersion, sink: Sink) -> None:
    event = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    sink.script("/crm/leads", Reply(302))
    process_due()
    assert reasons(event) == ["delivery_rejected"]
    assert len(sink.requests()) == 1


def test_unusable_signing_secret_is_rejected_without_sending(
    lead_version: MakeVersion, sink: Sink
) -> None:
    version = lead_version()
    version.workflow.signing_secret = ""
    version.workflow.save()
    event = event_create(version, ENTERPRISE_EMEA_LEAD)
    process_due()
    assert reasons(event) == ["delivery_rejected"]
    assert reload(event).attempts.get().error_class == "SigningError"
    assert sink.requests() == []


def test_retries_follow_the_schedule_then_delivery_failed(
    lead_version: MakeVersion, sink: Sink, time_machine
) -> None:
    time_machine.move_to(START, tick=False)
    version = lead_version(retry={"schedule": [5, 300, 1800]})
    secret = version.workflow.signing_secret
    event = event_create(version, ENTERPRISE_EMEA_LEAD)
    sink.script("/crm/leads", *[Reply(503)] * 4)
    url = sink.url("/crm/leads")

    expected = [
        (timedelta(seconds=5), f"HTTP 503 from {url}; retry 1 of 3 in 5 seconds"),
        (timedelta(minutes=5), f"HTTP 503 from {url}; retry 2 of 3 in 5 minutes"),
        (timedelta(minutes=30), f"HTTP 503 from {url}; retry 3 of 3 in 30 minutes"),
    ]
    for wait, explanation in expected:
        assert process_due().written == 1
        event = reload(event)
        assert event.state == EventState.RETRY_SCHEDULED
        assert event.next_attempt_at == timezone.now() + wait
        assert last_decision(event, Step.DELIVER).explanation == explanation
        # Not due a moment before its time; due at it.
        time_machine.shift(wait - timedelta(seconds=1))
        assert process_due().claimed == 0
        time_machine.shift(timedelta(seconds=1))

    process_due()
    event = reload(event)
    assert event.state == EventState.NEEDS_ATTENTION
    assert event.step == Step.DELIVER
    assert last_decision(event, Step.DELIVER).explanation == (
        f"HTTP 503 from {url}; no retries left after 4 attempts (attempt 4)"
    )
    case = ExceptionCase.objects.get(event=event)
    assert case.reason_id == "delivery_failed"
    assert case.detail == f"Delivery to {url} failed 4 times; last: HTTP 503 from {url}"
    attempts = list(event.attempts.order_by("number"))
    assert [a.status for a in attempts] == ["failed", "failed", "failed", "exhausted"]
    assert [a.trigger for a in attempts] == ["auto"] * 4
    gaps = [b.started_at - a.started_at for a, b in zip(attempts, attempts[1:], strict=False)]
    assert gaps == [timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30)]

    requests = sink.requests("/crm/leads")
    assert len(requests) == 4
    assert {r.headers["webhook-id"] for r in requests} == {str(event.pk)}
    assert len({r.headers["webhook-timestamp"] for r in requests}) == 4
    for request in requests:
        # Each attempt is signed afresh, at its own time.
        time_machine.move_to(
            datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), tz=UTC), tick=False
        )
        assert request.verified(secret)["event_id"] == event.pk


def test_retry_then_success(lead_version: MakeVersion, sink: Sink, time_machine) -> None:
    time_machine.move_to(START, tick=False)
    event = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    sink.script("/crm/leads", Reply(500), Reply(200))
    process_due()
    time_machine.shift(timedelta(seconds=5))
    process_due()
    event = reload(event)
    assert event.state == EventState.SUCCEEDED
    assert [a.status for a in event.attempts.order_by("number")] == ["failed", "succeeded"]
    assert "(attempt 2)" in last_decision(event, Step.DELIVER).explanation


def test_empty_schedule_fails_on_the_first_error(lead_version: MakeVersion, sink: Sink) -> None:
    event = event_create(lead_version(retry={"schedule": []}), ENTERPRISE_EMEA_LEAD)
    sink.script("/crm/leads", Reply(503))
    process_due()
    assert reasons(event) == ["delivery_failed"]
    assert reload(event).attempts.get().status == AttemptStatus.EXHAUSTED


def test_batch_deliveries_run_side_by_side(lead_version: MakeVersion, sink: Sink) -> None:
    version = lead_version()
    events = [event_create(version, ENTERPRISE_EMEA_LEAD) for _ in range(6)]
    sink.script("/crm/leads", *[Reply(200, delay=0.5)] * 6)
    started = time.monotonic()
    result = process_due()
    elapsed = time.monotonic() - started
    assert result.written == 6
    assert all(reload(e).state == EventState.SUCCEEDED for e in events)
    assert elapsed < 2.0, f"six 0.5 s deliveries took {elapsed:.2f} s: they ran one by one"


def test_action_none_is_its_own_outcome(lead_version: MakeVersion, sink: Sink) -> None:
    event = event_create(lead_version(action={"type": "none"}), ENTERPRISE_EMEA_LEAD)
    process_due()
    event = reload(event)
    assert event.state == EventState.SUCCEEDED
    assert event.attempts.count() == 0
    assert sink.requests() == []
    assert last_decision(event, Step.DELIVER).explanation == (
        "No action to run: the workflow's action is none (v1)"
    )
    outcome = event.outcomes.get()
    assert (outcome.status, outcome.source, outcome.evidence) == (
        "achieved", "delivery", {"action": "none"},
    )  # fmt: skip


# --- waiting for the destination to confirm ---------------------------------------------------


def test_confirmation_window_then_expiry_opens_outcome_missing(
    lead_version: MakeVersion, lead_teams, time_machine
) -> None:
    time_machine.move_to(START, tick=False)
    event = event_create(lead_version(outcome={"confirm_within": 600}), ENTERPRISE_EMEA_LEAD)
    process_due()

    event = reload(event)
    assert event.state == EventState.DELIVERED
    assert event.step == Step.OUTCOME
    assert event.delivered_at == START
    assert event.outcome_due_at == START + timedelta(minutes=10)
    assert event.outcomes.count() == 0
    assert last_decision(event, Step.OUTCOME).explanation == (
        "Waiting up to 10 minutes for the destination to confirm the outcome "
        "(until 2026-03-02 09:10:00 UTC, v1)"
    )

    assert outcomes_expire_due(now=START + timedelta(minutes=9)) == 0
    assert outcomes_expire_due(now=START + timedelta(minutes=10)) == 1
    event = reload(event)
    assert event.state == EventState.NEEDS_ATTENTION
    outcome = event.outcomes.get()
    assert (outcome.status, outcome.source) == (OutcomeStatus.EXPIRED, OutcomeSource.DEADLINE)
    decision = last_decision(event, Step.OUTCOME)
    assert not decision.ok
    assert (
        decision.explanation == "No outcome confirmed within 10 minutes of delivery; expired (v1)"
    )
    case = ExceptionCase.objects.get(event=event)
    assert case.reason_id == "outcome_missing"
    assert case.owner_team == lead_teams["emea-enterprise"]
    assert outcomes_expire_due(now=START + timedelta(hours=1)) == 0


def report_during_delivery(monkeypatch: pytest.MonkeyPatch, status: str) -> None:
    """The destination calls back before its 2xx reaches the engine."""
    real = batch.webhooks_deliver

    def deliver_and_report(requests, **kwargs):
        for index, result in real(requests, **kwargs):
            Outcome.objects.create(
                event_id=int(requests[index].webhook_id),
                status=status,
                source=OutcomeSource.CALLBACK,
                evidence={"crm_id": "L-1"},
                reported_by="crm",
            )
            yield index, result

    monkeypatch.setattr(batch, "webhooks_deliver", deliver_and_report)


def test_callback_that_overtakes_the_2xx_is_applied_at_once(
    lead_version: MakeVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    report_during_delivery(monkeypatch, OutcomeStatus.ACHIEVED)
    event = event_create(lead_version(outcome={"confirm_within": 600}), ENTERPRISE_EMEA_LEAD)
    process_due()
    event = reload(event)
    assert event.state == EventState.SUCCEEDED
    assert event.outcome_due_at is None
    assert last_decision(event, Step.OUTCOME).explanation == (
        "Outcome achieved: confirmed by the callback from crm before the delivery finished (v1)"
    )


def test_failed_callback_that_overtakes_the_2xx_opens_outcome_failed(
    lead_version: MakeVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    report_during_delivery(monkeypatch, OutcomeStatus.FAILED)
    event = event_create(lead_version(outcome={"confirm_within": 600}), ENTERPRISE_EMEA_LEAD)
    process_due()
    event = reload(event)
    assert event.state == EventState.NEEDS_ATTENTION
    assert reasons(event) == ["outcome_failed"]


def test_report_recorded_while_processing_is_honoured_at_the_deadline(
    lead_version: MakeVersion, time_machine
) -> None:
    time_machine.move_to(START, tick=False)
    event = event_create(lead_version(outcome={"confirm_within": 600}), ENTERPRISE_EMEA_LEAD)
    process_due()
    time_machine.shift(timedelta(minutes=1))
    Outcome.objects.create(
        event=event, status=OutcomeStatus.ACHIEVED, source=OutcomeSource.CALLBACK, evidence={}
    )
    assert outcomes_expire_due(now=START + timedelta(minutes=10)) == 1
    event = reload(event)
    assert event.state == EventState.SUCCEEDED
    assert not event.outcomes.filter(status=OutcomeStatus.EXPIRED).exists()
    assert reasons(event) == []


def test_attempt_error_messages_are_truncated(lead_version: MakeVersion, sink: Sink) -> None:
    event = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    sink.script("/crm/leads", Reply(400, body=b"x" * 50_000))
    process_due()
    attempt = Attempt.objects.get(event=event)
    assert 0 < len(attempt.error_message) <= 2000
