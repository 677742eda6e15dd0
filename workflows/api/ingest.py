"""Ingest: one event, or a batch, stored once per idempotency key (DESIGN.md section 7)."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Field, Header, Schema, Status

from audit.canonical import canonical_json
from workflows.api.common import (
    KEY,
    MAX_BATCH_EVENTS,
    ApiError,
    ErrorOut,
    event_source,
    ingest_workflow_for,
    parse_json_object,
    read_body,
    require_json_content_type,
    router,
    token_of,
    verify_signature,
)
from workflows.definitions import json_type
from workflows.services.ingest import (
    IdempotencyConflict,
    IncomingEvent,
    UnknownWorkflow,
    event_ingest,
    event_ingest_batch,
    max_payload_bytes,
)

# --- ingest -------------------------------------------------------------------------------


class EventAccepted(Schema):
    id: int
    status: str
    duplicate: bool


_ingest_errors: dict[int, Any] = {
    code: ErrorOut for code in (400, 401, 403, 404, 409, 413, 415, 429, 503)
}

_SINGLE_BODY = {
    "requestBody": {
        "required": True,
        "description": "The event payload, exactly as it should be stored: a JSON object.",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


@router.post(
    "/workflows/{slug}/events",
    response={200: EventAccepted, 202: EventAccepted, **_ingest_errors},
    openapi_extra=_SINGLE_BODY,
    summary="Ingest one event",
)
def event_post(
    request: HttpRequest,
    slug: str,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    webhook_id: Annotated[str | None, Header(alias="webhook-id")] = None,
) -> Status[EventAccepted]:
    """Store one event. 202 the first time; 200 with duplicate=true for a repeated key."""
    token = token_of(request)
    workflow = ingest_workflow_for(token, slug)
    require_json_content_type(request)
    body = read_body(request, max_bytes=max_payload_bytes())
    verify_signature(workflow, request, body)
    payload = parse_json_object(body)
    # A signed request's webhook-id is covered by its signature; an Idempotency-Key is not, so a
    # captured request replayed with a fresh key must still be the same event.
    key = _idempotency_key(None if workflow.inbound_secret else idempotency_key, webhook_id)
    try:
        event, duplicate = event_ingest(
            workflow=workflow,
            payload=payload,
            raw_body_hash=hashlib.sha256(body).hexdigest(),
            idempotency_key=key,
            headers=request.headers,
            source=event_source(token),
        )
    except UnknownWorkflow:
        raise ApiError(404, "unknown_workflow", f"There is no workflow {slug[:64]!r}.") from None
    except IdempotencyConflict as exc:
        raise _conflict(exc, batch=False) from None
    result = EventAccepted(id=event.pk, status=event.state, duplicate=duplicate)
    return Status(200 if duplicate else 202, result)


def _idempotency_key(header_key: str | None, webhook_id: str | None) -> str | None:
    for name, value in (("Idempotency-Key", header_key), ("webhook-id", webhook_id)):
        if value is None or value == "":
            continue
        if not KEY.match(value):
            raise ApiError(
                400,
                "invalid_request",
                f"The {name} header must be 1 to 255 printable ASCII characters.",
                details={"header": name},
            )
        return value
    return None


def _conflict(exc: IdempotencyConflict, *, batch: bool) -> ApiError:
    details: dict[str, Any] = {"idempotency_key": exc.key}
    if exc.event_id is not None:
        details["event_id"] = exc.event_id
    if batch:
        details["index"] = exc.index
    where = f"events[{exc.index}]: " if batch else ""
    return ApiError(
        409,
        "idempotency_conflict",
        f"{where}The idempotency key {exc.key!r} was already used with a different payload.",
        details=details,
    )


class BatchItemIn(Schema):
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)
    # Checked in the handler, so a non-object names its index with the code not_an_object.
    payload: Any = Field(json_schema_extra={"type": "object"})


class BatchIn(Schema):
    events: list[BatchItemIn] = Field(max_length=MAX_BATCH_EVENTS)


class BatchResult(Schema):
    id: int
    duplicate: bool


class BatchOut(Schema):
    results: list[BatchResult]


@router.post(
    "/workflows/{slug}/events/batch",
    response={202: BatchOut, **_ingest_errors},
    summary="Ingest a batch of events",
)
def event_batch_post(request: HttpRequest, slug: str, batch: BatchIn) -> Status[BatchOut]:
    """Store up to 1000 events in one transaction: all of them, or none on a key conflict."""
    token = token_of(request)
    workflow = ingest_workflow_for(token, slug)
    verify_signature(workflow, request, request.body)
    limit = max_payload_bytes()
    items = []
    for index, item in enumerate(batch.events):
        if not isinstance(item.payload, dict):
            raise ApiError(
                400,
                "not_an_object",
                f"events[{index}].payload must be a JSON object, "
                f"not a JSON {json_type(item.payload)}.",
                details={"index": index},
            )
        if len(canonical_json(item.payload)) > limit:
            raise ApiError(
                413,
                "payload_too_large",
                f"events[{index}].payload is larger than the limit of {limit} bytes.",
                details={"index": index, "max_bytes": limit},
            )
        if item.idempotency_key is not None and not KEY.match(item.idempotency_key):
            raise ApiError(
                400,
                "invalid_request",
                f"events[{index}].idempotency_key must be printable ASCII without spaces.",
                details={"index": index},
            )
        items.append(IncomingEvent(item.payload, item.idempotency_key))
    try:
        stored = event_ingest_batch(
            workflow=workflow, items=items, headers=request.headers, source=event_source(token)
        )
    except UnknownWorkflow:
        raise ApiError(404, "unknown_workflow", f"There is no workflow {slug[:64]!r}.") from None
    except IdempotencyConflict as exc:
        raise _conflict(exc, batch=True) from None
    results = [BatchResult(id=event.pk, duplicate=duplicate) for event, duplicate in stored]
    return Status(202, BatchOut(results=results))
