"""Running what was approved, as its requester asked, under the approval's id."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from django.db import transaction

from audit.context import current_approval_id
from exceptions import services as case_services
from exceptions.approvals.binding import BULK_KINDS
from exceptions.approvals.models import ApprovalKind, ApprovalRequest
from exceptions.models import ExceptionCase
from exceptions.services.events import event_replay_from_page
from workflows.services.ownership import workflow_ownership_set


@contextmanager
def carrying_out(approval: ApprovalRequest) -> Iterator[None]:
    """Every audit entry written inside names the approval it carries out."""
    token = current_approval_id.set(approval.pk)
    try:
        yield
    finally:
        current_approval_id.reset(token)


def approval_execute(approval: ApprovalRequest) -> dict[str, Any]:
    """Run the approved action as its requester asked; what it did, for the request's record."""
    params, actor = approval.params, approval.requested_by
    if approval.kind in (ApprovalKind.EDITED_REPLAY, ApprovalKind.DELIVERED_REPLAY):
        return _execute_replay(approval, actor, params)
    if approval.kind in BULK_KINDS:
        cases = ExceptionCase.objects.filter(pk__in=params["cases"])
        job = case_services.bulk_job_create(
            actor=actor,
            action=params["action"],
            params=params["params"],
            note=approval.reason,
            cases=cases,
            scope=params.get("scope", ""),
            approval_id=approval.pk,
        )
        transaction.on_commit(lambda: _enqueue(job.pk), robust=True)
        return {"bulk_job": job.pk, "total": job.total}
    assert approval.workflow is not None
    after = params["after"]
    record = workflow_ownership_set(
        workflow=approval.workflow,
        owner=after["owner"],
        fallback_owners=after["fallback_owners"],
        actor=actor,
        reason=approval.reason,
        approval_id=approval.pk,
    )
    return {"ownership": record.pk}


def _execute_replay(
    approval: ApprovalRequest, actor: Any, params: dict[str, Any]
) -> dict[str, Any]:
    if approval.case is not None:
        action = _registry().ACTIONS[params["action"]]
        case = ExceptionCase.objects.select_related("reason", "event").get(pk=approval.case.pk)
        replay = action.run(
            case=case,
            actor=actor,
            version=case.version,
            note=approval.reason,
            params=params["params"],
        )
    else:
        assert approval.event is not None
        replay = event_replay_from_page(
            event=approval.event,
            actor=actor,
            run_version=params["run_version"],
            note=approval.reason,
        )
    return {"replay_event": replay.pk}


def _enqueue(job_id: int) -> None:
    from exceptions import tasks  # its tasks call this module's services

    tasks.bulk_job_enqueue(job_id)


def _registry() -> ModuleType:
    """The registry of case actions; it asks for approvals through this module, so on use."""
    from exceptions import actions

    return actions
