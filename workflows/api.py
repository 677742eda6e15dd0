"""HTTP API v1, the engine's part: ingest and outcome callbacks (DESIGN.md section 7).

Every error leaves as {"error": {"code", "message", "details"?}}: handlers here raise ApiError,
and console.api renders it (and every other exception) in that shape.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Annotated, Any, Literal

from django.db.models import Exists, OuterRef
from django.http import HttpRequest
from ninja import Field, Header, Router, Schema, Status
from ninja.parser import Parser
from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError, WebhookVerificationError

from audit.actors import actor_for_token
from audit.canonical import canonical_json
from workflows.auth import workflows_visible_to
from workflows.definitions import json_type
from workflows.models import ApiToken, Event, Workflow
from workflows.services.ingest import (
    IdempotencyConflict,
    IncomingEvent,
    PayloadRefused,
    UnknownWorkflow,
    event_ingest,
    event_ingest_batch,
    json_parse,
    max_payload_bytes,
)
from workflows.services.outcomes import OutcomeConflict, outcome_report

logger = logging.getLogger(__name__)

MAX_BATCH_EVENTS = 1000
# Event ids are bigint: anything larger cannot be one, and must not reach the database.
MAX_ID = 2**63 - 1
_SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")
# Printable ASCII without spaces, as in the IETF Idempotency-Key draft's examples.
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_JSON_MEDIA = re.compile(r"^application/([\w.+-]+\+)?json$")

router = Router(tags=["events"])


class ApiError(Exception):
    """An error response of the API: HTTP status, stable code, message, optional details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


class ErrorDetail(Schema):
    code: str
    message: str
    details: Any = None


class ErrorOut(Schema):
    error: ErrorDetail


# --- request bodies -----------------------------------------------------------------------


def require_json_content_type(request: HttpRequest) -> None:
    media_type = request.content_type or ""
    if not _JSON_MEDIA.match(media_type.strip().lower()):
        raise ApiError(
            415,
            "unsupported_media_type",
            "Send the body as JSON with Content-Type: application/json.",
            details={"content_type": request.META.get("CONTENT_TYPE", "")},
        )


def read_body(request: HttpRequest, *, max_bytes: int) -> bytes:
    """The raw body, refused (413) above max_bytes by Content-Length and by actual length."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not (declared.isascii() and declared.isdigit()):
        raise ApiError(400, "invalid_request", "Content-Length must be a whole number.")
    if int(declared) > max_bytes:
        raise _too_large(max_bytes)
    body = request.body
    if len(body) > max_bytes:
        raise _too_large(max_bytes)
    return body


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(
        413,
        "payload_too_large",
        f"The body is larger than the limit of {max_bytes} bytes.",
        details={"max_bytes": max_bytes},
    )


def parse_json(body: bytes) -> Any:
    """Parse a body as JSON that PostgreSQL can store; ApiError invalid_json otherwise."""
    try:
        return json_parse(body)
    except PayloadRefused as exc:
        raise ApiError(400, exc.code, str(exc)) from None


def parse_json_object(body: bytes) -> dict[str, Any]:
    value = parse_json(body)
    if not isinstance(value, dict):
        raise ApiError(
            400,
            "not_an_object",
            f"The body must be a JSON object, not a JSON {json_type(value)}.",
        )
    return value


class JsonObjectParser(Parser):
    """Parses the bodies of typed endpoints with the same rules (and errors) as ingest."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        require_json_content_type(request)
        return parse_json_object(request.body)


# --- shared lookups -----------------------------------------------------------------------


def token_of(request: HttpRequest) -> ApiToken:
    # Ninja sets request.auth to what TokenAuth returned; HttpRequest does not declare it.
    return request.auth  # type: ignore[attr-defined]


def workflow_for(token: ApiToken, slug: str) -> Workflow:
    """The workflow the token may send to: 404 unknown_workflow, 403 forbidden."""
    workflow = None
    if _SLUG.match(slug):
        # The scope check rides along: one query on the ingest path instead of two.
        scoped = ApiToken.workflows.through.objects.filter(
            apitoken_id=token.pk, workflow_id=OuterRef("pk")
        )
        workflow = Workflow.objects.filter(slug=slug).annotate(in_scope=Exists(scoped)).first()
    if workflow is None or workflow.current_version_id is None:
        raise ApiError(404, "unknown_workflow", f"There is no workflow {slug[:64]!r}.")
    if not (token.all_workflows or workflow.in_scope):
        raise ApiError(
            403, "forbidden", f"This token is not scoped to the workflow {workflow.slug!r}."
        )
    return workflow


def visible_events(token: ApiToken) -> Any:
    return Event.objects.filter(workflow__in=workflows_visible_to(token))


def event_for(token: ApiToken, event_id: int) -> Event:
    """An event of a workflow the token may see; 404 not_found otherwise (ids do not leak)."""
    event = None
    if 0 < event_id <= MAX_ID:
        event = visible_events(token).filter(pk=event_id).first()
    if event is None:
        raise ApiError(404, "not_found", f"There is no event {event_id}.")
    return event


def verify_signature(workflow: Workflow, request: HttpRequest, body: bytes) -> None:
    """Standard Webhooks signature check, for workflows with an inbound secret."""
    if not workflow.inbound_secret:
        return
    headers = {
        name: request.headers.get(name, "")
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    }
    missing = [name for name, value in headers.items() if not value]
    if missing:
        raise ApiError(
            401,
            "unauthenticated",
            "Missing webhook signature: this workflow requires signed requests.",
            details={"missing_headers": missing},
        )
    try:
        webhook = Webhook(workflow.inbound_secret)
    except (ValueError, EmptyWebhookSecretError):
        logger.error("workflow %s has an unusable inbound secret", workflow.slug)
        raise ApiError(
            401, "unauthenticated", "The webhook signature cannot be verified."
        ) from None
    try:
        webhook.verify(body, headers, json_parse=False)
    except WebhookVerificationError as exc:
        message = str(exc)
        # The library says "timestamp too old/new"; any other wording still gets a 401.
        if "timestamp" in message.lower():
            message = "Invalid webhook signature: webhook-timestamp is more than 5 minutes off."
        else:
            message = "Invalid webhook signature."
        raise ApiError(401, "unauthenticated", message) from None
    except ValueError:  # malformed signature list or base64, a body that is not UTF-8
        raise ApiError(401, "unauthenticated", "Invalid webhook signature.") from None


def _source(token: ApiToken) -> str:
    return f"api:{token.name}"


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
    workflow = workflow_for(token, slug)
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
            source=_source(token),
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
        if not _KEY.match(value):
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
    workflow = workflow_for(token, slug)
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
        if item.idempotency_key is not None and not _KEY.match(item.idempotency_key):
            raise ApiError(
                400,
                "invalid_request",
                f"events[{index}].idempotency_key must be printable ASCII without spaces.",
                details={"index": index},
            )
        items.append(IncomingEvent(item.payload, item.idempotency_key))
    try:
        stored = event_ingest_batch(
            workflow=workflow, items=items, headers=request.headers, source=_source(token)
        )
    except UnknownWorkflow:
        raise ApiError(404, "unknown_workflow", f"There is no workflow {slug[:64]!r}.") from None
    except IdempotencyConflict as exc:
        raise _conflict(exc, batch=True) from None
    results = [BatchResult(id=event.pk, duplicate=duplicate) for event, duplicate in stored]
    return Status(202, BatchOut(results=results))


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
