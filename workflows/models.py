"""Owners, workflow definitions and versions, and the records of each event (DESIGN.md 1-5)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import Q
from django.utils import timezone

from workflows.payload_search import PayloadWords


class Team(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    # When the team stopped taking work: "was it active at T" is then a query too.
    deactivated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    def active_at(self, at: datetime) -> bool:
        return self.created_at <= at and (self.deactivated_at is None or self.deactivated_at > at)


class Membership(models.Model):
    """A person on a team in a role for a period. Ending one sets valid_to; rows never change
    otherwise, so "who was on team X, in which role, at T" is a query."""

    MEMBER = "member"
    LEAD = "lead"
    ROLE_CHOICES = [(MEMBER, "Member"), (LEAD, "Lead")]

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="memberships"
    )
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(max_length=32, choices=ROLE_CHOICES, default=MEMBER)
    valid_from = models.DateTimeField(default=timezone.now)
    valid_to = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["team", "valid_from"], name="membership_team_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gt=models.F("valid_from")),
                name="membership_period_valid",
            ),
            models.UniqueConstraint(
                fields=["user", "team"],
                condition=Q(valid_to__isnull=True),
                name="membership_one_open_per_team",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} as {self.role}"


class Workflow(models.Model):
    """A named workflow; what it does lives in its versions."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    current_version = models.ForeignKey(
        "WorkflowVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # Outbound deliveries are signed with this (Standard Webhooks, "whsec_..." form).
    signing_secret = models.CharField(max_length=200)
    # When set, inbound events must carry a valid Standard Webhooks signature made with it.
    inbound_secret = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class WorkflowVersion(models.Model):
    """One immutable version of a definition (a trigger refuses UPDATE and DELETE)."""

    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    source = models.TextField(blank=True)
    content_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["workflow", "number"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "number"], name="version_number_unique"),
            models.UniqueConstraint(
                fields=["workflow", "content_hash"], name="version_content_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workflow_id} v{self.number}"


class OwnershipSource(models.TextChoices):
    DEFINITION = "definition", "Definition load"
    CONSOLE = "console", "Console"


class WorkflowOwnership(models.Model):
    """Who owns a workflow for a period: its owner team and ordered fallback chain.

    A change ends the row in force (valid_to) and starts a new one; rows never change otherwise,
    so "who owned workflow W at T" is a query. README "Who owns a workflow" says which wins
    when a definition load and a console change disagree.
    """

    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="ownerships")
    owner = models.SlugField(max_length=64)  # a team's slug, as in a definition
    fallback_owners = models.JSONField(default=list)  # team slugs, in the order they are tried
    valid_from = models.DateTimeField(default=timezone.now)
    valid_to = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=12, choices=OwnershipSource.choices)
    # The version whose load set it, or the version current when the console set it.
    version = models.ForeignKey(
        WorkflowVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    set_by = models.CharField(max_length=200)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["workflow", "valid_from", "id"]
        indexes = [models.Index(fields=["workflow", "valid_from"], name="ownership_workflow_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gt=models.F("valid_from")),
                name="ownership_period_valid",
            ),
            models.UniqueConstraint(
                fields=["workflow"],
                condition=Q(valid_to__isnull=True),
                name="ownership_one_open_per_workflow",
            ),
        ]

    def __str__(self) -> str:
        chain = " > ".join(self.fallback_owners) or "no fallback"
        return f"{self.workflow_id}: {self.owner} ({chain}) from {self.valid_from:%Y-%m-%d %H:%M}"

    @property
    def lines(self) -> tuple[str, tuple[str, ...]]:
        """(owner, fallbacks): what a definition's owner lines say, to compare with one."""
        return self.owner, tuple(self.fallback_owners)


class EventState(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSING = "processing", "Processing"
    RETRY_SCHEDULED = "retry_scheduled", "Retry scheduled"
    DELIVERED = "delivered", "Delivered"
    SUCCEEDED = "succeeded", "Succeeded"
    NEEDS_ATTENTION = "needs_attention", "Needs attention"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Step(models.TextChoices):
    VALIDATE = "validate", "Validate"
    ENRICH = "enrich", "Enrich"
    ROUTE = "route", "Route"
    REVIEW = "review", "Review"
    DELIVER = "deliver", "Deliver"
    OUTCOME = "outcome", "Outcome"


class Event(models.Model):
    """The source event: the payload exactly as received (a trigger keeps it from changing)."""

    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="events")
    version = models.ForeignKey(WorkflowVersion, on_delete=models.PROTECT, related_name="events")
    payload = models.JSONField()
    payload_hash = models.CharField(max_length=64)
    source = models.CharField(max_length=200)
    headers = models.JSONField(default=dict)
    # NULL, not "", means "no key": the unique constraint applies only to real keys.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    received_at = models.DateTimeField(default=timezone.now)
    # A replay is a new event pointing at the one it replays.
    replay_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="replays"
    )

    state = models.CharField(max_length=20, choices=EventState.choices, default=EventState.RECEIVED)
    # The next step to run: a retry reruns it, a replay starts again from validate.
    step = models.CharField(max_length=20, choices=Step.choices, default=Step.VALIDATE)
    context = models.JSONField(default=dict)
    owner_team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )
    owner_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="owned_events",
    )
    review_cleared = models.BooleanField(default=False)
    # Who asked for the next run (an operator's retry, a replay) and how: its Attempt says so.
    pending_trigger = models.CharField(max_length=10, default="auto")
    pending_actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    pending_actor_label = models.CharField(max_length=200, default="system")
    attempt_count = models.PositiveIntegerField(default=0)
    # Runs that ended in an unexpected error (or a worker that died): after
    # HANDOFF_PROCESSING_ATTEMPTS of them the event stops and a person sees the error.
    processing_failures = models.PositiveSmallIntegerField(default=0, db_default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=200, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    outcome_due_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="event_idempotency_unique",
            ),
        ]
        indexes = [
            # The sweeper's and the workers' "what is due" query.
            models.Index(
                fields=["next_attempt_at"],
                name="event_due_idx",
                condition=Q(state__in=["received", "retry_scheduled"]),
            ),
            models.Index(
                fields=["claimed_at"], name="event_claimed_idx", condition=Q(state="processing")
            ),
            models.Index(
                fields=["outcome_due_at"],
                name="event_outcome_due_idx",
                condition=Q(state="delivered"),
            ),
            models.Index(fields=["workflow", "received_at"], name="event_workflow_recv_idx"),
            models.Index(fields=["state", "received_at"], name="event_state_recv_idx"),
            # /events/: pages in received order from any cursor, and words of the payload.
            models.Index("received_at", "id", name="event_received_idx"),
            GinIndex(PayloadWords(), name="event_payload_search_idx"),
        ]

    def __str__(self) -> str:
        return f"event {self.pk} ({self.workflow_id}, {self.state})"

    @property
    def webhook_id(self) -> str:
        """The id receivers dedup on: the event's id (DESIGN.md section 3), on every attempt."""
        return str(self.pk)


