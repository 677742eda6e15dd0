"""A bulk replay takes a chunk of cases by sets: what it leaves is what replaying them one at a
time leaves, for a fixed number of statements a chunk whatever its size."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEntry
from exceptions import actions, services
from exceptions.models import BulkJob, BulkJobItem, CaseState, ExceptionCase
from tests import factories
from workflows.models import Attempt, Event

pytestmark = pytest.mark.django_db


def replay_job(actor: Any, cases: list[ExceptionCase], note: str = "upstream fixed") -> BulkJob:
    return services.bulk_job_create(
        actor=actor, action="replay", params={"version": "original"}, note=note,
        cases=ExceptionCase.objects.filter(pk__in=[case.pk for case in cases]), scope="test",
    )  # fmt: skip


def trail(case: ExceptionCase, replay: Event) -> list[tuple[str, Any, Any, str]]:
    """The case's and its event's replay entries, with the ids that must differ taken out."""
    rows = []
    for entry in AuditEntry.objects.filter(
        action__in=["case.replay", "event.replay"], object_id__in=[case.pk, case.event_id]
    ).order_by("id"):
        after = dict(entry.after)
        if entry.action == "event.replay":
            assert after.pop("replay_id") == replay.pk
        rows.append((entry.action, entry.before, after, entry.reason))
    return rows


def left_behind(case: ExceptionCase) -> dict[str, Any]:
    case = ExceptionCase.objects.get(pk=case.pk)
    replay = Event.objects.get(replay_of_id=case.event_id)
    headers = {k: v for k, v in replay.headers.items() if k != "x-handoff-replay-of"}
    return {
        "case": (case.state, case.resolution_code, case.resolution_note, case.closed_by_id,
                 case.version, case.sla_due_at),
        "original": Event.objects.get(pk=case.event_id).state,
        "replay": (replay.state, replay.step, replay.source, replay.version_id,
                   replay.pending_trigger, replay.pending_actor_id, replay.payload, headers),
        "trail": trail(case, replay),
    }  # fmt: skip


def test_a_bulk_replay_leaves_what_replaying_one_case_at_a_time_leaves(operator) -> None:
    alone, together = factories.case(), factories.case()
    services.case_replay(case=alone, actor=operator, version=alone.version, note="upstream fixed")
    services.bulk_job_run_inline(job=replay_job(operator, [together]))

    expected = left_behind(alone)
    assert expected["case"][0] == CaseState.RESOLVED and expected["original"] == "failed"
    assert [row[0] for row in expected["trail"]] == ["case.replay", "event.replay"]
    assert left_behind(together) == expected


def test_a_chunk_costs_the_same_statements_for_40_cases_as_for_10(operator) -> None:
    counts = []
    for size in (10, 40):
        job = replay_job(operator, [factories.case() for _ in range(size)])
        with CaptureQueriesContext(connection) as queries:
            services.bulk_job_run_chunk(job_id=job.pk, size=size)
        job.refresh_from_db()
        assert (job.state, job.succeeded) == ("done", size)
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_what_cannot_be_replayed_is_skipped_with_the_reason_and_the_rest_go(operator) -> None:
    closed, delivered, fine = factories.case(), factories.case(), factories.case()
    services.case_resolve(case=closed, actor=operator, resolution="duplicate")
    now = timezone.now()
    Attempt.objects.create(
        event_id=delivered.event_id, number=1, trigger="auto", started_at=now, finished_at=now,
        status="succeeded", http_status=200, duration_ms=5,
    )  # fmt: skip
    job = replay_job(operator, [closed, delivered, fine])
    services.bulk_job_run_inline(job=job)

    job.refresh_from_db()
    assert (job.state, job.succeeded, job.skipped, job.failed) == ("done", 1, 2, 0)
    messages = dict(BulkJobItem.objects.filter(job=job).values_list("case_id", "message"))
    assert "already resolved" in messages[closed.pk]
    assert "already delivered" in messages[delivered.pk]
    assert "second person must approve" in messages[delivered.pk]
    assert messages[fine.pk] == ""
    # Nothing of the skipped cases moved: no replay, no entry, the case still open.
    assert not Event.objects.filter(replay_of_id__in=[closed.event_id, delivered.event_id])
    assert ExceptionCase.objects.get(pk=delivered.pk).is_open
    assert not AuditEntry.objects.filter(action="case.replay", object_id=str(delivered.pk))
    assert Event.objects.filter(replay_of_id=fine.event_id).count() == 1


def test_a_case_changed_after_it_was_read_is_a_conflict_and_keeps_its_change(operator) -> None:
    changed, kept = factories.case(), factories.case()
    read = list(ExceptionCase.objects.filter(pk__in=[changed.pk, kept.pk]).order_by("pk"))
    services.case_acknowledge(case=changed, actor=operator)

    outcome = services.cases_replay(cases=read, actor=operator, note="upstream fixed")

    assert isinstance(outcome[changed.pk], services.CaseConflict)
    assert "changed by someone else" in str(outcome[changed.pk])
    assert isinstance(outcome[kept.pk], Event)
    assert ExceptionCase.objects.get(pk=changed.pk).state == CaseState.ACKNOWLEDGED
    assert not Event.objects.filter(replay_of_id=changed.event_id).exists()
    assert Event.objects.get(pk=changed.event_id).state == "needs_attention"


def test_an_event_another_open_case_holds_stays_open(operator) -> None:
    first = factories.case()
    second = factories.case(reason="delivery_rejected", key="crm")
    ExceptionCase.objects.filter(pk=second.pk).update(event_id=first.event_id)
    services.bulk_job_run_inline(job=replay_job(operator, [first]))
    assert ExceptionCase.objects.get(pk=first.pk).state == CaseState.RESOLVED
    assert Event.objects.get(pk=first.event_id).state == "needs_attention"


def test_a_chunk_that_fails_as_a_whole_is_taken_case_by_case(operator, monkeypatch) -> None:
    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("set-based replay broke")

    replay = actions.ACTIONS["replay"]
    monkeypatch.setitem(actions.ACTIONS, "replay", dataclasses.replace(replay, run_many=broken))
    cases = [factories.case() for _ in range(3)]
    job = replay_job(operator, cases)
    services.bulk_job_run_inline(job=job)
    job.refresh_from_db()
    assert (job.state, job.succeeded, job.failed) == ("done", 3, 0)
    assert AuditEntry.objects.filter(action="case.replay").count() == 3
