"""Bulk jobs: a fixed list of cases worked through in chunks, with counters a page can poll."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from audit.models import AuditEntry
from exceptions import services, tasks
from exceptions.models import BulkJob, BulkJobItem, CaseState, Comment, ExceptionCase
from tests import factories

pytestmark = pytest.mark.django_db


def test_a_job_runs_in_chunks_and_skips_what_no_longer_applies(operator, monkeypatch) -> None:
    cases = [factories.case() for _ in range(5)]
    services.case_resolve(case=cases[0], actor=operator, resolution="duplicate")
    job = services.bulk_job_create(
        actor=operator,
        action="acknowledge",
        params={},
        note="morning triage",
        cases=ExceptionCase.objects.all(),
        scope="test",
    )
    assert job.total == 5 and BulkJobItem.objects.filter(job=job).count() == 5
    start = AuditEntry.objects.get(action="bulk.start")
    assert (start.reason, start.after["total"]) == ("morning triage", 5)

    assert services.bulk_job_run_chunk(job_id=job.pk, size=2) is True
    job.refresh_from_db()
    assert (job.state, job.done) == ("running", 2)
    while services.bulk_job_run_chunk(job_id=job.pk, size=2):
        pass
    job.refresh_from_db()
    assert (job.state, job.done, job.succeeded, job.skipped, job.failed) == ("done", 5, 4, 1, 0)
    skipped = BulkJobItem.objects.get(job=job, state="skipped")
    assert skipped.case_id == cases[0].pk and "already resolved" in skipped.message
    assert ExceptionCase.objects.filter(state=CaseState.ACKNOWLEDGED).count() == 4
    assert (
        AuditEntry.objects.filter(action="case.acknowledge", reason="morning triage").count() == 4
    )


def test_the_task_hands_the_next_chunk_to_a_new_task(operator, monkeypatch) -> None:
    for _ in range(3):
        factories.case()
    job = services.bulk_job_create(
        actor=operator, action="snooze", params={"until": "2999-01-01T00:00:00+00:00"},
        note="", cases=ExceptionCase.objects.all(), scope="test",
    )  # fmt: skip
    sent = []
    monkeypatch.setattr(tasks.bulk_run, "apply_async", lambda **kw: sent.append(kw))
    monkeypatch.setattr(services.bulk, "BULK_CHUNK_SIZE", 2)
    tasks.bulk_run(job.pk)
    assert sent == [{"args": (job.pk,)}]  # the routing table names its queue
    tasks.bulk_run(job.pk)
    assert len(sent) == 1  # the last chunk finished the job: nothing more to send
    job.refresh_from_db()
    assert (job.state, job.succeeded) == ("done", 3)


def test_a_failing_case_does_not_stop_the_others(operator, monkeypatch) -> None:
    first, _ = factories.case(), factories.case()
    real = services.case_acknowledge

    def flaky(*, case, **kwargs):
        if case.pk == first.pk:
            raise RuntimeError("disk full")
        return real(case=case, **kwargs)

    monkeypatch.setattr(services, "case_acknowledge", flaky)
    job = services.bulk_job_create(
        actor=operator, action="acknowledge", params={}, note="",
        cases=ExceptionCase.objects.all(), scope="test",
    )  # fmt: skip
    services.bulk_job_run_inline(job=job)
    job.refresh_from_db()
    assert (job.succeeded, job.failed, job.state) == (1, 1, "done")
    assert "RuntimeError: disk full" in BulkJobItem.objects.get(state="failed").message


def test_enqueue_never_raises_when_the_broker_is_down(monkeypatch) -> None:
    def down(**kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.bulk_run, "apply_async", down)
    assert tasks.bulk_job_enqueue(1) is False


def test_bulk_job_rows_are_unique_per_case(operator) -> None:
    case = factories.case()
    for body in ("first", "second"):
        Comment.objects.create(case=case, author=operator, body=body)
    # Joined to its two comments, the queryset lists the case twice: it still gets one row.
    twice = ExceptionCase.objects.filter(comments__body__in=["first", "second"])
    assert twice.count() == 2
    job = services.bulk_job_create(
        actor=operator, action="retry", params={}, note="", cases=twice, scope="test"
    )
    assert BulkJob.objects.get().total == 1 and job.items.count() == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        BulkJobItem.objects.create(job=job, case=case)
    assert job.items.count() == 1


def test_a_job_whose_chain_was_lost_is_sent_again_and_finishes(
    operator, monkeypatch, time_machine
) -> None:
    time_machine.move_to("2026-06-01 09:00:00+00:00", tick=False)
    for _ in range(5):
        factories.case()
    job = services.bulk_job_create(
        actor=operator, action="acknowledge", params={}, note="", cases=ExceptionCase.objects.all(),
        scope="test",
    )  # fmt: skip
    monkeypatch.setattr(services.bulk, "BULK_CHUNK_SIZE", 2)
    services.bulk_job_run_chunk(job_id=job.pk)  # one chunk ran, then the chain's message was lost
    sent = []
    monkeypatch.setattr(tasks.bulk_run, "apply_async", lambda **kw: sent.append(kw["args"]))

    time_machine.shift(30)
    assert tasks.resume_bulk_jobs() == [], "a job that moved 30 s ago is still running"
    time_machine.shift(60)
    assert tasks.resume_bulk_jobs() == [job.pk]
    assert sent == [(job.pk,), (job.pk,)]  # both of its chains, as when it started

    while services.bulk_job_run_chunk(job_id=job.pk):
        pass
    job.refresh_from_db()
    assert (job.state, job.done) == ("done", 5)
    time_machine.shift(600)
    assert tasks.resume_bulk_jobs() == [], "a finished job is left alone"


def test_a_job_never_started_is_sent_again(operator, monkeypatch, time_machine) -> None:
    time_machine.move_to("2026-06-01 09:00:00+00:00", tick=False)
    factories.case()
    job = services.bulk_job_create(
        actor=operator, action="acknowledge", params={}, note="", cases=ExceptionCase.objects.all(),
        scope="test",
    )  # fmt: skip
    monkeypatch.setattr(tasks.bulk_run, "apply_async", lambda **kw: None)
    time_machine.shift(61)
    assert tasks.resume_bulk_jobs() == [job.pk]
