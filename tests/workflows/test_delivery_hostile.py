"""Deliveries to destinations that misbehave: binary bodies, dripping answers, dead hosts,
addresses that must not be reached, secrets in URLs."""

from __future__ import annotations

import gzip
import logging
import socket
import threading
import time
from contextlib import suppress

import pytest
from django.test import override_settings

from tests.factories import ENTERPRISE_EMEA_LEAD, event_create
from tests.support.engine import process_due, reload
from tests.support.servers import drip, read_request, tcp_server
from tests.support.sinks import Reply, Sink
from workflows.delivery import Verdict, WebhookRequest, webhook_send, webhooks_send
from workflows.destinations import redacted_url
from workflows.models import EventState

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # base64 of 24 bytes, test only


def request_to(url: str, *, timeout: float = 2.0) -> WebhookRequest:
    return WebhookRequest(
        url=url, body='{"event_id": 1}', webhook_id="1", secret=SECRET, timeout_seconds=timeout
    )


@pytest.mark.parametrize("headers_first", [True, False], ids=["body", "status line"])
def test_a_dripping_destination_is_cut_off_at_the_deadline(headers_first: bool) -> None:
    if headers_first:
        # A refusal's body is read for the attempt's evidence: drip that.
        answer = b"HTTP/1.1 503 Busy\r\nContent-Length: 1000\r\n\r\n" + b"x" * 1000
    else:
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    with tcp_server(drip(answer)) as server:
        started = time.monotonic()
        result = webhook_send(request_to(server.url, timeout=1.0))
        took = time.monotonic() - started
    assert result.verdict is Verdict.RETRY
    assert result.error_class == "DeadlineExceeded"
    assert result.error_message == "no complete answer within 1 s"
    assert took < 1.0 + 1.0


def test_a_nul_body_is_kept_as_a_readable_excerpt(sink: Sink) -> None:
    url = sink.script("/bin", Reply(500, body=b"\x00\x01\x02binary error page\xff\xfe"))
    result = webhook_send(request_to(url))
    assert result.verdict is Verdict.RETRY
    assert result.http_status == 500
    assert "\x00" not in result.error_message
    assert result.error_message.startswith("binary, 22 bytes: 00 01 02 62")


def test_a_utf16_error_page_is_decoded(sink: Sink) -> None:
    url = sink.script("/utf16", Reply(503, body="Überlastet".encode("utf-16")))
    assert webhook_send(request_to(url)).error_message == "Überlastet"


def test_a_compressed_bomb_is_inflated_only_to_a_bound() -> None:
    bomb = gzip.compress(b"A" * (20 * 1024 * 1024))

    def answer(conn: socket.socket, stop: threading.Event) -> None:
        read_request(conn)
        head = (
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Encoding: gzip\r\n"
            + f"Content-Length: {len(bomb)}\r\n\r\n".encode()
        )
        with suppress(OSError):
            conn.sendall(head + bomb)
        conn.close()

    with tcp_server(answer) as server:
        result = webhook_send(request_to(server.url))
    assert result.http_status == 500
    assert len(result.error_message) <= 2000
    assert result.error_message.startswith("AAAA")


def test_the_nul_answer_leaves_an_attempt_and_a_retry(lead_version, sink: Sink) -> None:
    event = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    sink.script("/crm/leads", Reply(500, body=b"\x00" * 40))
    result = process_due()
    assert result.written == 1
    event = reload(event)
    assert event.state == EventState.RETRY_SCHEDULED
    (attempt,) = event.attempts.all()
    assert attempt.http_status == 500
    assert attempt.error_message.startswith("binary, 40 bytes: 00 00")


