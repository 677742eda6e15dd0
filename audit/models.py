from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from audit.chain import timestamp


class AuditEntry(models.Model):
    """One action, append-only (a trigger refuses UPDATE and DELETE), chained by the sealer.

    Writers insert with seq and hash empty; the single sealer later gives entries their place
    in the chain (seq, prev_hash, hash) in commit order. That one-time seal is the only update
    the trigger lets through.
    """

    created_at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    actor_kind = models.CharField(max_length=16)
    actor_label = models.CharField(max_length=200)
    actor_roles = models.JSONField(default=list)
    actor_memberships = models.JSONField(default=list)
    action = models.CharField(max_length=100)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=100, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    approval_id = models.BigIntegerField(null=True, blank=True)
    # The workflow the object belongs to (its slug), so the trail filters by workflow without
    # reaching into the apps above. Empty for what belongs to none (people, roles).
    workflow = models.CharField(max_length=64, blank=True, default="")

    seq = models.BigIntegerField(null=True, blank=True, unique=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64, blank=True)
    sealed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "audit entry"
        verbose_name_plural = "audit entries"
        permissions = [
            ("export_auditentry", "Can export the audit trail"),
            ("verify_auditentry", "Can verify the audit chain"),
            ("view_all_auditentry", "Can read every entry, not only those of objects one sees"),
        ]
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
            models.Index(fields=["created_at"], name="audit_created_idx"),
            models.Index(fields=["actor_label", "created_at"], name="audit_actor_idx"),
            models.Index(fields=["workflow", "created_at"], name="audit_workflow_idx"),
            models.Index(
                fields=["request_id"], name="audit_request_idx", condition=~Q(request_id="")
            ),
            # Keeps "what is left to seal" cheap however long the trail grows.
            models.Index(fields=["id"], name="audit_unsealed_idx", condition=Q(seq__isnull=True)),
        ]
        constraints = [
            # Two entries can never be chained onto the same predecessor.
            models.UniqueConstraint(
                fields=["prev_hash"], condition=~Q(prev_hash=""), name="audit_unique_prev_hash"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} by {self.actor_label}"

    @property
    def is_sealed(self) -> bool:
        return self.seq is not None


class ChainCheck(models.Model):
    """One run of the verifier (periodic or on demand): what it found, kept as a log."""

    checked_at = models.DateTimeField()
    ok = models.BooleanField()
    entries = models.BigIntegerField(default=0)
    head_seq = models.BigIntegerField(null=True, blank=True)
    head_hash = models.CharField(max_length=64, blank=True)
    # Whether a head kept outside the table was compared, and what was wrong, if anything.
    head_checked = models.BooleanField(default=False)
    broken_seq = models.BigIntegerField(null=True, blank=True)
    problem = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["-checked_at"], name="audit_check_recent_idx")]

    def __str__(self) -> str:
        return f"chain check at {self.checked_at:%Y-%m-%d %H:%M}: {'ok' if self.ok else 'BROKEN'}"


class RetentionFloor(models.Model):
    """Where the hot table now starts: entries first_seq..floor_seq were archived, then removed.

    Written only by the database function audit_retention_cut (audit/retention.py), in the
    transaction that removes those entries; the trigger on audit entries lets a DELETE through
    only below a floor written in the same transaction. The next entry's prev_hash is last_hash,
    so the chain verifies on from here, and the archive on its own.
    """

    created_at = models.DateTimeField()
    first_seq = models.BigIntegerField()
    floor_seq = models.BigIntegerField(unique=True)
    last_hash = models.CharField(max_length=64)
    rows = models.BigIntegerField()
    archive = models.CharField(max_length=255)
    archive_sha256 = models.CharField(max_length=64)
    mac = models.CharField(max_length=64)
    # The transaction that wrote it (set by its trigger): the one allowed to delete below it.
    txid = models.BigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["floor_seq"]

    def __str__(self) -> str:
        return f"retention floor at seq {self.floor_seq} ({self.archive})"

    def signed_value(self) -> str:
        """What the floor's MAC covers."""
        return ":".join(
            str(part)
            for part in (
                timestamp(self.created_at),
                self.first_seq,
                self.floor_seq,
                self.last_hash,
                self.rows,
                self.archive,
                self.archive_sha256,
            )
        )
