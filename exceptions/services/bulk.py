"""Bulk jobs: one action over a fixed list of cases, worked through in chunks a page can poll."""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from audit.context import current_approval_id
from audit.services import audit_record
from exceptions.models import BulkItemState, BulkJob, BulkJobItem, BulkJobState, ExceptionCase
from exceptions.services.cases import CaseActionRefused, CaseConflict
from workflows.four_eyes import BULK_DISMISS, BULK_REPLAY, ApprovalRequired

logger = logging.getLogger(__name__)

# Cases a chunk takes, in one transaction: case by case, or by sets for an action that can
# (a replay), where a statement covers the whole chunk and a larger one costs little more.
BULK_CHUNK_SIZE = 100
BULK_SET_CHUNK_SIZE = 500
# Up to this many cases a bulk action runs inside the request; above it, as a Celery job.
BULK_INLINE_MAX = 200
# Bulk actions that, over HANDOFF_APPROVAL_BULK_THRESHOLD cases, wait for a second person.
NEEDS_APPROVAL_IN_BULK = {"replay": BULK_REPLAY, "dismiss": BULK_DISMISS}


def bulk_approval_kind(*, action: str, count: int) -> str:
    """The kind of approval a bulk `action` over `count` cases needs, or "" if none."""
    if count > settings.HANDOFF_APPROVAL_BULK_THRESHOLD:
        return NEEDS_APPROVAL_IN_BULK.get(action, "")
    return ""


