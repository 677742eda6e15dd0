"""Exception cases and reason codes (DESIGN.md section 4)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce
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
    # A retired code keeps its cases; nobody re-classifies to it any more.
    active = models.BooleanField(default=True, db_default=True)
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
_OPEN = Q(state__in=["open", "acknowledged", "snoozed"])

# Sorts by "next SLA deadline" put cases without a running clock last. Postgres can walk an
# index in that order only if the index holds the same expression, so both use this one.
NO_DEADLINE = datetime(9999, 12, 31, tzinfo=UTC)
SLA_SORT_KEY = Coalesce("sla_due_at", models.Value(NO_DEADLINE))
_GROUP_WALK_INCLUDE = ("owner_user", "owner_team", "workflow", "reason", "sla_due_at")


class Resolution(models.TextChoices):
    """How a case was closed as resolved. The first seven are an operator's choice."""

    FIXED_DOWNSTREAM = "fixed_downstream", "Fixed downstream"
    FIXED_DATA = "fixed_data", "Fixed the data at the source"
    DUPLICATE = "duplicate", "Duplicate of another event"
    NOT_A_PROBLEM = "not_a_problem", "Not a problem"
    APPROVED = "approved", "Approved (review passed: the action runs)"
    REJECTED = "rejected", "Rejected (review failed: the action never runs)"
    HANDLED_MANUALLY = "handled_manually", "Handled manually"
    # Set by the retry and replay actions, never chosen from the list.
    RETRIED = "retried", "Retried"
    REPLAYED = "replayed", "Replayed"


OPERATOR_RESOLUTIONS = [
    choice for choice in Resolution.choices if choice[0] not in {"retried", "replayed"}
]


class DismissReason(models.TextChoices):
    """Why a case was dismissed: nothing should be done about the event at all."""

    DUPLICATE = "duplicate_event", "Duplicate event"
    TEST_DATA = "test_data", "Test or sample data"
    SPAM = "spam", "Spam or abuse"
    OBSOLETE = "obsolete", "No longer relevant"
    EXPECTED = "expected", "Expected behaviour"


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
    # The next deadline of a clock still running (acknowledge until acknowledged, then resolve);
    # empty once closed. One column so "breached" and "sort by SLA" are one index range.
    sla_due_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # Words of the detail and of the event's payload, for the queue's full-text filter.
    search = SearchVectorField(null=True, editable=False)
    # Bumped by every change: an action based on a stale view of the case is refused.
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        permissions = [
            ("triage_exceptioncase", "Can triage exception cases"),
            # Without it a person reassigns only the cases they own (DESIGN.md section 2).
            ("reassign_exceptioncase", "Can reassign any exception case"),
            ("view_ownership_gaps", "Can see the ownership gaps radar"),
        ]
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
            # The queue's three orders, each walkable from any cursor; open cases get their own
            # smaller copies because nearly every view is of open cases.
            models.Index(SLA_SORT_KEY, "id", name="case_open_sla_idx", condition=_OPEN),
            models.Index("opened_at", "id", name="case_open_age_idx", condition=_OPEN),
            models.Index(
                "workflow", "opened_at", "id", name="case_open_workflow_idx", condition=_OPEN
            ),
            # The grouped queue walks open cases' fingerprints and takes each group's first case
            # by deadline and by age from these; the columns the queue filters on most ride
            # along, so a filtered walk reads the index alone.
            models.Index(
                "fingerprint",
                SLA_SORT_KEY,
                "id",
                name="case_open_group_idx",
                condition=_OPEN,
                include=_GROUP_WALK_INCLUDE,
            ),
            models.Index(
                "fingerprint",
                "opened_at",
                "id",
                name="case_open_group_age_idx",
                condition=_OPEN,
                include=_GROUP_WALK_INCLUDE,
            ),
            models.Index(SLA_SORT_KEY, "id", name="case_sla_idx"),
            models.Index("opened_at", "id", name="case_age_idx"),
            models.Index("workflow", "opened_at", "id", name="case_workflow_idx"),
            GinIndex(fields=["search"], name="case_search_idx"),
        ]

    def __str__(self) -> str:
        return f"case {self.pk}: {self.reason_id} on event {self.event_id}"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def sla_state(self, now: datetime) -> str:
        """ "breached", "due" (a clock is running) or "" (no clock, or closed)."""
        if self.sla_due_at is None or not self.is_open:
            return ""
        return "breached" if now > self.sla_due_at else "due"


