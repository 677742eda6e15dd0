"""What a delivery costs beyond its request: deliveries to one host share a connection (a short
2xx answer is read to its end, so the next one pays no new TCP and TLS handshake; a long or
endless one is left), and no delivery searches the import path for a module."""

from __future__ import annotations

import sys
import time
from importlib.abc import MetaPathFinder

from django.test import override_settings

from tests.support.servers import keep_alive, tcp_server
from workflows.delivery import (
    RELEASE_BYTES,
    RELEASE_SECONDS,
    Verdict,
    WebhookRequest,
    webhooks_send,
)

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # base64 of 24 bytes, test only
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"


def requests_to(url: str, count: int, *, timeout: float = 5.0) -> list[WebhookRequest]:
    return [
        WebhookRequest(
            url=url, body=f'{{"n": {n}}}', webhook_id=f"msg_{n}", secret=SECRET,
            timeout_seconds=timeout,
        )
        for n in range(count)
    ]  # fmt: skip


def test_deliveries_to_one_host_reuse_one_connection() -> None:
    with (
        override_settings(HANDOFF_DELIVERY_PER_DESTINATION=1),
        tcp_server(keep_alive(OK, b'{"ok":true}')) as server,
    ):
        results = webhooks_send(requests_to(server.url, 6))
    assert [r.verdict for r in results] == [Verdict.DELIVERED] * 6
    assert len(server.accepted) == 1


def test_a_2xx_whose_body_never_ends_is_delivered_without_waiting_for_it() -> None:
    head = b"HTTP/1.1 202 Accepted\r\nContent-Length: 5000\r\n\r\n"
    with tcp_server(keep_alive(head, b"partial", then_hold=True)) as server:
        started = time.monotonic()
        (result,) = webhooks_send(requests_to(server.url, 1, timeout=5.0))
        took = time.monotonic() - started
    assert result.verdict is Verdict.DELIVERED
    assert result.http_status == 202
    assert took < RELEASE_SECONDS + 1.0


def test_a_2xx_with_a_long_body_is_delivered_and_its_connection_let_go() -> None:
    body = b"x" * (RELEASE_BYTES * 4)
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    with (
        override_settings(HANDOFF_DELIVERY_PER_DESTINATION=1),
        tcp_server(keep_alive(head, body)) as server,
    ):
        results = webhooks_send(requests_to(server.url, 3))
    assert [r.verdict for r in results] == [Verdict.DELIVERED] * 3
    assert len(server.accepted) == 3


class _CountingFinder(MetaPathFinder):
    """Sees every import that is not already loaded: each is a search of the path."""

    def __init__(self) -> None:
        self.looked_for: list[str] = []

    def find_spec(self, fullname, path, target=None):  # noqa: ANN001, ANN201 (the import API)
        self.looked_for.append(fullname)
        return None


def test_a_batch_of_deliveries_imports_nothing() -> None:
    with tcp_server(keep_alive(OK, b'{"ok":true}')) as server:
        webhooks_send(requests_to(server.url, 2))  # whatever loads once is loaded now
        finder = _CountingFinder()
        sys.meta_path.insert(0, finder)
        try:
            results = webhooks_send(requests_to(server.url, 20))
        finally:
            sys.meta_path.remove(finder)
    assert [r.verdict for r in results] == [Verdict.DELIVERED] * 20
    assert finder.looked_for == []
