"""An operator who handled a case by hand records the outcome, and the case closes with it."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from exceptions.models import OPEN_STATES, CaseState, ExceptionCase, Resolution
from exceptions.services.cases import CaseActionRefused, case_change, require_open
from exceptions.services.closing import _close_changes
from workflows.services.manual_outcomes import outcome_record_manual
from workflows.services.outcomes import OutcomeConflict


@transaction.atomic
def case_record_outcome(
    *,
    case: ExceptionCase,
    actor: Any,
    status: str,
    evidence: dict[str, Any],
    version: int | None = None,
    note: str = "",
) -> ExceptionCase:
    """Resolve the case as handled manually, with the outcome the person saw (and its evidence).

    The event closes on that outcome (workflows' outcome_record_manual): achieved -> succeeded,
    failed -> failed, both counted as manual outcomes. Another open case on the same event is
    someone else's question, so it must be closed first.
    """
    require_open(case, "resolved", version)
    other = (
        ExceptionCase.objects.filter(event_id=case.event_id, state__in=OPEN_STATES)
        .exclude(pk=case.pk)
        .first()
    )
    if other is not None:
        raise CaseActionRefused(
            f"Case {other.pk} is also open on this event: close it before recording the outcome."
        )
    fresh = case_change(
        case=case,
        actor=actor,
        version=version,
        action="record_outcome",
        note=note,
        changes=_close_changes(
            state=CaseState.RESOLVED, code=Resolution.HANDLED_MANUALLY, note=note, actor=actor
        ),
        after_extra={"outcome": status},
    )
    try:
        outcome_record_manual(
            event=case.event, status=status, evidence=evidence, actor=actor, note=note
        )
    except OutcomeConflict as exc:
        raise CaseActionRefused(str(exc)) from exc
    return fresh
