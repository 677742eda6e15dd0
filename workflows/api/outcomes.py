"""The destination's outcome callback."""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Schema, Status

from audit.actors import actor_for_token
from audit.canonical import canonical_json
from workflows.api.common import (
    ApiError,
    ErrorOut,
    event_for,
    router,
    token_of,
)
from workflows.services.ingest import (
    max_payload_bytes,
)
from workflows.services.outcomes import OutcomeConflict, outcome_report

# --- outcome callbacks --------------------------------------------------------------------


class OutcomeIn(Schema):
    status: Literal["achieved", "failed"]
    evidence: dict[str, Any] = Field(default_factory=dict)


class OutcomeOut(Schema):
    id: int
    event_id: int
    status: str
    event_state: str


@router.post(
    "/events/{int:event_id}/outcome",
    response={200: OutcomeOut, **{code: ErrorOut for code in (400, 401, 404, 409, 413, 415)}},
    summary="Report an event's outcome",
)
def outcome_post(request: HttpRequest, event_id: int, report: OutcomeIn) -> Status[OutcomeOut]:
    """The destination says whether the business outcome happened, with its evidence."""
    token = token_of(request)
    event = event_for(token, event_id)
    limit = max_payload_bytes()
    if len(canonical_json(report.evidence)) > limit:
        raise ApiError(
            413,
            "payload_too_large",
            f"The evidence is larger than the limit of {limit} bytes.",
            details={"max_bytes": limit},
        )
    try:
        outcome = outcome_report(
            event=event,
            status=report.status,
            evidence=report.evidence,
            actor=actor_for_token(token.name),
        )
    except OutcomeConflict as exc:
        raise ApiError(409, "outcome_conflict", f"{exc}; nothing was recorded.") from None
    event.refresh_from_db(fields=["state"])
    return Status(
        200,
        OutcomeOut(
            id=outcome.pk,
            event_id=event.pk,
            status=outcome.status,
            event_state=event.state,
        ),
    )
