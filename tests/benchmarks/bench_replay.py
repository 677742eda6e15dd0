"""Scenario 5 of `make bench`: a bulk replay of N cases' events through the Celery workers, and
the p99 of live single-event ingest while it runs, beside the p99 just before it.

The cases come from `manage.py generate_cases` (every reason the engine opens, each holding a
failed event); the job is the one the queue's bulk action makes: over the approval threshold an
admin asks and a manager approves, and the approval starts it (`exceptions.bulk_run` chains on a
worker of the bulk queue with two processes). Its figure is cases replayed per second: each a
new event stored due, the case closed as replayed, its audit entries written. Processing the
replayed events is scenario 3's figure, not this one's: the events workers take them after.
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import TYPE_CHECKING

from tests.benchmarks import harness
from tests.benchmarks.harness import Row

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from exceptions.models import BulkJob, ExceptionCase
    from tests.benchmarks.bench import Bench

# Live traffic beside the replay: steady, about 100 events/s (each connection waits 20 ms
# between requests), not as fast as the server answers, which would measure a contest for the
# two cores instead.
LIVE_CONNECTIONS = 2
LIVE_PACE_MS = 20
SLICE_SECONDS = 3


def ensure_cases(count: int) -> None:
    """At least `count` open cases, on the demo's workflows and teams."""
    from exceptions.models import OPEN_STATES, ExceptionCase

    have = ExceptionCase.objects.filter(state__in=OPEN_STATES).count()
    if have >= count:
        return
    if not ExceptionCase.objects.exists():
        harness.manage("seed_demo")
        have = ExceptionCase.objects.filter(state__in=OPEN_STATES).count()
    harness.manage("generate_cases", "--count", str(count - have), "--no-history")


def bulk_replay(bench: Bench, count: int) -> list[Row]:
    from exceptions.models import OPEN_STATES, BulkJob, BulkJobState, ExceptionCase

    ensure_cases(count)
    cases = ExceptionCase.objects.filter(
        pk__in=ExceptionCase.objects.filter(state__in=OPEN_STATES)
        .order_by("id")
        .values("id")[:count]
    )
    live = _LiveIngest(bench)
    # A worker of the bulk queue, as the Procfile runs one: the events it stores are processed
    # afterwards by the events workers, at scenario 3's rate.
    with harness.celery_worker(2, queues="bulk"):
        live.one_slice()  # warm: the first slice after the worker starts pays for its boot
        before = live.one_slice()
        live.start()
        started = time.monotonic()
        job = _start(cases, count)
        deadline = started + max(600, count / 20)
        while True:
            job.refresh_from_db()
            if job.state == BulkJobState.DONE:
                break
            if time.monotonic() > deadline:
                live.stop()
                raise SystemExit(f"bulk replay did not finish: {job.done} of {job.total}")
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        during = live.stop()
    job = BulkJob.objects.get(pk=job.pk)
    rate = job.succeeded / elapsed
    p99_during = statistics.median(during) if during else before
    rise = p99_during / before - 1
    return [
        Row(
            f"5. bulk replay, {job.total:,} cases",
            rate,
            "events/s",
            None,
            "",
            ">= 2,000/s",
            rate >= 2000,
            {"succeeded": job.succeeded, "skipped": job.skipped, "failed": job.failed,
             "seconds": elapsed},
        ),
        Row(
            "   live ingest p99 during it",
            p99_during,
            "ms",
            before,
            f"live ingest p99 just before the replay ({LIVE_CONNECTIONS} connections, "
            f"{LIVE_PACE_MS} ms apart)",
            "rises < 50%",
            rise < 0.5,
        ),
    ]  # fmt: skip


def _start(cases: QuerySet[ExceptionCase], count: int) -> BulkJob:
    """The job as the queue's bulk bar starts it: over the approval threshold, a manager
    approves the admin's request and the approval starts the job (the time counts from here)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from exceptions.approvals.binding import Seen
    from exceptions.approvals.services import approval_approve, approval_for_bulk
    from exceptions.models import BulkJob
    from exceptions.services import bulk_job_create
    from exceptions.tasks import bulk_job_enqueue
    from workflows.four_eyes import ApprovalRequired

    users = get_user_model().objects
    admin, _ = users.get_or_create(username="bench-admin")
    admin.groups.add(Group.objects.get(name="admin"))
    asked = {"action": "replay", "params": {"version": "original"},
             "note": "bench: replay the backlog", "cases": cases, "scope": f"bench, {count} cases"}  # fmt: skip
    try:
        job = bulk_job_create(actor=admin, **asked)
    except ApprovalRequired as required:
        request = approval_for_bulk(required=required, actor=admin, **asked)
        manager, _ = users.get_or_create(username="bench-manager")
        manager.groups.add(Group.objects.get(name="manager"))
        seen = Seen(request.version, request.payload_hash, request.workflow_version_id)
        approved = approval_approve(approval=request, actor=manager, seen=seen)
        return BulkJob.objects.get(pk=approved.result["bulk_job"])
    bulk_job_enqueue(job.pk)
    return job


class _LiveIngest:
    """wrk against the ingest endpoint in slices of a few seconds, in a thread of its own."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.p99s: list[float] = []
        self.running = False
        self.thread: threading.Thread | None = None

    def one_slice(self) -> float:
        result = harness.wrk(
            self.bench.ingest_url,
            harness.post_script(
                self.bench.token, _payload(), f"live-{time.monotonic_ns()}", LIVE_PACE_MS
            ),
            connections=LIVE_CONNECTIONS,
            seconds=SLICE_SECONDS,
        )
        self.bench.web_events += result.requests
        return result.p99_ms

    def start(self) -> None:
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running:
            self.p99s.append(self.one_slice())

    def stop(self) -> list[float]:
        self.running = False
        if self.thread is not None:
            self.thread.join()
        return self.p99s


def _payload() -> str:
    from tests.benchmarks.bench import PAYLOAD

    return PAYLOAD
