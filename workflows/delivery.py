"""The webhook action: a signed POST whose answer is classified, never an exception to crash on.

Signed per Standard Webhooks: `webhook-id` is the event's, the same on every attempt, so a
receiver that saw it before can drop the repeat. A batch's deliveries run side by side on an
event loop, each inside a total deadline (connect, send and read together), a few at a time per
destination so one dead host cannot take every slot, and the batch inside a deadline of its own.
Whatever the destination answers is stored only through the sanitiser, with the URL redacted.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import queue
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import httpcore
import httpx
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone
from standardwebhooks import Webhook

from workflows.destinations import (
    AddressPolicy,
    DestinationRefused,
    GuardedBackend,
    redacted_text,
    redacted_url,
)
from workflows.sanitise import external_text, inflated

logger = logging.getLogger(__name__)

USER_AGENT = "Handoff-Webhooks/1"
MAX_PARALLEL_DELIVERIES = 16
# What of a refusal we keep on the attempt: enough to see why, not the destination's whole page.
RESPONSE_EXCERPT_CHARS = 2000
RESPONSE_RAW_BYTES = 16 * 1024
DEADLINE_GRACE_SECONDS = 0.25
# A 2xx answer's body up to this size, arriving within this time, is read to its end so its
# connection goes back to the pool for the next delivery to the same host.
RELEASE_BYTES = 64 * 1024
RELEASE_SECONDS = 0.2
RETRYABLE_STATUSES = frozenset({408, 429})
REPLAY_OF_HEADER = "handoff-replay-of"


class Verdict(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # transient: try again on the workflow's schedule
    REJECT = "reject"  # the destination (or our configuration) refused; retrying will not help
    DEFERRED = "deferred"  # not sent: the batch had no time left for it; not an attempt


@dataclass(frozen=True)
class WebhookRequest:
    url: str
    body: str
    webhook_id: str
    secret: str
    timeout_seconds: float
    headers: dict[str, str] = field(default_factory=dict)  # sent as they are, before signing's


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
    replay_of: int | None = None,
) -> str:
    """The JSON document a destination receives, exactly as it is signed.

    A replay names the event it replays (`replay_of`, and the REPLAY_OF_HEADER), so a receiver
    can tell a replayed refund from a new one.
    """
    document: dict[str, Any] = {
        "event_id": event_id,
        "workflow": workflow,
        "version": version,
        "payload": payload,
        "context": context,
        "owner": owner,
    }
    if replay_of is not None:
        document["replay_of"] = replay_of
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


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle costs milliseconds; every batch's client shares one context.
    return httpx.create_ssl_context()


def _client(policy: AddressPolicy) -> httpx.AsyncClient:
    """A client for one batch: no proxy from the environment, no redirects, guarded addresses."""
    transport = httpx.AsyncHTTPTransport(verify=_tls_context(), trust_env=False)
    # httpx has no public way to hand its connection pool a network backend; the pool is
    # rebuilt with the same limits and the guard that checks every address connected to.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=_tls_context(),
        max_connections=MAX_PARALLEL_DELIVERIES,
        network_backend=GuardedBackend(policy),
    )
    return httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,
        trust_env=False,
        headers={"user-agent": USER_AGENT},
    )


def webhooks_deliver(
    requests: Sequence[WebhookRequest], *, deadline: float | None = None
) -> Iterator[tuple[int, WebhookResult]]:
    """Deliver side by side; yield (index, result) as each returns, so it can be recorded then.

    `deadline` (a time.monotonic() value) bounds the whole batch: a delivery that could not run
    its full timeout before it is not sent (Verdict.DEFERRED), so a batch never outlives the
    task that runs it. At most `per_destination` deliveries go to one host at a time, so one
    dead host cannot hold every slot. The caller's thread does the recording: the deliveries
    run on an event loop in a thread of their own.
    """
    if not requests:
        return
    results: queue.SimpleQueue[tuple[int, WebhookResult] | BaseException | None] = (
        queue.SimpleQueue()
    )
    policy = AddressPolicy.from_settings()
    per_destination = getattr(settings, "HANDOFF_DELIVERY_PER_DESTINATION", 4)

    def run() -> None:
        try:
            asyncio.run(_deliver_all(requests, deadline, policy, per_destination, results.put))
        except BaseException as exc:  # handed to the caller, who raises it
            results.put(exc)
        finally:
            results.put(None)

    thread = threading.Thread(target=run, name="webhooks", daemon=True)
    thread.start()
    while (item := results.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield item
    thread.join()


def webhooks_send(
    requests: Sequence[WebhookRequest], *, deadline: float | None = None
) -> list[WebhookResult]:
    """Deliver several at once; results come back in the order of the requests."""
    found = dict(webhooks_deliver(requests, deadline=deadline))
    return [found[index] for index in range(len(requests))]


def webhook_send(request: WebhookRequest) -> WebhookResult:
    """POST one signed delivery and classify what came back. Never raises."""
    return webhooks_send([request])[0]


async def _deliver_all(
    requests: Sequence[WebhookRequest],
    deadline: float | None,
    policy: AddressPolicy,
    per_destination: int,
    report: Callable[[tuple[int, WebhookResult]], None],
) -> None:
    slots = asyncio.Semaphore(MAX_PARALLEL_DELIVERIES)
    hosts: dict[str, asyncio.Semaphore] = {}

    async def one(index: int, request: WebhookRequest) -> None:
        host = hosts.setdefault(_destination(request.url), asyncio.Semaphore(per_destination))
        async with host, slots:
            report((index, await _deliver(client, request, deadline)))

    async with _client(policy) as client:
        await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))


def _destination(url: str) -> str:
    try:
        parts = httpx.URL(url)
        return f"{parts.scheme}://{parts.host}:{parts.port}"
    except Exception:  # an unusable URL fails on its own, in _deliver
        return url


@dataclass(frozen=True)
class _Clock:
    """When a delivery started, to stamp its result."""

    request: WebhookRequest
    started_at: datetime = field(default_factory=timezone.now)
    started: float = field(default_factory=time.monotonic)

    def result(self, verdict: Verdict, **fields: Any) -> WebhookResult:
        if "error_message" in fields:
            # Whatever came from outside is stored only sanitised, and never with the secret.
            fields["error_message"] = external_text(
                redacted_text(fields["error_message"], self.request.url),
                limit=RESPONSE_EXCERPT_CHARS,
            )
        return WebhookResult(
            verdict=verdict,
            started_at=self.started_at,
            finished_at=timezone.now(),
            duration_ms=max(0, round((time.monotonic() - self.started) * 1000)),
            **fields,
        )


async def _deliver(
    client: httpx.AsyncClient, request: WebhookRequest, deadline: float | None
) -> WebhookResult:
    clock = _Clock(request)
    budget = request.timeout_seconds
    if deadline is not None and deadline - clock.started < budget:
        return clock.result(
            Verdict.DEFERRED,
            error_class="Deferred",
            error_message=(
                f"not sent: fewer than the {budget:g} s this delivery may take were left "
                "in the batch's time"
            ),
        )
    try:
        signature = signed_headers(
            secret=request.secret,
            webhook_id=request.webhook_id,
            body=request.body,
            at=clock.started_at,
        )
    except Exception as exc:  # an empty or malformed secret: configuration, not the network
        return clock.result(
            Verdict.REJECT,
            error_class="SigningError",
            error_message=f"could not sign the delivery: {type(exc).__name__}: {exc}",
        )
    try:
        return await _post(client, request, {**request.headers, **signature}, clock)
    except Exception as exc:
        return _failed(exc, request, clock)


async def _post(
    client: httpx.AsyncClient, request: WebhookRequest, headers: dict[str, str], clock: _Clock
) -> WebhookResult:
    budget = request.timeout_seconds
    # httpx bounds each operation; the outer deadline, a little later, bounds the request as a
    # whole, so a destination that drips its answer cannot hold it past its timeout.
    async with asyncio.timeout(budget + DEADLINE_GRACE_SECONDS):
        async with client.stream(
            "POST",
            request.url,
            content=request.body.encode("utf-8"),
            headers=headers,
            timeout=httpx.Timeout(budget),
        ) as response:
            status = response.status_code
            verdict = classify_status(status)
            if verdict is Verdict.DELIVERED:
                await _release(response, clock)
                return clock.result(verdict, http_status=status)
            message = await _excerpt(response)
            return clock.result(
                verdict, http_status=status, error_class=f"HTTP {status}", error_message=message
            )


def _failed(exc: Exception, request: WebhookRequest, clock: _Clock) -> WebhookResult:
    """A delivery that got no answer, classified: worth another try, or a refusal."""
    budget, name = request.timeout_seconds, type(exc).__name__
    if isinstance(exc, TimeoutError):
        return clock.result(
            Verdict.RETRY,
            error_class="DeadlineExceeded",
            error_message=f"no complete answer within {budget:g} s",
        )
    if isinstance(exc, DestinationRefused | httpx.UnsupportedProtocol | httpx.InvalidURL):
        return clock.result(Verdict.REJECT, error_class=name, error_message=str(exc))
    if isinstance(exc, httpx.TimeoutException):
        message = str(exc) or f"no answer within {budget:g} s"
        return clock.result(Verdict.RETRY, error_class=name, error_message=message)
    if not isinstance(exc, httpx.TransportError):  # unknown: assume transient, keep the evidence
        shown = redacted_url(request.url)
        logger.error(
            "unexpected error delivering %s to %s", request.webhook_id, shown, exc_info=exc
        )
    return clock.result(Verdict.RETRY, error_class=name, error_message=str(exc))


async def _release(response: httpx.Response, clock: _Clock) -> None:
    """Read a short 2xx body to its end, so its connection can carry the next delivery.

    A connection whose answer was left unread is closed, and the next delivery to that host
    opens another (a TCP and TLS handshake each time). What is read is not kept. A body that
    is long, slow or broken is left, its connection closed: the answer was a 2xx already, and
    nothing after it changes that, nor may it hold the delivery past its time.
    """
    left = clock.started + clock.request.timeout_seconds - time.monotonic()
    if left < 2 * RELEASE_SECONDS:
        return
    read = 0
    try:
        async with asyncio.timeout(RELEASE_SECONDS):
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read > RELEASE_BYTES:
                    return
    except (TimeoutError, httpx.HTTPError):
        return


async def _excerpt(response: httpx.Response) -> str:
    """What of a refusal we keep: a bounded read of the raw body, inflated with a bound too."""
    collected = b""
    async for chunk in response.aiter_raw():
        collected += chunk
        if len(collected) >= RESPONSE_RAW_BYTES:
            break
    coding = response.headers.get("content-encoding", "")
    body = inflated(collected[:RESPONSE_RAW_BYTES], coding)
    if body is None:
        return f"{coding}-encoded body, {len(collected)} bytes (not shown)"
    return external_text(body, limit=RESPONSE_EXCERPT_CHARS)
