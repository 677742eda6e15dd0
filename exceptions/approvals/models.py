"""Approval requests: a risky action asked for by one person, decided by another."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q

from workflows import four_eyes


class ApprovalKind(models.TextChoices):
    EDITED_REPLAY = four_eyes.EDITED_REPLAY, "Replay with an edited payload"
    DELIVERED_REPLAY = four_eyes.DELIVERED_REPLAY, "Replay of an event already delivered"
    BULK_REPLAY = four_eyes.BULK_REPLAY, "Bulk replay"
    BULK_DISMISS = four_eyes.BULK_DISMISS, "Bulk dismiss"
    WORKFLOW_ROUTING_CHANGE = four_eyes.WORKFLOW_ROUTING_CHANGE, "Change of a workflow's routing"
    WORKFLOW_OWNERSHIP_CHANGE = four_eyes.WORKFLOW_OWNERSHIP_CHANGE, "Change of a workflow's owner"


class ApprovalState(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    EXECUTED = "executed", "Approved and run"
    # Approved by someone, but what it was bound to had changed: it never ran.
    REFUSED = "refused", "Refused (changed since it was asked)"


class ApprovalRequest(models.Model):
    """One risky action waiting for, or decided by, a second person.

    It is bound to what the requester asked for: the hash of the payload it acts on (for a
    bulk action, the cases and arguments; for ownership, the owners before and after), the
    workflow version it was asked under, and its own version, bumped by each edit. An approval
    given to anything else is refused.
    """

    kind = models.CharField(max_length=32, choices=ApprovalKind.choices)
    state = models.CharField(
        max_length=10, choices=ApprovalState.choices, default=ApprovalState.PENDING
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approval_requests"
    )
    requested_at = models.DateTimeField()
    reason = models.TextField()
    required_role = models.CharField(max_length=150)
    event = models.ForeignKey(
        "workflows.Event",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="approval_requests",
    )
    case = models.ForeignKey(
        "exceptions.ExceptionCase",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="approval_requests",
    )
    workflow = models.ForeignKey(
        "workflows.Workflow", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The bound facts.
    payload_hash = models.CharField(max_length=64)
    workflow_version = models.ForeignKey(
        "workflows.WorkflowVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    version = models.PositiveIntegerField(default=1)
    # The action's arguments, exactly as it will run them.
    params = models.JSONField(default=dict)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    # The decider's roles at that moment, kept as they were.
    decider_roles = models.JSONField(default=list)
    comment = models.TextField(blank=True)
    expires_at = models.DateTimeField()
    # What running it did (the replay's event, the bulk job, the ownership row), or why not.
    result = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        permissions = [("decide_approvalrequest", "Can approve or reject approval requests")]
        indexes = [
            models.Index(fields=["state", "requested_at"], name="approval_state_idx"),
            models.Index(
                fields=["expires_at"],
                name="approval_pending_expiry_idx",
                condition=Q(state="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"approval #{self.pk}: {self.kind} ({self.state})"

    @property
    def is_pending(self) -> bool:
        return self.state == ApprovalState.PENDING

    def is_expired(self, now: datetime) -> bool:
        return self.is_pending and now >= self.expires_at
