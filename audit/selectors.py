"""Reads of the audit trail."""

from __future__ import annotations

from django.db.models import QuerySet

from audit.models import AuditEntry


def recent_entries(*, limit: int = 10) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.order_by("-created_at", "-id")[:limit]


def chain_status() -> dict[str, object]:
    last = AuditEntry.objects.filter(seq__isnull=False).order_by("-seq").only("seq", "sealed_at")
    head = last.first()
    return {
        "sealed": head.seq if head else 0,
        "last_sealed_at": head.sealed_at if head else None,
        "unsealed": AuditEntry.objects.filter(seq__isnull=True).count(),
    }
