"""Every write to exception cases."""

from __future__ import annotations

import hashlib
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from exceptions.models import OPEN_STATES, ExceptionCase, ReasonCode
from workflows.models import Event, Team
from workflows.rules import compiled_version


def case_fingerprint(*, workflow_slug: str, reason_code: str, step: str, key: str) -> str:
    """Cases with the same workflow, reason, step and error class (or missing field) group."""
    raw = "\x1f".join([workflow_slug, reason_code, step, key])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@transaction.atomic
def case_open_or_join(
    *,
    event: Event,
    reason_code: str,
    detail: str,
    owner: Any,
    step: str,
    fingerprint_key: str = "",
) -> tuple[ExceptionCase, bool]:
    """Open a case for the event, or return the open one with the same reason. (case, created)"""
    existing = (
        ExceptionCase.objects.select_for_update()
        .filter(event=event, reason_id=reason_code, state__in=OPEN_STATES)
        .first()
    )
    if existing is not None:
        return existing, False
    reason = ReasonCode.objects.get(code=reason_code)
    compiled = compiled_version(event.version)
    now = timezone.now()
    acknowledge_within = compiled.acknowledge_within or reason.default_acknowledge_within
    resolve_within = compiled.resolve_within or reason.default_resolve_within
    case = ExceptionCase(
        event=event,
        workflow_id=event.workflow_id,
        reason=reason,
        step=step,
        detail=detail,
        fingerprint=case_fingerprint(
            workflow_slug=compiled.slug, reason_code=reason_code, step=step, key=fingerprint_key
        ),
        opened_at=now,
        acknowledge_due_at=now + acknowledge_within if acknowledge_within else None,
        resolve_due_at=now + resolve_within if resolve_within else None,
    )
    if isinstance(owner, Team):
        case.owner_team = owner
    elif isinstance(owner, get_user_model()):
        case.owner_user = owner
    case.save()
    return case, True
