"""A large reassignment runs on a real worker as a bulk job, with the queue's progress bar."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client

from audit.models import AuditEntry
from exceptions.models import OPEN_STATES, BulkJob, ExceptionCase
from tests.factories import BILLING_DISPUTES_YAML, MembershipFactory, TeamFactory, UserFactory
from tests.support.workers import CeleryWorker, purge_queue
from workflows.services.definitions import workflows_load

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.timeout(240),
]
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def celery_worker(tmp_path: Path) -> Iterator[CeleryWorker]:
    worker = CeleryWorker(tmp_path / "worker.log", queues="bulk")
    yield worker.start()
    worker.stop()
    purge_queue("bulk")


def test_a_bulk_reassign_of_5000_cases_finishes_with_progress_and_every_case_audited(
    celery_worker: CeleryWorker,
) -> None:
    manager = UserFactory(username="marcus", roles=["manager"])
    UserFactory(username="olivia", roles=["operator"])
    billing, finance = TeamFactory(slug="billing"), TeamFactory(slug="finance-ops")
    MembershipFactory(team=finance, user=UserFactory(username="femi"))
    workflows_load(sources=[("b.yaml", BILLING_DISPUTES_YAML)], actor=None)
    call_command("generate_cases", count=6500, no_history=True, stdout=io.StringIO())
    chosen = list(
        ExceptionCase.objects.filter(state__in=OPEN_STATES)
        .order_by("id")
        .values_list("pk", flat=True)[:5000]
    )
    assert len(chosen) == 5000
    ExceptionCase.objects.filter(pk__in=chosen).update(owner_team=billing, owner_user=None)
    ExceptionCase.objects.exclude(pk__in=chosen).update(owner_team=None)

    client = Client()
    client.force_login(manager)
    response = client.post(
        "/owners/reassign/",
        {"team": "billing", "to_team": "finance-ops", "reason": "billing merged into finance",
         "confirm": "1"},
    )  # fmt: skip
    assert response.status_code == 302
    job = BulkJob.objects.get()
    assert (job.total, job.action) == (5000, "assign")
    page = client.get(response["Location"]).content.decode()
    assert 'data-testid="bulk-job"' in page and f'hx-get="/queue/jobs/{job.pk}/"' in page

    seen: list[int] = []
    deadline = time.monotonic() + 200
    while time.monotonic() < deadline:
        fragment = client.get(f"/queue/jobs/{job.pk}/", **HTMX).content.decode()
        seen.append(int(re.search(r'data-testid="bulk-done">(\d+)<', fragment).group(1)))
        if "job-done" in fragment:
            break
        time.sleep(0.5)
    assert seen[-1] == 5000, seen
    assert any(0 < done < 5000 for done in seen), f"no progress shown between: {seen}"
    assert seen == sorted(seen)

    job.refresh_from_db()
    assert (job.state, job.succeeded, job.skipped, job.failed) == ("done", 5000, 0, 0)
    assert ExceptionCase.objects.filter(pk__in=chosen, owner_team=finance).count() == 5000
    audited = AuditEntry.objects.filter(action="case.assign", reason="billing merged into finance")
    assert sorted(int(pk) for pk in audited.values_list("object_id", flat=True)) == chosen
    assert celery_worker.alive