class Decision(models.Model):
    """One step's decision, in words a person can read. Append-only."""

    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="decisions")
    step = models.CharField(max_length=20, choices=Step.choices)
    rule = models.CharField(max_length=200, blank=True)
    version_number = models.PositiveIntegerField()
    inputs = models.JSONField(default=dict)
    result = models.JSONField(default=dict)
    ok = models.BooleanField(default=True)
    explanation = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["event", "created_at", "id"]
        indexes = [models.Index(fields=["event", "created_at"], name="decision_event_idx")]

    def __str__(self) -> str:
        return f"{self.step}: {self.explanation}"


class AttemptTrigger(models.TextChoices):
    AUTO = "auto", "Automatic"
    RETRY = "retry", "Retry"
    REPLAY = "replay", "Replay"


class AttemptStatus(models.TextChoices):
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed (will retry)"
    REJECTED = "rejected", "Rejected"
    EXHAUSTED = "exhausted", "Failed (retries exhausted)"


class Attempt(models.Model):
    """One execution attempt of an event's action, written when it ends. Append-only."""

    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="attempts")
    number = models.PositiveIntegerField()
    trigger = models.CharField(max_length=10, choices=AttemptTrigger.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=200, default="system")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=AttemptStatus.choices)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error_class = models.CharField(max_length=200, blank=True)
    error_message = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField()
    # Made by a worker whose claim on the event had been taken over meanwhile: the request went
    # out (so it is on the record) but another worker's result is the one that counts.
    superseded = models.BooleanField(default=False, db_default=False)

    class Meta:
        ordering = ["event", "number"]
        constraints = [
            models.UniqueConstraint(fields=["event", "number"], name="attempt_number_unique")
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of event {self.event_id}: {self.status}"


class OutcomeStatus(models.TextChoices):
    ACHIEVED = "achieved", "Achieved"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"


class OutcomeSource(models.TextChoices):
    DELIVERY = "delivery", "Delivery"
    CALLBACK = "callback", "Callback"
    MANUAL = "manual", "Manual"
    DEADLINE = "deadline", "Deadline passed"


class Outcome(models.Model):
    """Whether the business outcome happened, with the evidence. Append-only."""

    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="outcomes")
    status = models.CharField(max_length=10, choices=OutcomeStatus.choices)
    source = models.CharField(max_length=10, choices=OutcomeSource.choices)
    evidence = models.JSONField(default=dict)
    reported_by = models.CharField(max_length=200, blank=True)
    observed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["event", "observed_at", "id"]

    def __str__(self) -> str:
        return f"{self.status} ({self.source}) for event {self.event_id}"


class ApiToken(models.Model):
    """A bearer token for the HTTP API. Only its SHA-256 is stored; the token is shown once."""

    name = models.CharField(max_length=100, unique=True)
    prefix = models.CharField(max_length=16)
    token_hash = models.CharField(max_length=64, unique=True)
    all_workflows = models.BooleanField(default=False)
    workflows = models.ManyToManyField(Workflow, blank=True, related_name="api_tokens")
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=200, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Heartbeat(models.Model):
    """When a periodic job last ran (the sweeper): a stopped beat shows, instead of hiding."""

    name = models.CharField(primary_key=True, max_length=40)
    at = models.DateTimeField()
    detail = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.name} at {self.at:%Y-%m-%d %H:%M:%S}"