def test_one_destination_gets_at_most_its_share_of_deliveries_at_once() -> None:
    lock = threading.Lock()
    current = peak = 0

    def hold(conn: socket.socket, stop: threading.Event) -> None:
        nonlocal current, peak
        read_request(conn)
        with lock:
            current += 1
            peak = max(peak, current)
        time.sleep(0.3)
        with lock:
            current -= 1
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        conn.close()

    with override_settings(HANDOFF_DELIVERY_PER_DESTINATION=2), tcp_server(hold) as server:
        results = webhooks_send([request_to(server.url) for _ in range(8)])
    assert [r.verdict for r in results] == [Verdict.DELIVERED] * 8
    assert peak == 2


def test_a_batch_deadline_defers_what_could_not_finish_in_time() -> None:
    # A listener that never accepts: connections complete in the kernel, answers never come.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
    try:
        started = time.monotonic()
        with override_settings(HANDOFF_DELIVERY_PER_DESTINATION=4):
            results = webhooks_send(
                [request_to(url, timeout=1.0) for _ in range(12)], deadline=started + 2.5
            )
        took = time.monotonic() - started
    finally:
        silent.close()
    verdicts = [r.verdict for r in results]
    assert verdicts.count(Verdict.RETRY) == 8
    assert verdicts.count(Verdict.DEFERRED) == 4
    assert took < 2.5 + 0.5


@override_settings(HANDOFF_DESTINATION_REFUSE_PRIVATE=True, HANDOFF_DESTINATION_ALLOWLIST=[])
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/x",
        "http://localhost:{port}/x",
        "http://[::ffff:127.0.0.1]:{port}/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/x",
        "http://[::1]:{port}/x",
    ],
)
def test_non_public_addresses_are_refused_in_production(url: str, sink: Sink) -> None:
    port = sink.server.server_address[1]
    result = webhook_send(request_to(url.format(port=port)))
    assert result.verdict is Verdict.REJECT
    assert result.error_class == "DestinationRefused"
    assert "HANDOFF_DESTINATION_ALLOWLIST" in result.error_message
    assert sink.requests() == []


@pytest.mark.parametrize("allowed", ["127.0.0.1", "127.0.0.0/8", "localhost"])
def test_the_allowlist_lets_a_named_private_destination_through(allowed: str, sink: Sink) -> None:
    url = sink.url("/ok").replace("127.0.0.1", "localhost")
    with override_settings(
        HANDOFF_DESTINATION_REFUSE_PRIVATE=True, HANDOFF_DESTINATION_ALLOWLIST=[allowed]
    ):
        assert webhook_send(request_to(url)).verdict is Verdict.DELIVERED


def test_proxies_from_the_environment_are_not_used(
    sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9/")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9/")
    assert webhook_send(request_to(sink.url("/direct"))).verdict is Verdict.DELIVERED
    assert len(sink.requests("/direct")) == 1


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.example.com/a/b", "https://hooks.example.com/a/b"),
        ("https://hooks.example.com/a?token=s3cret", "https://hooks.example.com/a?redacted"),
        ("https://bob:pw@hooks.example.com:8443/a", "https://redacted@hooks.example.com:8443/a"),
        ("http://[::1]:8080/a?k=v#frag", "http://[::1]:8080/a?redacted#redacted"),
        ("http://exa mple.com:99999/", "[an unparseable address, 26 characters]"),
    ],
)
def test_destination_urls_are_redacted(url: str, shown: str) -> None:
    assert redacted_url(url) == shown


def test_an_error_message_naming_the_url_is_redacted() -> None:
    result = webhook_send(request_to("ftp://user:pw@example.com/x?token=s3cret"))
    assert result.verdict is Verdict.REJECT
    assert "s3cret" not in result.error_message
    assert "pw@" not in result.error_message


def test_no_log_line_carries_a_destination_secret(sink: Sink, caplog) -> None:
    caplog.set_level(logging.INFO)
    url = sink.script("/hook", Reply(503)) + "?token=s3cret"
    webhook_send(request_to(url))
    webhook_send(request_to("http://user:pw@127.0.0.1:9/x?token=s3cret"))
    assert "s3cret" not in caplog.text and "pw@" not in caplog.text
