"""End to end with a real worker: hostile destinations and a failing event, nothing stuck,
nothing sent twice, nothing lost (the engine-hardening promises)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from exceptions.models import ExceptionCase
from tests.factories import (
    ENTERPRISE_EMEA_LEAD,
    definition,
    event_create,
    version_create,
)
from tests.support.servers import drip, hold, tcp_server
from tests.support.sinks import Reply, Sink
from tests.support.waits import wait_until
from tests.support.workers import CeleryWorker, purge_queue
from workflows.dispatch import EVENTS_QUEUE, wake_workers
from workflows.models import Attempt, Decision, Event, WorkflowVersion

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.timeout(120),
]

MakeVersion = Callable[..., WorkflowVersion]


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., CeleryWorker]]:
    purge_queue(EVENTS_QUEUE)
    started: list[CeleryWorker] = []

    def start(**env: str) -> CeleryWorker:
        worker = CeleryWorker(tmp_path / f"worker-{len(started)}.log", **env).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def states(events: list[Event]) -> dict[str, int]:
    found: dict[str, int] = {}
    for state in Event.objects.filter(pk__in=[e.pk for e in events]).values_list(
        "state", flat=True
    ):
        found[state] = found.get(state, 0) + 1
    return found


def test_a_batch_with_a_raising_event_and_a_nul_answer_delivers_the_rest_exactly_once(
    start_worker, lead_version: MakeVersion, sink: Sink
) -> None:
    version = lead_version()
    broken = dict(version.definition, slug="broken", name="Broken")
    del broken["retry"]  # stored by an older loader: the engine cannot compile it
    nul = definition(slug="nul-answers", name="NUL answers", url=sink.url("/nul"))
    nul["retry"] = {"schedule": [1, 1]}
    body = b"\x00\xff binary error page \x00"
    sink.script("/nul", *[Reply(500, body=body)] * 3)
    events = [event_create(version, ENTERPRISE_EMEA_LEAD) for _ in range(48)]
    raising = event_create(version_create(broken), ENTERPRISE_EMEA_LEAD)
    nul_event = event_create(version_create(nul), ENTERPRISE_EMEA_LEAD)

    start_worker(HANDOFF_PROCESSING_ATTEMPTS="3", HANDOFF_PROCESSING_RETRY_SECONDS="1")
    wake_workers()
    everything = [*events, raising, nul_event]
    wait_until(
        lambda: states(everything) == {"succeeded": 48, "needs_attention": 2},
        timeout=60,
        sweep=True,
        what="every event to settle",
    )

    delivered = sink.requests("/crm/leads")
    assert sorted(int(r.headers["webhook-id"]) for r in delivered) == sorted(e.pk for e in events)
    assert Attempt.objects.filter(event__in=events).count() == 48

    attempts = list(Attempt.objects.filter(event=nul_event).order_by("number"))
    assert [a.status for a in attempts] == ["failed", "failed", "exhausted"]
    assert all(
        a.error_message.startswith(f"binary, {len(body)} bytes: 00 ff 20 62") for a in attempts
    )
    assert ExceptionCase.objects.get(event=nul_event).reason_id == "delivery_failed"

    case = ExceptionCase.objects.get(event=raising)
    assert case.reason_id == "processing_error"
    assert (
        case.detail
        == "DefinitionCompileError: the definition: missing 'retry' (3 failed runs at step validate)"
    )
    assert Decision.objects.filter(event=raising).count() == 1


def test_a_dripping_destination_is_cut_off_at_its_deadline(
    start_worker, lead_version: MakeVersion
) -> None:
    with tcp_server(drip(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")) as server:
        version = lead_version(action={"type": "webhook", "url": server.url, "timeout_seconds": 1})
        event = event_create(version, ENTERPRISE_EMEA_LEAD)
        start_worker()
        wake_workers()
        attempt = wait_until(
            lambda: Attempt.objects.filter(event=event).first(), timeout=20, what="an attempt"
        )
    assert attempt.error_class == "DeadlineExceeded"
    assert attempt.duration_ms <= 1000 + 1000


def test_fifty_events_to_a_destination_that_never_answers_stay_inside_the_task(
    start_worker, lead_version: MakeVersion
) -> None:
    with tcp_server(hold) as server:
        accepted = server.accepted
        version = lead_version(
            action={"type": "webhook", "url": server.url, "timeout_seconds": 2},
            retry={"schedule": [600]},  # no retry within the test: one attempt each
        )
        events = [event_create(version, ENTERPRISE_EMEA_LEAD) for _ in range(50)]
        worker = start_worker(
            CELERY_TASK_HARD_TIME_LIMIT="40",  # soft limit 10 s: 7.5 s of it to deliver
            HANDOFF_DELIVERY_PER_DESTINATION="10",
            HANDOFF_PROCESS_BUDGET_SECONDS="1",
        )
        wake_workers()
        try:
            wait_until(
                lambda: (
                    Attempt.objects.filter(event__in=events).count() == 50
                    and states(events) == {"retry_scheduled": 50}
                ),
                timeout=60,
            )
        except AssertionError:
            attempts = Attempt.objects.filter(event__in=events).count()
            raise AssertionError(
                f"{attempts} attempts, {states(events)}, {len(accepted)} connections\n"
                + worker.log()[-3000:]
            ) from None
        worker.stop()
        connections = len(accepted)

    assert connections == 50, "every request that went out is an attempt on the record"
    per_event = Attempt.objects.filter(event__in=events).values_list("event_id", flat=True)
    assert sorted(per_event) == sorted(e.pk for e in events), "none was sent twice"
    assert Decision.objects.filter(event__in=events, result__verdict="deferred").exists()
    log = worker.log()
    assert "TimeLimitExceeded" not in log and "WorkerLostError" not in log, log[-2000:]
