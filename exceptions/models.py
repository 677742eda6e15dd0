"""Exception cases and reason codes (DESIGN.md section 4)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from workflows.models import Event, Team, Workflow


class ReasonCode(models.Model):
    """Why a case needs a person. Built-in codes are seeded by a migration; admins add more."""

    code = models.SlugField(max_length=64, unique=True)
    label = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    default_acknowledge_within = models.DurationField(null=True, blank=True)
    default_resolve_within = models.DurationField(null=True, blank=True)
    note_required = models.BooleanField(default=False)
    builtin = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class CaseState(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    SNOOZED = "snoozed", "Snoozed"
    RESOLVED = "resolved", "Resolved"
    DISMISSED = "dismissed", "Dismissed"


OPEN_STATES = (CaseState.OPEN, CaseState.ACKNOWLEDGED, CaseState.SNOOZED)


class ExceptionCase(models.Model):
    """Something that needs judgement: an owner, a reason, a detail and an SLA clock."""

    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="exception_cases")
    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="+")
    reason = models.ForeignKey(
        ReasonCode, on_delete=models.PROTECT, related_name="cases", to_field="code"
    )
    step = models.CharField(max_length=20)
    detail = models.TextField()
    # Cases with the same fingerprint are "the same problem" and form a group.
    fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=20, choices=CaseState.choices, default=CaseState.OPEN)
    owner_team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.PROTECT, related_name="exception_cases"
    )
    owner_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="exception_cases",
    )
    opened_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_code = models.CharField(max_length=64, blank=True)
    resolution_note = models.TextField(blank=True)
    acknowledge_due_at = models.DateTimeField(null=True, blank=True)
    resolve_due_at = models.DateTimeField(null=True, blank=True)
    # Bumped by every change: an action based on a stale view of the case is refused.
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        permissions = [("triage_exceptioncase", "Can triage exception cases")]
        constraints = [
            # One open case per event and reason: a second signal joins it.
            models.UniqueConstraint(
                fields=["event", "reason"],
                condition=Q(state__in=["open", "acknowledged", "snoozed"]),
                name="case_one_open_per_event_reason",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "opened_at"], name="case_state_opened_idx"),
            models.Index(fields=["fingerprint", "state"], name="case_fingerprint_idx"),
            models.Index(fields=["owner_team", "state"], name="case_owner_team_idx"),
            models.Index(fields=["owner_user", "state"], name="case_owner_user_idx"),
            models.Index(fields=["resolve_due_at"], name="case_resolve_due_idx"),
        ]

    def __str__(self) -> str:
        return f"case {self.pk}: {self.reason_id} on event {self.event_id}"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def is_overdue(self, now: datetime) -> bool:
        """Past either SLA clock that is still running."""
        if not self.is_open:
            return False
        ack_running = self.acknowledged_at is None and self.acknowledge_due_at is not None
        if ack_running and now > self.acknowledge_due_at:  # type: ignore[operator]
            return True
        return self.resolve_due_at is not None and now > self.resolve_due_at
