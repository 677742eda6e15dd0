"""End to end: events processed by a real Celery worker (prefork, Redis, the test database)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from exceptions.models import ExceptionCase
from tests.factories import ENTERPRISE_EMEA_LEAD, event_create
from tests.support.sinks import Reply, Sink
from tests.support.waits import wait_until
from tests.support.workers import CeleryWorker, purge_queue
from workflows.dispatch import EVENTS_QUEUE, wake_workers
from workflows.models import Event, WorkflowVersion

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.timeout(60),
]

MakeVersion = Callable[..., WorkflowVersion]


@pytest.fixture(scope="module")
def worker(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CeleryWorker]:
    purge_queue(EVENTS_QUEUE)
    running = CeleryWorker(tmp_path_factory.mktemp("worker") / "worker.log").start()
    yield running
    running.stop()


def state_of(event: Event) -> str:
    return Event.objects.values_list("state", flat=True).get(pk=event.pk)


def settled(event: Event, *states: str) -> Callable[[], bool]:
    return lambda: state_of(event) in states


def test_passing_event_succeeds_with_its_five_records(
    worker: CeleryWorker, lead_version: MakeVersion, sink: Sink
) -> None:
    version = lead_version()
    event = event_create(version, ENTERPRISE_EMEA_LEAD)
    wake_workers()
    wait_until(settled(event, "succeeded"), timeout=15, what="the event to succeed")

    event = Event.objects.get(pk=event.pk)
    assert event.payload == ENTERPRISE_EMEA_LEAD
    assert event.version == version
    assert event.context == {"segment": "enterprise"}
    assert event.owner_team.slug == "emea-enterprise"
    assert [d.step for d in event.decisions.order_by("created_at", "id")] == [
        "validate", "enrich", "route", "review", "deliver", "outcome",
    ]  # fmt: skip
    assert all(d.ok for d in event.decisions.all())
    assert not ExceptionCase.objects.filter(event=event).exists()
    outcome = event.outcomes.get()
    assert (outcome.status, outcome.source) == ("achieved", "delivery")
    attempt = event.attempts.get()
    assert (attempt.number, attempt.status, attempt.http_status) == (1, "succeeded", 200)
    (request,) = sink.requests()
    assert request.verified(version.workflow.signing_secret)["event_id"] == event.pk
    assert worker.alive


def test_missing_required_field_is_stored_and_opens_validation_failed(
    worker: CeleryWorker, lead_version: MakeVersion, sink: Sink
) -> None:
    event = event_create(lead_version(), {"email": "ada@example.com"})
    wake_workers()
    wait_until(settled(event, "needs_attention"), timeout=15, what="validation to fail")
    case = ExceptionCase.objects.get(event=event)
    assert case.reason_id == "validation_failed"
    assert case.detail == "Missing required field company.size"
    assert Event.objects.get(pk=event.pk).payload == {"email": "ada@example.com"}
    assert sink.requests() == []


def test_two_503s_then_200_succeeds_on_the_third_attempt_after_the_schedule_waits(
    worker: CeleryWorker, lead_version: MakeVersion, sink: Sink
) -> None:
    version = lead_version(retry={"schedule": [1, 2]})
    sink.script("/crm/leads", Reply(503), Reply(503), Reply(200))
    event = event_create(version, ENTERPRISE_EMEA_LEAD)
    wake_workers()
    # Nothing wakes the workers when a retry falls due but the sweeper, as beat would run it.
    wait_until(settled(event, "succeeded"), timeout=20, sweep=True, what="the third attempt")

    attempts = list(Event.objects.get(pk=event.pk).attempts.order_by("number"))
    assert [(a.number, a.status, a.http_status) for a in attempts] == [
        (1, "failed", 503), (2, "failed", 503), (3, "succeeded", 200),
    ]  # fmt: skip
    assert attempts[1].started_at - attempts[0].started_at >= timedelta(seconds=1)
    assert attempts[2].started_at - attempts[1].started_at >= timedelta(seconds=2)
    requests = sink.requests()
    assert {r.headers["webhook-id"] for r in requests} == {str(event.pk)}
    assert requests[1].at - requests[0].at >= 1.0
    assert requests[2].at - requests[1].at >= 2.0
    assert not ExceptionCase.objects.filter(event=event).exists()


def test_400_opens_delivery_rejected_after_one_attempt(
    worker: CeleryWorker, lead_version: MakeVersion, sink: Sink
) -> None:
    sink.script("/crm/leads", Reply(400, body=b"unknown list"))
    event = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    wake_workers()
    wait_until(settled(event, "needs_attention"), timeout=15, what="the rejection")
    case = ExceptionCase.objects.get(event=event)
    assert case.reason_id == "delivery_rejected"
    assert "HTTP 400" in case.detail
    assert Event.objects.get(pk=event.pk).attempts.get().status == "rejected"
    time.sleep(0.5)  # nothing else is coming
    assert len(sink.requests()) == 1


def test_review_rule_opens_review_required_before_the_action_runs(
    worker: CeleryWorker, lead_version: MakeVersion, sink: Sink
) -> None:
    event = event_create(lead_version(), {**ENTERPRISE_EMEA_LEAD, "amount": 2500})
    wake_workers()
    wait_until(settled(event, "needs_attention"), timeout=15, what="the review hold")
    assert ExceptionCase.objects.get(event=event).reason_id == "review_required"
    assert Event.objects.get(pk=event.pk).attempts.count() == 0
    assert sink.requests() == []


def test_rule_error_opens_rule_error_and_the_worker_keeps_going(
    worker: CeleryWorker, lead_version: MakeVersion, sink: Sink
) -> None:
    version = lead_version(
        required_fields=[],
        enrich=[{"name": "per_seat", "expr": "payload.deal / payload.seats"}],
        routes=[{"name": "default", "when": "true", "owner": "inbound-sdr"}],
    )
    broken = event_create(version, {"deal": 1000, "seats": 0, "territory": "EMEA"})
    wake_workers()
    wait_until(settled(broken, "needs_attention"), timeout=15, what="the rule error")
    case = ExceptionCase.objects.get(event=broken)
    assert case.reason_id == "rule_error"
    assert case.detail == "Rule per_seat failed: division by zero in CEL expression"

    good = event_create(version, {"deal": 1000, "seats": 4, "territory": "EMEA"})
    wake_workers()
    wait_until(settled(good, "succeeded"), timeout=15, what="the next event")
    assert Event.objects.get(pk=good.pk).context == {"per_seat": 250}
    assert worker.alive
