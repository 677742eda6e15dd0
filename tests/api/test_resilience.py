"""The API's promises under failure: its error shape everywhere, 503 without a database,
events stored while Redis is down, and never a 500 for a malformed request."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
from celery import Celery
from celery import current_app as celery_current_app
from django.conf import settings
from django.db import connections
from django.test import override_settings

from tests.support.api import Api, error_code
from workflows import dispatch
from workflows.models import Event, EventState, Workflow
from workflows.tasks import process_due, sweep

pytestmark = pytest.mark.django_db

PATH = "/workflows/lead-routing/events"


def closed_port() -> int:
    """A local port nothing listens on: connections to it are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def database_unreachable() -> Iterator[None]:
    """Requests in this thread get a fresh default connection to a port where nothing runs."""
    original = connections["default"]
    settings_dict = {**original.settings_dict, "HOST": "127.0.0.1", "PORT": str(closed_port())}
    unreachable = original.__class__(settings_dict, alias="default")
    connections["default"] = unreachable
    try:
        yield
    finally:
        unreachable.close()
        connections["default"] = original


def test_a_request_while_the_database_is_unreachable_is_503_unavailable(
    api: Api, workflow: Workflow
) -> None:
    with database_unreachable():
        response = api.post(PATH, {"a": 1}, headers={"Idempotency-Key": "k"})

    assert response.status_code == 503
    assert error_code(response) == "unavailable"
    assert response["Retry-After"]
    assert Event.objects.count() == 0


@contextmanager
def redis_at(url: str) -> Iterator[None]:
    """Requests in this thread use Redis at `url`, for the broker and the rate limiter alike."""
    previous_app = celery_current_app._get_current_object()
    try:
        with override_settings(REDIS_URL=url, CELERY={**settings.CELERY, "broker_url": url}):
            # The console's Celery app read its settings at start-up: make one that reads these.
            Celery("handoff-redis-elsewhere", set_as_current=True).conf.update(settings.CELERY)
            yield
    finally:
        previous_app.set_current()


