"""A morning of triage on the demo data, by the demo people through the real services.

Runs once, shortly after the worker has processed the demo events, so the console opens with
cases acknowledged, claimed, commented on, approved, rejected, resolved and dismissed, with
events in the failed and cancelled states those actions lead to, and an edited replay waiting
on /approvals/ for the manager.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model

from exceptions.approvals.services import approval_for_case_action
from exceptions.handover import person_deactivate
from exceptions.models import CaseState, DismissReason, ExceptionCase, Resolution
from exceptions.services import (
    CaseActionRefused,
    CaseConflict,
    case_acknowledge,
    case_claim,
    case_comment,
    case_dismiss,
    case_replay,
    case_resolve,
)
from workflows.four_eyes import ApprovalRequired

logger = logging.getLogger(__name__)


def _open(reason: str, workflow: str, limit: int) -> list[ExceptionCase]:
    return list(
        ExceptionCase.objects.filter(
            reason__code=reason, workflow__slug=workflow, state=CaseState.OPEN
        ).order_by("id")[:limit]
    )


def demo_triage() -> int:
    """Act on a few open demo cases; returns how many actions were taken. Runs once."""
    closed = ExceptionCase.objects.filter(state__in=[CaseState.RESOLVED, CaseState.DISMISSED])
    if closed.exists():
        return 0
    users = get_user_model().objects.in_bulk(["olivia", "marcus", "ada"], field_name="username")
    olivia, marcus = users.get("olivia"), users.get("marcus")
    if olivia is None or marcus is None:
        return 0
    leads = _open("validation_failed", "lead-routing", 5)
    reviews = _open("review_required", "refund-approval", 5)
    plan: list[tuple[Callable[..., object], ExceptionCase, Any, dict[str, Any]]] = [
        *[(case_acknowledge, case, olivia, {"note": "Looking at the form export."})
          for case in leads[:3]],
        *[(case_dismiss, case, olivia, {"reason": DismissReason.TEST_DATA,
                                        "note": "Sales engineer testing the form."})
          for case in leads[3:]],
        *[(case_claim, case, olivia, {}) for case in _open("delivery_rejected", "lead-routing", 2)],
        *[(case_resolve, case, marcus, {"resolution": Resolution.APPROVED,
                                        "note": "Order and customer checked; refund approved."})
          for case in reviews[:3]],
        *[(case_resolve, case, marcus, {"resolution": Resolution.REJECTED,
                                        "note": "Goods not returned yet; refund refused."})
          for case in reviews[3:4]],
        *[(case_resolve, case, olivia, {"resolution": Resolution.HANDLED_MANUALLY,
                                        "note": "Ticket created by hand in the help desk."})
          for case in _open("validation_failed", "support-triage", 2)],
    ]  # fmt: skip
    done = 0
    for action, case, actor, kwargs in plan:
        try:
            action(case=case, actor=actor, **kwargs)
            done += 1
        except (CaseConflict, CaseActionRefused) as exc:
            logger.info("demo triage skipped case %s: %s", case.pk, exc)
    done += sum(_ask_edited_replay(case, olivia) for case in reviews[4:])
    done += _leaver(users.get("ada") or marcus)
    for case in _open("delivery_rejected", "lead-routing", 1):
        case_comment(
            case=case,
            actor=olivia,
            body="The CRM refuses @invalid.example addresses; asked marketing to fix the form.",
        )
        done += 1
    return done


def _ask_edited_replay(case: ExceptionCase, operator: Any) -> int:
    """Olivia asks to replay a refund with a lower amount: it waits on /approvals/ for Marcus."""
    payload = {**case.event.payload, "amount": 850}
    params = {"payload": payload, "version": "current"}
    note = "Customer kept one of the items; refund the rest only."
    try:
        case_replay(case=case, actor=operator, run_version="current", payload=payload, note=note)
    except ApprovalRequired as required:
        approval_for_case_action(
            required=required,
            case=case,
            actor=operator,
            action="replay_edit",
            params=params,
            note=note,
        )
        return 1
    return 0


def _leaver(admin: Any) -> int:
    """Sven takes a few support cases, then leaves: his work goes back to support-tier1."""
    sven = get_user_model().objects.filter(username="sven", is_active=True).first()
    if sven is None:
        return 0
    taken = 0
    for case in ExceptionCase.objects.filter(
        workflow__slug="support-triage", state=CaseState.OPEN, owner_user__isnull=True
    ).order_by("-id")[:3]:
        case_claim(case=case, actor=sven)
        taken += 1
    person_deactivate(person=sven, actor=admin, reason="Moved to another company")
    return taken + 1
