"""Claiming due events: disjoint batches, nothing twice, stale claims handed back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction

from tests.factories import ENTERPRISE_EMEA_LEAD, event_create
from tests.support.engine import process_due, reload
from tests.support.sinks import Reply, Sink
from tests.support.waits import in_thread
from workflows.models import Decision, Event, EventState, Step, WorkflowVersion
from workflows.services.engine import (
    events_claim_due,
    events_process_claimed,
    events_release_stale,
)
from workflows.signals import attention_needed

MakeVersion = Callable[..., WorkflowVersion]
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_claiming_twice_finds_nothing_the_second_time(lead_version: MakeVersion) -> None:
    version = lead_version()
    events = [event_create(version, ENTERPRISE_EMEA_LEAD) for _ in range(3)]
    first = events_claim_due(limit=10, worker="w1")
    assert {e.pk for e in first} == {e.pk for e in events}
    assert len({e.claimed_by for e in first}) == 1
    assert first[0].claimed_by.startswith("w1:")
    assert all(e.state == EventState.PROCESSING for e in first)
    assert events_claim_due(limit=10, worker="w1") == []
    assert events_claim_due(limit=10, worker="w2") == []


@pytest.mark.django_db
def test_each_batch_gets_its_own_token(lead_version: MakeVersion) -> None:
    version = lead_version()
    for _ in range(2):
        event_create(version, ENTERPRISE_EMEA_LEAD)
    a = events_claim_due(limit=1, worker="w1")
    b = events_claim_due(limit=1, worker="w1")
    assert a[0].claimed_by != b[0].claimed_by


@pytest.mark.django_db
def test_claims_only_due_events_oldest_first_up_to_the_limit(
    lead_version: MakeVersion, time_machine
) -> None:
    time_machine.move_to(START, tick=False)
    version = lead_version()
    later = event_create(version, ENTERPRISE_EMEA_LEAD, next_attempt_at=START + timedelta(hours=1))
    newer = event_create(version, ENTERPRISE_EMEA_LEAD, next_attempt_at=START)
    older = event_create(
        version, ENTERPRISE_EMEA_LEAD, next_attempt_at=START - timedelta(minutes=1)
    )
    retrying = event_create(
        version,
        ENTERPRISE_EMEA_LEAD,
        state=EventState.RETRY_SCHEDULED,
        next_attempt_at=START - timedelta(seconds=30),
    )
    event_create(version, ENTERPRISE_EMEA_LEAD, state=EventState.NEEDS_ATTENTION)
    assert [e.pk for e in events_claim_due(limit=2, worker="w")] == [older.pk, retrying.pk]
    assert [e.pk for e in events_claim_due(limit=5, worker="w")] == [newer.pk]
    time_machine.shift(timedelta(hours=1))
    assert [e.pk for e in events_claim_due(limit=5, worker="w")] == [later.pk]


@pytest.mark.django_db
def test_processing_a_batch_twice_writes_once(lead_version: MakeVersion, sink: Sink) -> None:
    event = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    assert process_due().written == 1
    assert process_due().claimed == 0
    assert reload(event).decisions.count() == 6
    assert len(sink.requests()) == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_claimers_take_disjoint_sets(lead_version: MakeVersion) -> None:
    version = lead_version()
    ids = {event_create(version, ENTERPRISE_EMEA_LEAD).pk for _ in range(60)}
    taken: dict[int, list[int]] = {n: [] for n in range(4)}
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def claim(n: int) -> None:
        try:
            start.wait()
            while batch := events_claim_due(limit=4, worker=f"w{n}"):
                taken[n].extend(e.pk for e in batch)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=in_thread(lambda n=n: claim(n))) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    everything = [pk for batch in taken.values() for pk in batch]
    assert sorted(everything) == sorted(ids), "every event taken exactly once"
    assert sum(1 for batch in taken.values() if batch) >= 2, "more than one claimer got work"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_claimer_skips_rows_another_is_claiming_instead_of_waiting(
    lead_version: MakeVersion,
) -> None:
    version = lead_version()
    ids = {event_create(version, ENTERPRISE_EMEA_LEAD).pk for _ in range(6)}
    holding = threading.Event()
    release = threading.Event()
    first: list[int] = []

    def hold_a_claim_open() -> None:
        with transaction.atomic():
            first.extend(e.pk for e in events_claim_due(limit=3, worker="slow"))
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=in_thread(hold_a_claim_open))
    thread.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        second = [e.pk for e in events_claim_due(limit=10, worker="fast")]
        assert time.monotonic() - started < 1.0
    finally:
        release.set()
        thread.join()
    assert len(first) == 3
    assert set(first).isdisjoint(second)
    assert set(first) | set(second) == ids


@pytest.mark.django_db
def test_stale_claims_go_back_to_the_queue(lead_version: MakeVersion, time_machine) -> None:
    time_machine.move_to(START, tick=False)
    version = lead_version()
    stale = event_create(version, ENTERPRISE_EMEA_LEAD)
    (claimed,) = events_claim_due(limit=10, worker="gone")
    time_machine.shift(timedelta(minutes=5))
    fresh = event_create(version, ENTERPRISE_EMEA_LEAD)
    events_claim_due(limit=10, worker="alive")
    time_machine.shift(timedelta(minutes=1, seconds=1))

    assert events_release_stale(older_than=timedelta(minutes=6)) == 1
    stale, fresh = reload(stale), reload(fresh)
    assert stale.state == EventState.RETRY_SCHEDULED
    # A worker that died counts as a failed run of the event: tried again after a short wait.
    assert stale.next_attempt_at == START + timedelta(minutes=6, seconds=1 + 10)
    assert stale.processing_failures == 1
    assert fresh.state == EventState.PROCESSING
    decision = Decision.objects.get(event=stale)
    assert not decision.ok
    assert decision.explanation == (
        f"Worker {claimed.claimed_by} stopped before finishing step validate; released for "
        "another worker after 361 seconds"
    )
    assert events_release_stale(older_than=timedelta(minutes=6)) == 0


@pytest.mark.django_db
def test_a_worker_whose_claim_was_taken_over_writes_nothing(
    lead_version: MakeVersion, sink: Sink, time_machine
) -> None:
    time_machine.move_to(START, tick=False)
    event = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    slow_batch = events_claim_due(limit=10, worker="slow")
    time_machine.shift(timedelta(minutes=10))
    events_release_stale(older_than=timedelta(minutes=6))
    sink.script("/crm/leads", Reply(200), Reply(503))
    time_machine.shift(timedelta(seconds=10))  # the released event waits out its failed run

    assert process_due(worker="new").written == 1
    assert reload(event).state == EventState.SUCCEEDED
    # The slow worker finally gets round to its batch: its 503 must not undo the success.
    result = events_process_claimed(events=slow_batch)
    assert (result.written, result.lost) == (0, 1)
    event = reload(event)
    assert event.state == EventState.SUCCEEDED
    assert event.attempts.count() == 1
    assert event.decisions.filter(step=Step.DELIVER).count() == 1
    assert len(sink.requests()) == 1, "a worker that lost its claim does not send the event"


@pytest.mark.django_db
def test_a_released_claim_not_yet_retaken_is_not_overwritten(
    lead_version: MakeVersion, time_machine
) -> None:
    time_machine.move_to(START, tick=False)
    event = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    slow_batch = events_claim_due(limit=10, worker="slow")
    time_machine.shift(timedelta(minutes=10))
    events_release_stale(older_than=timedelta(minutes=6))
    assert events_process_claimed(events=slow_batch).lost == 1
    event = Event.objects.get(pk=event.pk)
    assert event.state == EventState.RETRY_SCHEDULED
    assert event.step == Step.VALIDATE


@pytest.mark.django_db
def test_one_event_that_cannot_be_written_does_not_hold_the_batch(
    lead_version: MakeVersion,
) -> None:
    version = lead_version()
    good = event_create(version, ENTERPRISE_EMEA_LEAD)
    bad = event_create(version, {"email": "ada@example.com"})  # opens a case: the receiver runs
    also_good = event_create(version, ENTERPRISE_EMEA_LEAD)

    def broken_receiver(sender, *, event, **kwargs) -> None:
        raise RuntimeError("the exceptions app is having a bad day")

    attention_needed.connect(broken_receiver, weak=False, dispatch_uid="test.broken")
    try:
        result = process_due()
    finally:
        attention_needed.disconnect(dispatch_uid="test.broken")

    assert (result.written, result.crashed) == (2, 1)
    assert reload(good).state == reload(also_good).state == EventState.SUCCEEDED
    # Nothing of the bad run was written; it counts as a failed run and is tried again soon.
    bad = reload(bad)
    assert bad.state == EventState.RETRY_SCHEDULED
    assert bad.processing_failures == 1
    assert bad.decisions.count() == 0
