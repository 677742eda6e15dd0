"""What every endpoint of the engine's API shares: the error shape, reading and parsing bodies,
the token's view of workflows and events, inbound signatures.

Every error leaves as {"error": {"code", "message", "details"?}}: handlers raise ApiError, and
console.api renders it (and every other exception) in that shape.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.db.models import Exists, OuterRef
from django.http import HttpRequest
from ninja import Router, Schema
from ninja.parser import Parser
from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError, WebhookVerificationError

from workflows.api_cache import token_grant, workflow_ref
from workflows.auth import workflows_visible_to
from workflows.definitions import json_type
from workflows.models import ApiToken, Event, Workflow
from workflows.services.ingest import (
    PayloadRefused,
    json_parse,
)

logger = logging.getLogger(__name__)

MAX_BATCH_EVENTS = 1000
# Event ids are bigint: anything larger cannot be one, and must not reach the database.
MAX_ID = 2**63 - 1
_SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")
# Printable ASCII without spaces, as in the IETF Idempotency-Key draft's examples.
KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
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
        # The scope check rides along: one query instead of two.
        scoped = ApiToken.workflows.through.objects.filter(
            apitoken_id=token.pk, workflow_id=OuterRef("pk")
        )
        workflow = Workflow.objects.filter(slug=slug).annotate(in_scope=Exists(scoped)).first()
    if workflow is None or workflow.current_version_id is None:
        raise _unknown_workflow(slug)
    if not (token.all_workflows or workflow.in_scope):
        raise _forbidden(workflow.slug)
    return workflow


def ingest_workflow_for(token: ApiToken, slug: str) -> Workflow:
    """workflow_for on the ingest path, from the process's short-lived cache: no query.

    The instance carries only what ingest reads (id, slug, inbound secret); the version an
    event runs under is read by its INSERT.
    """
    ref = workflow_ref(slug) if _SLUG.match(slug) else None
    if ref is None or ref.current_version_id is None:
        raise _unknown_workflow(slug)
    grant = token_grant(token.token_hash)
    if not (token.all_workflows or (grant is not None and ref.pk in grant.workflow_ids)):
        raise _forbidden(ref.slug)
    return ref.as_workflow()


def _unknown_workflow(slug: str) -> ApiError:
    return ApiError(404, "unknown_workflow", f"There is no workflow {slug[:64]!r}.")


def _forbidden(slug: str) -> ApiError:
    return ApiError(403, "forbidden", f"This token is not scoped to the workflow {slug!r}.")


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


def event_source(token: ApiToken) -> str:
    return f"api:{token.name}"
