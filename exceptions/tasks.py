"""Celery tasks of the queue: thin wrappers that take ids and call one service."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from exceptions import notices, selectors, services
from exceptions.approvals import services as approvals

logger = logging.getLogger(__name__)

# Two chains per job: both of a two-process worker work on it, each claiming its own chunks.
BULK_PARALLEL_CHAINS = 2


@shared_task(name="exceptions.bulk_run")
def bulk_run(job_id: int) -> None:
    """Run one chunk of a bulk job, then hand the next chunk to a fresh task."""
    if services.bulk_job_run_chunk(job_id=job_id):
        bulk_run.apply_async(args=(job_id,))


@shared_task(name="exceptions.resume_bulk_jobs")
def resume_bulk_jobs() -> list[int]:
    """Send jobs that stopped making progress to the workers again; returns their ids."""
    after = timedelta(seconds=settings.HANDOFF_BULK_STALL_SECONDS)
    stalled = selectors.bulk_jobs_stalled(now=timezone.now(), after=after)
    for job_id in stalled:
        logger.warning("bulk job %s made no progress for %s; sending it again", job_id, after)
        bulk_job_enqueue(job_id)
    return stalled


@shared_task(name="exceptions.wake_snoozed")
def wake_snoozed() -> int:
    return services.cases_wake_snoozed()


@shared_task(name="exceptions.escalate")
def escalate() -> int:
    """Breach notices and escalations due now (each step once per deadline), and approval
    requests nobody decided in time, expired. Returns how many of both."""
    return notices.cases_escalate() + approvals.approvals_expire()


@shared_task(name="exceptions.send_notices")
def send_notices() -> int:
    """Each person's unsent notices, as one email."""
    return notices.notices_send()


def bulk_job_enqueue(job_id: int) -> bool:
    """Start a job's chains. Never raises: a job left queued is re-sent by resume_bulk_jobs."""
    try:
        for _ in range(BULK_PARALLEL_CHAINS):
            bulk_run.apply_async(args=(job_id,), retry=False)
    except Exception as exc:  # the broker is down: the job stays queued in the database
        logger.warning("bulk job %s not sent to the workers yet: %s", job_id, exc)
        return False
    return True
