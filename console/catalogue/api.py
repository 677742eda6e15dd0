"""HTTP API v1: a workflow's readiness audit (DESIGN.md section 7)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema

from console.catalogue.readiness import scorecards
from workflows.api import ErrorOut, token_of, workflow_for

router = Router(tags=["workflows"])


class ControlOut(Schema):
    id: str
    title: str
    status: str
    evidence: str


class ReadinessOut(Schema):
    workflow: str
    version: int
    status: str
    computed_at: datetime
    controls: list[ControlOut]


@router.get(
    "/workflows/{slug}/readiness",
    response={200: ReadinessOut, **{code: ErrorOut for code in (401, 403, 404, 429, 503)}},
    summary="The workflow's readiness audit: each operating control, pass / warn / fail",
)
def workflow_readiness(request: HttpRequest, slug: str) -> dict[str, Any]:
    workflow = workflow_for(token_of(request), slug)  # 404 unknown_workflow, 403 out of scope
    (card,) = scorecards([workflow])
    return {
        "workflow": workflow.slug,
        "version": workflow.current_version.number if workflow.current_version else 0,
        "status": card.status,
        "computed_at": card.computed_at,
        "controls": [
            {"id": c.id, "title": c.title, "status": c.status, "evidence": c.evidence}
            for c in card.controls
        ],
    }
