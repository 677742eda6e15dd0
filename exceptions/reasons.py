"""Reason codes admins add and retire, and re-classifying a case to another active code.

Re-classifying changes what the case is about, not who owns it or its clocks: the SLA deadlines
set when it opened keep running (a code's default clocks apply only to cases that open with it).
The case moves to the new code's group: its fingerprint is remade from the new code and the old
fingerprint, so cases re-classified out of one group stay together.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit.services import audit_record
from exceptions.models import OPEN_STATES, ExceptionCase, ReasonCode
from exceptions.services import CaseActionRefused, CaseConflict, case_fingerprint

FIELDS = (
    "code",
    "label",
    "description",
    "default_acknowledge_within",
    "default_resolve_within",
    "note_required",
    "active",
)


def _snapshot(reason: ReasonCode) -> dict[str, Any]:
    return {name: getattr(reason, name) for name in FIELDS}


@transaction.atomic
def reason_code_create(
    *,
    code: str,
    label: str,
    actor: Any,
    description: str = "",
    acknowledge_within: timedelta | None = None,
    resolve_within: timedelta | None = None,
    note_required: bool = False,
) -> ReasonCode:
    """An admin's own reason code: usable at once for re-classifying cases."""
    reason = ReasonCode(
        code=code,
        label=label.strip(),
        description=description.strip(),
        default_acknowledge_within=acknowledge_within,
        default_resolve_within=resolve_within,
        note_required=note_required,
        builtin=False,
    )
    try:
        reason.full_clean()
    except ValidationError as exc:
        problems = [m for errors in exc.message_dict.values() for m in errors]
        raise CaseActionRefused(" ".join(problems)) from exc
    reason.save()
    audit_record(actor=actor, action="reason_code.create", target=reason, after=_snapshot(reason))
    return reason


@transaction.atomic
def reason_code_retire(*, reason: ReasonCode, actor: Any, note: str) -> ReasonCode:
    """Nobody re-classifies to a retired code; its cases keep it."""
    if reason.builtin:
        raise CaseActionRefused(f"{reason.code} is built in: the engine opens cases with it.")
    if not reason.active:
        raise CaseActionRefused(f"{reason.code} is already retired.")
    before = _snapshot(reason)
    ReasonCode.objects.filter(pk=reason.pk).update(active=False)
    reason.refresh_from_db()
    audit_record(
        actor=actor,
        action="reason_code.retire",
        target=reason,
        before=before,
        after=_snapshot(reason),
        reason=note,
    )
    return reason


@transaction.atomic
def case_reclassify(
    *, case: ExceptionCase, actor: Any, code: str, note: str, version: int | None = None
) -> ExceptionCase:
    """Give an open case another active reason code, with a note saying why."""
    shown = case.version if version is None else version
    if shown != case.version:
        raise CaseConflict(ExceptionCase.objects.get(pk=case.pk))
    if case.state not in OPEN_STATES:
        raise CaseActionRefused(f"Case {case.pk} is closed: it cannot be re-classified.")
    if not note.strip():
        raise CaseActionRefused("Say why the case is re-classified: a note is required.")
    reason = ReasonCode.objects.filter(code=code, active=True).first()
    if reason is None:
        raise CaseActionRefused(f"{code!r} is not an active reason code.")
    if reason.pk == case.reason.pk:
        raise CaseActionRefused(f"Case {case.pk} is already {reason.label.lower()}.")
    if (
        ExceptionCase.objects.filter(event_id=case.event_id, reason=reason, state__in=OPEN_STATES)
        .exclude(pk=case.pk)
        .exists()
    ):
        raise CaseActionRefused(f"Event {case.event_id} already has an open {reason.code} case.")
    before = {"reason": case.reason_id, "fingerprint": case.fingerprint, "version": case.version}
    fingerprint = case_fingerprint(
        workflow_slug=case.workflow.slug, reason_code=reason.code, step=case.step,
        key=case.fingerprint,
    )  # fmt: skip
    updated = ExceptionCase.objects.filter(pk=case.pk, version=shown).update(
        reason=reason, fingerprint=fingerprint, version=F("version") + 1, updated_at=timezone.now()
    )
    if not updated:
        raise CaseConflict(ExceptionCase.objects.get(pk=case.pk))
    fresh = ExceptionCase.objects.select_related("reason", "workflow").get(pk=case.pk)
    audit_record(
        actor=actor,
        action="case.reclassify",
        target=fresh,
        before=before,
        after={"reason": reason.code, "fingerprint": fingerprint, "version": fresh.version},
        reason=note.strip(),
    )
    return fresh