def next_deadline(case: ExceptionCase) -> datetime | None:
    """The deadline of the next clock still running on the case, for sla_due_at."""
    if case.state not in OPEN_STATES:
        return None
    if case.acknowledged_at is None and case.acknowledge_due_at is not None:
        if case.resolve_due_at is None:
            return case.acknowledge_due_at
        return min(case.acknowledge_due_at, case.resolve_due_at)
    return case.resolve_due_at


class Comment(models.Model):
    """A note an operator left on a case. Append-only in practice: nobody edits history."""

    case = models.ForeignKey(ExceptionCase, on_delete=models.PROTECT, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["case", "created_at", "id"]
        indexes = [models.Index(fields=["case", "created_at"], name="comment_case_idx")]

    def __str__(self) -> str:
        return f"comment {self.pk} on case {self.case_id}"


class SavedView(models.Model):
    """A person's named queue filter; the query string is the whole of it, so a URL shares it."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views"
    )
    name = models.CharField(max_length=80)
    query = models.CharField(max_length=2000)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["owner", "name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="savedview_owner_name_unique")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.owner_id})"


class BulkJobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"


class BulkJob(models.Model):
    """One bulk action over a fixed list of cases (its items), worked through in chunks."""

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="bulk_jobs"
    )
    # The name of a bulk action in exceptions.actions (its registry says which exist).
    action = models.CharField(max_length=20)
    # The action's arguments (team, user, until, code, version...) as the form cleaned them.
    params = models.JSONField(default=dict)
    note = models.TextField(blank=True)
    # What the person selected, in words and as a query string, for the record.
    scope = models.CharField(max_length=2000, blank=True)
    state = models.CharField(max_length=10, choices=BulkJobState.choices, default="queued")
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    # When a chunk last committed: a job that stops moving is sent to the workers again.
    progressed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The approval a job over more cases than the threshold runs under; its entries carry it.
    approval = models.ForeignKey(
        "exceptions.ApprovalRequest",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="bulk_jobs",
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"bulk {self.action} #{self.pk} ({self.done}/{self.total})"

    @property
    def percent(self) -> int:
        return 100 if not self.total else int(self.done * 100 / self.total)

    @property
    def is_finished(self) -> bool:
        return self.state == BulkJobState.DONE


class BulkItemState(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"


class BulkJobItem(models.Model):
    """One case of a bulk job and what happened to it."""

    job = models.ForeignKey(BulkJob, on_delete=models.CASCADE, related_name="items")
    case = models.ForeignKey(ExceptionCase, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=10, choices=BulkItemState.choices, default="pending")
    message = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "case"], name="bulkitem_job_case_unique")
        ]
        indexes = [
            models.Index(
                fields=["job", "id"], name="bulkitem_pending_idx", condition=Q(state="pending")
            )
        ]

    def __str__(self) -> str:
        return f"case {self.case_id} in bulk job {self.job_id}: {self.state}"


class NotificationPreference(models.Model):
    """Whether a person wants the console's emails (assignments, breaches, escalations)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    email = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user_id}: email {'on' if self.email else 'off'}"


class EscalationLevel(models.TextChoices):
    BREACH = "breach", "Breach notice to the owner"
    LEADS = "leads", "Escalated to the team's leads"
    FALLBACK = "fallback", "Escalated to the first fallback team"


class CaseEscalation(models.Model):
    """One step of a breached case's escalation, taken once: the unique row is the guard that
    keeps every later sweep from sending it again."""

    case = models.ForeignKey(ExceptionCase, on_delete=models.PROTECT, related_name="escalations")
    level = models.CharField(max_length=10, choices=EscalationLevel.choices)
    # The SLA deadline this step was for: a new clock (a re-opened case) escalates afresh.
    deadline = models.DateTimeField()
    recipients = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["case", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["case", "level", "deadline"], name="escalation_once_per_deadline"
            )
        ]

    def __str__(self) -> str:
        return f"case {self.case_id}: {self.level} at {self.created_at:%Y-%m-%d %H:%M}"


class NoticeKind(models.TextChoices):
    ASSIGNED = "assigned", "Assigned to you or your team"
    BREACH = "breach", "SLA breached"
    ESCALATION = "escalation", "Escalated to you"


class Notice(models.Model):
    """An email owed to a person about a case. The sender gathers each person's unsent notices
    into one message, so a bulk move of thousands of cases is one email, not thousands."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    case = models.ForeignKey(ExceptionCase, on_delete=models.CASCADE, related_name="notices")
    kind = models.CharField(max_length=12, choices=NoticeKind.choices)
    detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["user", "id"], name="notice_unsent_idx", condition=Q(sent_at__isnull=True)
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} of case {self.case_id} for {self.user_id}"


# Approval requests live in their own package; imported here so the app registers the model.
from exceptions.approvals.models import ApprovalRequest  # noqa: E402, F401
