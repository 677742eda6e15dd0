from __future__ import annotations

from celery import shared_task

from audit.services import audit_chain_check, audit_seal_pending


@shared_task(name="audit.seal", queue="audit")
def seal_audit_entries() -> int:
    return audit_seal_pending()


@shared_task(name="audit.verify", queue="audit")
def verify_audit_chain() -> bool:
    return audit_chain_check().ok