@transaction.atomic
def bulk_job_create(
    *,
    actor: Any,
    action: str,
    params: dict[str, Any],
    note: str,
    cases: QuerySet[ExceptionCase],
    scope: str,
    approval_id: int | None = None,
) -> BulkJob:
    """Fix the list of cases (one INSERT ... SELECT) and record who asked for what, and why.

    A replay or dismiss of more cases than the threshold runs only under an approval
    (approval_id); without one it raises ApprovalRequired and creates nothing.
    """
    _registry().bulk_action(action)  # refuses a name that is not one
    if approval_id is None and action in NEEDS_APPROVAL_IN_BULK:
        count = cases.order_by().values("id").distinct().count()
        kind = bulk_approval_kind(action=action, count=count)
        if kind:
            raise ApprovalRequired(
                kind,
                f"A bulk {action} of {count} cases (more than "
                f"{settings.HANDOFF_APPROVAL_BULK_THRESHOLD}) runs only once a second person "
                "approves it.",
            )
    job = BulkJob.objects.create(
        created_by=actor,
        action=action,
        params=params,
        note=note,
        scope=scope,
        approval_id=approval_id,
    )
    ids = cases.order_by().values("id")
    sql, sql_params = ids.query.sql_with_params()
    # The inner query is Django's own SQL for the queryset; its values stay parameters. A
    # queryset that joins can list a case twice: the job holds it once, and counts it once.
    insert = (
        "INSERT INTO exceptions_bulkjobitem (job_id, case_id, state, message) "  # noqa: S608
        f"SELECT %s, q.id, 'pending', '' FROM ({sql}) AS q ORDER BY q.id "
        "ON CONFLICT (job_id, case_id) DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(insert, [job.pk, *sql_params])
        total = cursor.rowcount
    BulkJob.objects.filter(pk=job.pk).update(total=total)
    job.total = total
    audit_record(
        actor=actor,
        action="bulk.start",
        target=job,
        after={"action": action, "params": params, "total": total, "scope": scope},
        reason=note,
        approval_id=approval_id,
    )
    return job


def _registry() -> ModuleType:
    """The registry of case actions. It calls the services above, so it is imported on use."""
    from exceptions import actions

    return actions


def bulk_job_run_chunk(*, job_id: int, size: int | None = None) -> bool:
    """Work through the next chunk of a job in one transaction; True while items remain.

    Items are claimed with SKIP LOCKED, so two workers on the same job take different chunks,
    and a chunk whose worker dies rolls back to pending for the message's redelivery. A case
    that changed meanwhile, or that the action does not apply to, is skipped with the reason.
    """
    now = timezone.now()
    BulkJob.objects.filter(pk=job_id, state=BulkJobState.QUEUED).update(
        state=BulkJobState.RUNNING, started_at=now
    )
    registry = _registry()
    with transaction.atomic():
        job = BulkJob.objects.select_related("created_by").get(pk=job_id)
        # Each case's entries name the approval the job runs under, if any.
        carried = current_approval_id.set(job.approval_id)
        if size is None:
            by_sets = registry.bulk_action(job.action).run_many is not None
            size = BULK_SET_CHUNK_SIZE if by_sets else BULK_CHUNK_SIZE
        items = list(
            BulkJobItem.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(job_id=job_id, state=BulkItemState.PENDING)
            .select_related(
                "case__reason", "case__owner_team", "case__owner_user", "case__workflow"
            )
            .order_by("id")[:size]
        )
        counts = {state: 0 for state in BulkItemState.values}
        try:
            at_once = _apply_at_once(registry, items, job)
            for item in items:
                if at_once is not None:
                    _settle(item, at_once[item.case_id])
                else:
                    _settle(item, _apply_one(registry, item, job))
                counts[item.state] += 1
        finally:
            current_approval_id.reset(carried)
        _items_save(items)
        BulkJob.objects.filter(pk=job_id).update(
            progressed_at=timezone.now(),
            done=F("done") + len(items),
            succeeded=F("succeeded") + counts[BulkItemState.SUCCEEDED],
            skipped=F("skipped") + counts[BulkItemState.SKIPPED],
            failed=F("failed") + counts[BulkItemState.FAILED],
        )
    # Checked after the chunk committed, against committed counters: whichever worker commits
    # the last chunk sees done == total, and the conditional update lets only one finish it.
    BulkJob.objects.filter(pk=job_id, done__gte=F("total")).exclude(state=BulkJobState.DONE).update(
        state=BulkJobState.DONE, finished_at=timezone.now()
    )
    # Nothing claimable means another worker holds the rest: its chain finishes the job.
    return (
        bool(items)
        and BulkJobItem.objects.filter(job_id=job_id, state=BulkItemState.PENDING).exists()
    )


def _apply_at_once(
    registry: ModuleType, items: list[BulkJobItem], job: BulkJob
) -> dict[int, Exception | None] | None:
    """The chunk's cases by the action's set-based form, if it has one: each case's outcome.
    None to take them one by one: the action has no such form, or the chunk failed as a whole
    (rolled back, and logged), where one by one only the case at fault fails."""
    try:
        with transaction.atomic():
            outcomes: dict[int, Exception | None] | None = registry.bulk_apply_many(
                cases=[item.case for item in items], job=job
            )
            return outcomes
    except Exception:
        logger.exception("bulk job %s: a chunk failed as a whole; taking it case by case", job.pk)
        return None


def _apply_one(registry: ModuleType, item: BulkJobItem, job: BulkJob) -> Exception | None:
    """One case of the chunk in a savepoint of its own: None if done, else why not."""
    try:
        with transaction.atomic():
            registry.bulk_apply(case=item.case, job=job)
    except Exception as exc:  # one bad case must not stop the other thousands
        return exc
    return None


def _items_save(items: list[BulkJobItem]) -> None:
    """One UPDATE for each state and message (most chunks have one or two), not a CASE a row."""
    groups: dict[tuple[str, str], list[int]] = {}
    for item in items:
        groups.setdefault((item.state, item.message), []).append(item.pk)
    for (state, message), ids in groups.items():
        BulkJobItem.objects.filter(pk__in=ids).update(state=state, message=message)


def _settle(item: BulkJobItem, error: Exception | None) -> None:
    """An item's state and message from what happened to its case."""
    if error is None:
        item.state, item.message = BulkItemState.SUCCEEDED, ""
    elif isinstance(error, (CaseConflict, CaseActionRefused, ApprovalRequired)):
        item.state, item.message = BulkItemState.SKIPPED, str(error)
    else:
        item.state = BulkItemState.FAILED
        item.message = f"{type(error).__name__}: {error}"[:2000]


def bulk_job_run_inline(*, job: BulkJob) -> BulkJob:
    """Run a small job to the end inside the request."""
    while bulk_job_run_chunk(job_id=job.pk):
        pass
    return BulkJob.objects.get(pk=job.pk)