class SampleReview(models.Model):
    """Completed events of a workflow pulled at random for a person to check against a list.

    The draw is reproducible: the same seed over the same events (completed, received since
    `since`, with an id up to `last_event_id`) picks the same ones.
    """

    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="sample_reviews")
    seed = models.CharField(max_length=64)
    size = models.PositiveSmallIntegerField()
    since = models.DateTimeField()
    last_event_id = models.BigIntegerField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("review_samplereview", "Can draw and mark sample reviews")]

    def __str__(self) -> str:
        return f"sample review {self.pk} of {self.workflow_id} (seed {self.seed})"


class SampleReviewItem(models.Model):
    """One sampled event and the reviewer's marks: yes, no, or not marked yet (null)."""

    review = models.ForeignKey(SampleReview, on_delete=models.PROTECT, related_name="items")
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField()
    decision_path_clear = models.BooleanField(null=True, blank=True)
    exception_caught_early = models.BooleanField(null=True, blank=True)
    evidence_enough = models.BooleanField(null=True, blank=True)
    note = models.TextField(blank=True)
    marked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    marked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["review", "position"]
        constraints = [
            models.UniqueConstraint(fields=["review", "event"], name="sample_item_event_unique"),
        ]

    def __str__(self) -> str:
        return f"event {self.event_id} in sample review {self.review_id}"

    @property
    def is_marked(self) -> bool:
        return self.marked_at is not None


class ShapeScan(models.Model):
    """The shape a workflow's recent payloads had, learned from its events up to one id.

    profile: {"events": n, "paths": {dotted path: {"seen": events having it,
    "types": {JSON type: events}}}}, see workflows.shapes.
    """

    workflow = models.OneToOneField(
        Workflow, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    last_event_id = models.BigIntegerField(default=0)
    scanned_at = models.DateTimeField(null=True, blank=True)
    profile = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"shape scan of {self.workflow_id} up to event {self.last_event_id}"


class ShapeDrift(models.Model):
    """An event whose payload departed from the shape its workflow's recent events had."""

    event = models.OneToOneField(
        Event, primary_key=True, on_delete=models.PROTECT, related_name="shape_drift"
    )
    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="+")
    received_at = models.DateTimeField()  # the event's: drift per day needs no join
    # [{"path", "change" (missing | type_changed | new_key), "expected", "seen"}]
    changes = models.JSONField()
    detected_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["workflow", "received_at"], name="shape_drift_recv_idx")]

    def __str__(self) -> str:
        return f"shape drift of event {self.event_id}"


class OutcomeDay(models.Model):
    """One local day's outcome figures for the events of one workflow version and owner team.

    A rollup of the records, kept by console's outcome rollup: the figures of past days are read
    from here instead of being computed again from every event. Cycle times are a histogram
    (bucket -> [count, sum of seconds]) so percentiles over several days can be merged.
    """

    day = models.DateField()
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="+")
    version = models.ForeignKey(WorkflowVersion, on_delete=models.CASCADE, related_name="+")
    owner_team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    events = models.IntegerField(default=0)
    events_in = models.IntegerField(default=0)
    achieved = models.IntegerField(default=0)
    manual = models.IntegerField(default=0)
    manual_achieved = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    missing = models.IntegerField(default=0)
    pending = models.IntegerField(default=0)
    replayed = models.IntegerField(default=0)
    cancelled = models.IntegerField(default=0)
    with_outcome = models.IntegerField(default=0)
    errored = models.IntegerField(default=0)
    closed = models.IntegerField(default=0)
    automatic = models.IntegerField(default=0)
    touches = models.IntegerField(default=0)
    cycles = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "workflow", "version", "owner_team"],
                name="outcome_day_unique",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"outcomes of workflow {self.workflow_id} on {self.day}"


class OutcomeCaseDay(models.Model):
    """One local day's exception cases of one workflow version, owner team and reason code."""

    day = models.DateField()
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="+")
    version = models.ForeignKey(WorkflowVersion, on_delete=models.CASCADE, related_name="+")
    owner_team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    reason = models.CharField(max_length=64)  # a reason code (exceptions' table is not ours)
    cases = models.IntegerField(default=0)
    acknowledged = models.IntegerField(default=0)
    ack_seconds = models.FloatField(default=0.0)
    resolved = models.IntegerField(default=0)
    resolve_seconds = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "workflow", "version", "owner_team", "reason"],
                name="outcome_case_day_unique",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"{self.reason} cases of workflow {self.workflow_id} on {self.day}"


class OutcomeRollup(models.Model):
    """Where the outcome rollup stands: the events received before `until` are rolled up."""

    until = models.DateTimeField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)  # when the last refresh began

    def __str__(self) -> str:
        return f"outcomes rolled up until {self.until}"
