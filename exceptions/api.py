"""HTTP API v1, the parts that show exception cases: an event's full record, and the queue.

GET /events/{id} lives here, not in workflows.api, because it includes the event's exception
cases, and workflows never imports exceptions (DESIGN.md section 9).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from django.db.models import Prefetch
from django.http import HttpRequest, QueryDict
from ninja import Field, Query, Router, Schema

from exceptions.models import CaseState, ExceptionCase
from exceptions.pagination import InvalidCursor, keyset_page
from exceptions.selectors import SORT_SPECS, cases_matching
from workflows.api import ApiError, ErrorOut, event_for, token_of
from workflows.auth import workflows_visible_to
from workflows.models import Event
from workflows.owners import owner_username
from workflows.selectors import event_shape_drift

router = Router(tags=["exceptions"])

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
_SLUG_PATTERN = r"^[-a-zA-Z0-9_]{1,64}$"
# A team slug, or user:<username> (Django's username characters).
_OWNER_PATTERN = r"^([-a-zA-Z0-9_]{1,64}|user:[\w.@+-]{1,150})$"
_CURSOR_PATTERN = r"^[A-Za-z0-9_=-]{1,200}$"


class OwnerOut(Schema):
    team: str | None
    user: str | None


class DecisionOut(Schema):
    step: str
    rule: str
    version: int
    inputs: Any
    result: Any
    ok: bool
    explanation: str
    created_at: datetime


class AttemptOut(Schema):
    number: int
    trigger: str
    actor: str
    started_at: datetime
    finished_at: datetime
    status: str
    http_status: int | None
    error_class: str
    error_message: str
    duration_ms: int


class CaseOut(Schema):
    id: int
    event_id: int
    workflow: str
    reason: str
    step: str
    state: str
    detail: str
    owner: OwnerOut
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledge_due_at: datetime | None
    resolve_due_at: datetime | None
    snoozed_until: datetime | None
    resolved_at: datetime | None
    resolution_code: str


class OutcomeOut(Schema):
    status: str
    source: str
    evidence: Any
    reported_by: str
    observed_at: datetime


class ShapeChangeOut(Schema):
    path: str
    change: str = Field(description="missing, type_changed or new_key")
    expected: str
    seen: str


class EventOut(Schema):
    id: int
    workflow: str
    version: int
    state: str
    step: str
    source: str
    idempotency_key: str | None
    received_at: datetime
    payload: Any
    context: Any
    owner: OwnerOut
    attempt_count: int
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    outcome_due_at: datetime | None
    completed_at: datetime | None
    replay_of: int | None
    decisions: list[DecisionOut]
    attempts: list[AttemptOut]
    exceptions: list[CaseOut]
    outcomes: list[OutcomeOut]
    shape_drift: list[ShapeChangeOut]


class CasePage(Schema):
    results: list[CaseOut]
    next_cursor: str | None


def _owner(team: Any, user: Any) -> dict[str, str | None]:
    return {
        "team": team.slug if team is not None else None,
        "user": user.get_username() if user is not None else None,
    }


def _case(case: ExceptionCase) -> dict[str, Any]:
    return {
        "id": case.pk,
        "event_id": case.event_id,
        "workflow": case.workflow.slug,
        "reason": case.reason_id,
        "step": case.step,
        "state": case.state,
        "detail": case.detail,
        "owner": _owner(case.owner_team, case.owner_user),
        "opened_at": case.opened_at,
        "acknowledged_at": case.acknowledged_at,
        "acknowledge_due_at": case.acknowledge_due_at,
        "resolve_due_at": case.resolve_due_at,
        "snoozed_until": case.snoozed_until,
        "resolved_at": case.resolved_at,
        "resolution_code": case.resolution_code,
    }


def _cases_shaped() -> Any:
    return ExceptionCase.objects.select_related("workflow", "owner_team", "owner_user")


@router.get(
    "/events/{int:event_id}",
    response={200: EventOut, **{code: ErrorOut for code in (401, 404, 429, 503)}},
    tags=["events"],
    summary="An event with its decisions, attempts, exception cases and outcomes",
)
def event_get(request: HttpRequest, event_id: int) -> dict[str, Any]:
    event_for(token_of(request), event_id)  # 404 unless the token may see it
    event = (
        Event.objects.select_related("workflow", "version", "owner_team", "owner_user")
        .prefetch_related(
            "decisions",
            "attempts",
            Prefetch("exception_cases", queryset=_cases_shaped().order_by("opened_at", "id")),
            "outcomes",
        )
        .get(pk=event_id)
    )
    return {
        "id": event.pk,
        "workflow": event.workflow.slug,
        "version": event.version.number,
        "state": event.state,
        "step": event.step,
        "source": event.source,
        "idempotency_key": event.idempotency_key,
        "received_at": event.received_at,
        "payload": event.payload,
        "context": event.context,
        "owner": _owner(event.owner_team, event.owner_user),
        "attempt_count": event.attempt_count,
        "next_attempt_at": event.next_attempt_at,
        "delivered_at": event.delivered_at,
        "outcome_due_at": event.outcome_due_at,
        "completed_at": event.completed_at,
        "replay_of": event.replay_of_id,
        "decisions": [
            {
                "step": d.step,
                "rule": d.rule,
                "version": d.version_number,
                "inputs": d.inputs,
                "result": d.result,
                "ok": d.ok,
                "explanation": d.explanation,
                "created_at": d.created_at,
            }
            for d in event.decisions.all()
        ],
        "attempts": [
            {
                "number": a.number,
                "trigger": a.trigger,
                "actor": a.actor_label,
                "started_at": a.started_at,
                "finished_at": a.finished_at,
                "status": a.status,
                "http_status": a.http_status,
                "error_class": a.error_class,
                "error_message": a.error_message,
                "duration_ms": a.duration_ms,
            }
            for a in event.attempts.all()
        ],
        "exceptions": [_case(case) for case in event.exception_cases.all()],
        "outcomes": [
            {
                "status": o.status,
                "source": o.source,
                "evidence": o.evidence,
                "reported_by": o.reported_by,
                "observed_at": o.observed_at,
            }
            for o in event.outcomes.all()
        ],
        "shape_drift": event_shape_drift(event.pk),
    }


@router.get(
    "/exceptions",
    response={200: CasePage, **{code: ErrorOut for code in (400, 401, 429, 503)}},
    summary="Exception cases, newest first",
)
def exception_list(
    request: HttpRequest,
    state: Annotated[CaseState | None, Query(description="open, acknowledged, ...")] = None,
    workflow: Annotated[str | None, Query(pattern=_SLUG_PATTERN)] = None,
    reason: Annotated[str | None, Query(pattern=_SLUG_PATTERN)] = None,
    owner: Annotated[
        str | None, Query(pattern=_OWNER_PATTERN, description="team slug or user:<username>")
    ] = None,
    cursor: Annotated[str | None, Query(pattern=_CURSOR_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> dict[str, Any]:
    """Cases of the workflows this token may see, filtered, with an opaque cursor."""
    # The queue's own filters, in the queue's words: any state unless one is asked for.
    params = QueryDict(mutable=True)
    params.setlist("state", [state] if state is not None else CaseState.values)
    if workflow is not None:
        params["workflow"] = workflow
    if reason is not None:
        params["reason"] = reason
    if owner is not None:
        params["owner" if owner_username(owner) is not None else "team"] = owner
    visible = _cases_shaped().filter(workflow__in=workflows_visible_to(token_of(request)))
    cases = cases_matching(params, queryset=visible)
    try:
        page = keyset_page(cases, spec=SORT_SPECS["newest"], after=cursor or "", per=limit)
    except InvalidCursor as exc:
        raise ApiError(
            400,
            "invalid_request",
            f"The cursor is not valid ({exc}): use next_cursor as a previous page gave it.",
            details={"parameter": "cursor"},
        ) from None
    return {
        "results": [_case(case) for case in page.rows],
        "next_cursor": page.next_cursor or None,
    }
