"""End to end: a worker killed mid-delivery loses nothing (DESIGN.md section 5)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

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
    pytest.mark.timeout(90),
]

MakeVersion = Callable[..., WorkflowVersion]


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[[], CeleryWorker]]:
    """start(): a new worker; every worker started is stopped at the end."""
    purge_queue(EVENTS_QUEUE)
    started: list[CeleryWorker] = []

    def start() -> CeleryWorker:
        worker = CeleryWorker(tmp_path / f"worker-{len(started)}.log").start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def test_worker_killed_while_delivering_loses_nothing(
    workers: Callable[[], CeleryWorker], lead_version: MakeVersion, sink: Sink, settings
) -> None:
    version = lead_version()
    # The destination holds the first delivery open; the worker dies while it waits.
    sink.script("/crm/leads", Reply(200, delay=8), Reply(200))
    first = workers()
    event = event_create(version, ENTERPRISE_EMEA_LEAD)
    wake_workers()
    sink.wait_for(1, timeout=15)
    first.kill()
    assert not first.alive
    held = Event.objects.get(pk=event.pk)
    assert held.state == "processing"
    assert held.attempts.count() == 0

    workers()
    settings.HANDOFF_STALE_CLAIM_SECONDS = 1
    settings.HANDOFF_PROCESSING_RETRY_SECONDS = 1
    wait_until(
        lambda: Event.objects.get(pk=event.pk).state in ("succeeded", "needs_attention"),
        timeout=20,
        sweep=True,
        what="the event to finish on the new worker",
    )

    event = Event.objects.get(pk=event.pk)
    assert event.state == "succeeded"
    assert event.claimed_by != held.claimed_by
    requests = sink.requests("/crm/leads")
    assert len(requests) == 2
    assert {r.headers["webhook-id"] for r in requests} == {str(event.pk)}
    for request in requests:
        assert request.verified(version.workflow.signing_secret)["event_id"] == event.pk
    # The killed worker's POST never came back, so it is no attempt; the decision log says
    # what happened to it.
    attempt = event.attempts.get()
    assert (attempt.number, attempt.status) == (1, "succeeded")
    released = event.decisions.get(rule="processing")
    assert released.explanation.startswith(f"Worker {held.claimed_by} stopped before finishing")
    assert event.outcomes.get().status == "achieved"
    assert not ExceptionCase.objects.filter(event=event).exists()
