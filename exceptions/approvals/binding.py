"""What an approval is bound to, and what changed since: the checks made before it runs.

A request is bound to the hash of what its action acts on (an edited replay's payload, the
event's payload, a bulk action's cases and arguments, a workflow's owners before and after),
the workflow version it would run under, and its own version. Each is compared with what the
approver was shown and with the world now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from audit.canonical import canonical_hash
from exceptions.approvals.models import ApprovalKind, ApprovalRequest
from workflows.models import Workflow, WorkflowVersion
from workflows.ownership import ownership_in_force

BULK_KINDS = (ApprovalKind.BULK_REPLAY, ApprovalKind.BULK_DISMISS)


@dataclass(frozen=True)
class Seen:
    """The bound facts as the approver was shown them (hidden fields of the approve form)."""

    version: int
    payload_hash: str
    workflow_version_id: int | None


def ownership_lines(workflow: Workflow) -> dict[str, Any]:
    current = ownership_in_force(workflow_id=workflow.pk, at=timezone.now())
    if current is None:
        return {"owner": None, "fallback_owners": []}
    return {"owner": current.owner, "fallback_owners": list(current.fallback_owners)}


def subject(approval: ApprovalRequest) -> Any:
    """What the action acts on, as it stands now: its hash is the request's payload hash."""
    params = approval.params
    if approval.kind == ApprovalKind.EDITED_REPLAY:
        return params["params"]["payload"]
    if approval.kind == ApprovalKind.DELIVERED_REPLAY:
        assert approval.event is not None  # a replay request names its event
        return approval.event.payload
    if approval.kind in BULK_KINDS:
        return {"action": params["action"], "params": params["params"], "cases": params["cases"]}
    assert approval.workflow is not None  # an ownership request names its workflow
    return {"before": ownership_lines(approval.workflow), "after": params["after"]}


def version_now(approval: ApprovalRequest) -> WorkflowVersion | None:
    """The workflow version the action would run under now."""
    if approval.kind in BULK_KINDS or approval.workflow is None:
        return None
    if approval.params.get("run_version") == "original":
        assert approval.event is not None  # only replays run under a version of their own
        return approval.event.version
    workflow = Workflow.objects.select_related("current_version").get(pk=approval.workflow.pk)
    return workflow.current_version


def _short(digest: str) -> str:
    return digest[:12] + "…" if digest else "none"


def what_changed(approval: ApprovalRequest, seen: Seen) -> tuple[list[str], bool]:
    """What differs between what the approver saw, the request and the world now.

    (the differences in words, whether the world moved on and the request can never run).
    """
    said: list[str] = []
    if seen.version != approval.version:
        said.append(
            f"The request was edited: you saw version {seen.version}, it is now at version "
            f"{approval.version}."
        )
    if seen.payload_hash != approval.payload_hash:
        said.append(
            f"The payload hash changed from {_short(seen.payload_hash)} to "
            f"{_short(approval.payload_hash)}."
        )
    world_moved = False
    now_hash = canonical_hash(subject(approval))
    if now_hash != approval.payload_hash:
        world_moved = True
        said.append(
            "What it acts on is no longer what was asked: the payload hash is "
            f"{_short(now_hash)}, the request was for {_short(approval.payload_hash)}."
        )
    running = version_now(approval)
    now_id = running.pk if running is not None else None
    if now_id != approval.workflow_version_id or seen.workflow_version_id != now_id:
        world_moved = world_moved or now_id != approval.workflow_version_id
        asked = approval.workflow_version.number if approval.workflow_version else "none"
        current = running.number if running is not None else "none"
        slug = approval.workflow.slug if approval.workflow else "the workflow"
        said.append(
            f"The workflow version changed: {slug} is now at version {current}, the request "
            f"was made under version {asked}."
        )
    return said, world_moved
