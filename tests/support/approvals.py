"""Deciding approval requests as a person does: with the bound facts the page showed them."""

from __future__ import annotations

from typing import Any

from exceptions.approvals.binding import Seen
from exceptions.approvals.models import ApprovalRequest
from exceptions.approvals.services import approval_approve


def shown(approval: ApprovalRequest) -> Seen:
    """The bound facts as /approvals/ shows them now."""
    approval.refresh_from_db()
    return Seen(approval.version, approval.payload_hash, approval.workflow_version_id)


def decide_form(approval: ApprovalRequest, comment: str = "looks right") -> dict[str, Any]:
    """The approve (or reject) form's fields, as the page fills them in."""
    seen = shown(approval)
    return {
        "version": seen.version,
        "payload_hash": seen.payload_hash,
        "workflow_version": seen.workflow_version_id or "",
        "comment": comment,
    }


def approve(approval: ApprovalRequest, *, by: Any, comment: str = "looks right") -> ApprovalRequest:
    return approval_approve(approval=approval, actor=by, seen=shown(approval), comment=comment)