@contextmanager
def hung_server() -> Iterator[str]:
    """A Redis address that accepts connections (in the kernel) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/1"


def wait_for_broker_marked_down(timeout: float = 5.0) -> float:
    """Wait until the publisher has tried the broker and given up; returns how long that took."""
    started = time.monotonic()
    while not (dispatch._broker_down_until > time.monotonic() and dispatch._pending_app is None):
        if time.monotonic() - started > timeout:
            raise AssertionError("the publisher did not give up on the broker")
        time.sleep(0.02)
    return time.monotonic() - started


def test_events_keep_being_stored_while_redis_is_down(
    api: Api, workflow: Workflow, django_capture_on_commit_callbacks: Any
) -> None:
    down = f"redis://127.0.0.1:{closed_port()}/1"
    with redis_at(down):
        with django_capture_on_commit_callbacks(execute=True):
            first = api.post(PATH, {"n": 1})
            second = api.post(PATH, {"n": 2})
        assert wait_for_broker_marked_down() < 2.0
        assert not dispatch.wake_workers(), "a broker known to be down is left alone"

    assert (first.status_code, second.status_code) == (202, 202)
    assert Event.objects.count() == 2


def test_ingest_answers_at_once_while_redis_hangs_and_the_events_wait_for_it(
    api: Api, workflow: Workflow, django_capture_on_commit_callbacks: Any
) -> None:
    took = []
    with hung_server() as hung, redis_at(hung):
        for n in range(10):
            started = time.monotonic()
            # Each request runs its commit's callbacks (the wake-up) before it answers.
            with django_capture_on_commit_callbacks(execute=True):
                response = api.post(PATH, {"n": n})
            took.append(time.monotonic() - started)
            assert response.status_code == 202
        # The publisher, not a request, waited on the hung broker, and gave up.
        assert wait_for_broker_marked_down() < 3.0

    assert max(took) < 2.0, took
    assert Event.objects.filter(state=EventState.RECEIVED).count() == 10
    # Redis is back: the sweeper finds the events due and wakes a worker for them.
    events = redis.Redis.from_url(settings.REDIS_URL)
    events.delete(dispatch.EVENTS_QUEUE)
    dispatch._broker_down_until = 0.0
    sweep()
    assert events.llen(dispatch.EVENTS_QUEUE) >= 1
    events.delete(dispatch.EVENTS_QUEUE)
    # The woken worker drains them (the task's own function, in this process).
    assert process_due() == 10
    assert not Event.objects.filter(state=EventState.RECEIVED).exists()


def test_a_wrong_method_is_405_in_the_error_shape(api: Api, workflow: Workflow) -> None:
    response = api.get(PATH)
    put = api.client.put("/api/v1/exceptions", headers={"Authorization": f"Bearer {api.token}"})

    assert response.status_code == 405
    assert error_code(response) == "method_not_allowed"
    assert response["Allow"] == "POST"
    assert put.status_code == 405
    assert error_code(put) == "method_not_allowed"


@pytest.mark.parametrize("path", ["/", "/nope", "/events/abc", "/workflows/x/events/y/z"])
def test_an_unknown_path_is_a_json_404(api: Api, path: str) -> None:
    response = api.get(path)

    assert response.status_code == 404
    assert error_code(response) == "not_found"
    assert response["Content-Type"].startswith("application/json")


def test_the_openapi_schema_lists_every_path_without_a_token(client: Any) -> None:
    response = client.get("/api/v1/openapi.json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "Handoff API"
    assert schema["info"]["version"] == "1"
    assert set(schema["paths"]) == {
        "/api/v1/workflows/{slug}/events",
        "/api/v1/workflows/{slug}/events/batch",
        "/api/v1/events/{event_id}",
        "/api/v1/events/{event_id}/outcome",
        "/api/v1/exceptions",
        "/api/v1/workflows/{slug}/owner",
        "/api/v1/workflows/{slug}/readiness",
    }
    assert schema["components"]["securitySchemes"]["TokenAuth"]["scheme"] == "bearer"


def test_there_is_no_docs_page(client: Any) -> None:
    assert client.get("/api/v1/docs").status_code == 404


# --- no request yields a 500 ----------------------------------------------------------------

_LONG_NESTING = b'{"a":' * 5000 + b"1" + b"}" * 5000
MALFORMED: list[tuple[str, str, dict[str, Any]]] = [
    ("post", PATH, {"raw": b"\x00\x01\x02"}),
    ("post", PATH, {"raw": b'{"a": "\\u0000"}'}),
    ("post", PATH, {"raw": b'{"\\udfff": 1}'}),
    ("post", PATH, {"raw": b'{"a": Infinity}'}),
    ("post", PATH, {"raw": b'{"n": ' + b"9" * 5000 + b"}"}),
    ("post", PATH, {"raw": _LONG_NESTING}),
    ("post", PATH, {"raw": b'{"a": 1}', "CONTENT_LENGTH": "abc"}),
    ("post", PATH, {"raw": b'{"a": 1}', "CONTENT_LENGTH": "-5"}),
    ("post", PATH, {"raw": b"{}", "CONTENT_TYPE": "application/json; charset=nope"}),
    ("post", PATH, {"raw": b"{}", "content_type": ""}),
    ("post", PATH, {"raw": b"{}", "headers": {"Idempotency-Key": "\x00"}}),
    ("post", PATH, {"raw": b"{}", "headers": {"webhook-id": "a b"}}),
    ("post", PATH, {"raw": b"{}", "headers": {"User-Agent": "x\x00y"}}),
    ("post", PATH, {"raw": b"{}", "headers": {"Authorization": "Bearer hnd_\x00\x00"}}),
    ("post", PATH, {"raw": b"{}", "headers": {"Authorization": "Bearer " + "x" * 5000}}),
    ("post", "/workflows/%00/events", {"raw": b"{}"}),
    ("post", "/workflows/" + "s" * 300 + "/events", {"raw": b"{}"}),
    ("post", "/workflows/lead-routing/events/batch", {"raw": b'{"events": null}'}),
    ("post", "/workflows/lead-routing/events/batch", {"raw": b'{"events": [null]}'}),
    ("post", "/workflows/lead-routing/events/batch", {"raw": b'{"events": [{"payload": 1}]}'}),
    (
        "post",
        "/workflows/lead-routing/events/batch",
        {"body": {"events": [{"payload": {}, "idempotency_key": "\x00"}]}},
    ),
    (
        "post",
        "/workflows/lead-routing/events/batch",
        {"body": {"events": [{"payload": {"a": "\u0000"}}]}},
    ),
    ("post", "/workflows/lead-routing/events/batch", {"raw": b"[]"}),
    ("post", "/workflows/lead-routing/events/batch", {"raw": b"", "content_type": "text/csv"}),
    ("post", "/events/1/outcome", {"raw": b"nope"}),
    ("post", "/events/1/outcome", {"body": {"status": "achieved", "evidence": []}}),
    ("post", "/events/99999999999999999999999/outcome", {"body": {"status": "achieved"}}),
    ("get", "/events/99999999999999999999999", {}),
    ("get", "/events/-1", {}),
    ("get", "/exceptions?cursor=%00", {}),
    ("get", "/exceptions?cursor=" + "A" * 500, {}),
    ("get", "/exceptions?cursor=WzEsMl0=", {}),
    ("get", "/exceptions?owner=user:%00", {}),
    ("get", "/exceptions?workflow=%00", {}),
    ("get", "/exceptions?limit=99999999999999999999999", {}),
    ("get", "/exceptions?state=open&state=closed", {}),
    ("delete", PATH, {}),
    ("head", "/exceptions", {}),
    ("options", PATH, {}),
]


@pytest.mark.parametrize(("method", "path", "options"), MALFORMED)
def test_no_malformed_request_yields_a_500(
    api: Api, workflow: Workflow, method: str, path: str, options: dict[str, Any]
) -> None:
    options = dict(options)
    if method == "post":
        raw = options.pop("raw", None)
        body = options.pop("body", None)
        if raw is None:
            raw = json.dumps(body).encode()
        response = api.post(path, raw=raw, **options)
    else:
        headers = {"Authorization": f"Bearer {api.token}"}
        response = getattr(api.client, method)(f"/api/v1{path}", headers=headers)

    assert response.status_code < 500
    if response.status_code >= 400 and method != "head":
        assert set(response.json()) == {"error"}
        assert {"code", "message"} <= set(response.json()["error"])
