from __future__ import annotations

from celery import shared_task

from audit.retention import audit_prune_due
from audit.services import audit_chain_check, audit_seal_pending


@shared_task(name="audit.seal")
def seal_audit_entries() -> int:
    return audit_seal_pending()


@shared_task(name="audit.verify")
def verify_audit_chain() -> bool:
    return audit_chain_check().ok


@shared_task(name="audit.prune")
def prune_audit_entries() -> int:
    """One retention cut (at most ARCHIVE_MAX_ROWS entries), when AUDIT_RETENTION_DAYS is set."""
    return audit_prune_due()
