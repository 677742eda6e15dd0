"""The webhook action: a signed POST whose answer is classified, never an exception to crash on.

Signed per Standard Webhooks: `webhook-id` is the event's, the same on every attempt, so a
receiver that saw it before can drop the repeat. One httpx client per process keeps connections
to busy destinations open; a batch's deliveries run side by side in a small thread pool so a
slow destination does not hold up the rest of the batch.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone
from standardwebhooks import Webhook

logger = logging.getLogger(__name__)

USER_AGENT = "Handoff-Webhooks/1"
MAX_PARALLEL_DELIVERIES = 8
# What of a refusal we keep on the attempt: enough to see why, not the destination's whole page.
RESPONSE_EXCERPT_BYTES = 2000
RETRYABLE_STATUSES = frozenset({408, 429})


class Verdict(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # transient: try again on the workflow's schedule
    REJECT = "reject"  # the destination (or our configuration) refused; retrying will not help


@dataclass(frozen=True)
class WebhookRequest:
    url: str
    body: str
    webhook_id: str
    secret: str
    timeout_seconds: float


@dataclass(frozen=True)
class WebhookResult:
    verdict: Verdict
    started_at: datetime
    finished_at: datetime
    duration_ms: int
    http_status: int | None = None
    error_class: str = ""
    error_message: str = ""


def webhook_body(
    *,
    event_id: int,
    workflow: str,
    version: int,
    payload: Any,
    context: dict[str, Any],
    owner: str,
) -> str:
    """The JSON document a destination receives, exactly as it is signed."""
    document = {
        "event_id": event_id,
        "workflow": workflow,
        "version": version,
        "payload": payload,
        "context": context,
        "owner": owner,
    }
    return json.dumps(document, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)


def signed_headers(*, secret: str, webhook_id: str, body: str, at: datetime) -> dict[str, str]:
    signature = Webhook(secret).sign(msg_id=webhook_id, timestamp=at, data=body)
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


def classify_status(status: int) -> Verdict:
    """2xx delivered; 408, 429 and 5xx are worth another try; any other answer is a refusal."""
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status in RETRYABLE_STATUSES or status >= 500:
        return Verdict.RETRY
    return Verdict.REJECT


_client: httpx.Client | None = None
_client_pid = 0
_client_lock = threading.Lock()


def http_client() -> httpx.Client:
    """The process's client, made after fork: a prefork child must not use its parent's sockets."""
    global _client, _client_pid
    pid = os.getpid()
    if _client is None or _client_pid != pid:
        with _client_lock:
            if _client is None or _client_pid != pid:
                _client = httpx.Client(
                    follow_redirects=False,
                    headers={"user-agent": USER_AGENT},
                    limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
                )
                _client_pid = pid
    return _client


def _excerpt(response: httpx.Response) -> str:
    collected = b""
    for chunk in response.iter_bytes():
        collected += chunk
        if len(collected) >= RESPONSE_EXCERPT_BYTES:
            break
    return collected[:RESPONSE_EXCERPT_BYTES].decode("utf-8", errors="replace")


def webhook_send(request: WebhookRequest) -> WebhookResult:
    """POST one signed delivery and classify what came back. Never raises."""
    started_at = timezone.now()
    clock = time.monotonic()

    def result(verdict: Verdict, **fields: Any) -> WebhookResult:
        duration_ms = max(0, round((time.monotonic() - clock) * 1000))
        return WebhookResult(
            verdict=verdict,
            started_at=started_at,
            finished_at=timezone.now(),
            duration_ms=duration_ms,
            **fields,
        )

    try:
        headers = signed_headers(
            secret=request.secret, webhook_id=request.webhook_id, body=request.body, at=started_at
        )
    except Exception as exc:  # an empty or malformed secret: configuration, not the network
        return result(
            Verdict.REJECT,
            error_class="SigningError",
            error_message=f"could not sign the delivery: {type(exc).__name__}: {exc}",
        )

    try:
        with http_client().stream(
            "POST",
            request.url,
            content=request.body.encode("utf-8"),
            headers=headers,
            timeout=httpx.Timeout(request.timeout_seconds),
        ) as response:
            verdict = classify_status(response.status_code)
            message = "" if verdict is Verdict.DELIVERED else _excerpt(response)
            return result(
                verdict,
                http_status=response.status_code,
                error_class="" if verdict is Verdict.DELIVERED else f"HTTP {response.status_code}",
                error_message=message,
            )
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        return result(Verdict.REJECT, error_class=type(exc).__name__, error_message=str(exc))
    except httpx.TimeoutException as exc:
        return result(
            Verdict.RETRY,
            error_class=type(exc).__name__,
            error_message=str(exc) or f"no answer within {request.timeout_seconds:g} s",
        )
    except httpx.TransportError as exc:
        return result(Verdict.RETRY, error_class=type(exc).__name__, error_message=str(exc))
    except Exception as exc:  # unknown: assume transient, keep the evidence
        logger.exception("unexpected error delivering %s to %s", request.webhook_id, request.url)
        return result(Verdict.RETRY, error_class=type(exc).__name__, error_message=str(exc))


def webhooks_send(requests: Sequence[WebhookRequest]) -> list[WebhookResult]:
    """Deliver several at once; results come back in the order of the requests."""
    if not requests:
        return []
    if len(requests) == 1:
        return [webhook_send(requests[0])]
    with ThreadPoolExecutor(
        max_workers=min(MAX_PARALLEL_DELIVERIES, len(requests)),
        thread_name_prefix="webhook",
    ) as pool:
        return list(pool.map(webhook_send, requests))
