"""Four-eyes: what may not run until a second person approves it (DESIGN.md section 6).

The rules live here, below every surface, so no page, job or command can skip them: the engine
refuses an edited replay or a replay of an event already delivered, the ownership service
refuses a change of owners, and the bulk service a large replay or dismiss, unless the caller
names the approval that carries it out. Approval requests themselves (who asked, who decided)
are kept by the exceptions app, which turns ApprovalRequired into a request.
"""

from __future__ import annotations

from typing import Any

EDITED_REPLAY = "edited_replay"
DELIVERED_REPLAY = "delivered_replay"
BULK_REPLAY = "bulk_replay"
BULK_DISMISS = "bulk_dismiss"
WORKFLOW_ROUTING_CHANGE = "workflow_routing_change"
WORKFLOW_OWNERSHIP_CHANGE = "workflow_ownership_change"

# Admins hold every approver role: a gate naming "manager" is approved by a manager or an admin.
ADMIN_ROLE = "admin"


class ApprovalRequired(Exception):
    """This needs a second person's approval before it runs; nothing was changed."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(message)


def holds_role(user: Any, role: str) -> bool:
    """Whether a person may act as `role` now: a member of that group, or an admin."""
    if not role:
        return True
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    names = {group.name for group in user.groups.all()}
    return role in names or ADMIN_ROLE in names
