"""POST /api/v1/workflows/{slug}/events and its batch variant."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, override_settings
from django.test.client import FakePayload

from tests.factories import WorkflowFactory
from tests.support.api import Api, error_code
from workflows.models import Event, Workflow
from workflows.services import ingest

pytestmark = pytest.mark.django_db

LEAD = {"email": "ada@example.com", "company": {"size": 800}}


def test_first_post_stores_the_event_and_answers_202(api: Api, workflow: Workflow) -> None:
    response = api.post("/workflows/lead-routing/events", LEAD)

    assert response.status_code == 202
    body = response.json()
    assert body == {"id": body["id"], "status": "received", "duplicate": False}
    event = Event.objects.get(pk=body["id"])
    assert event.payload == LEAD
    assert event.workflow == workflow
    assert event.version == workflow.current_version
    assert event.state == "received"
    assert event.step == "validate"
    assert event.next_attempt_at is not None
    canonical = json.dumps(LEAD, sort_keys=True, separators=(",", ":")).encode()
    assert event.payload_hash == hashlib.sha256(canonical).hexdigest()


def test_kept_headers_never_include_the_authorization_header(api: Api, workflow: Workflow) -> None:
    response = api.post(
        "/workflows/lead-routing/events",
        LEAD,
        headers={"User-Agent": "crm/1.0", "X-Request-ID": "upstream-req-42", "X-Other": "x"},
    )

    event = Event.objects.get(pk=response.json()["id"])
    assert event.headers["user-agent"] == "crm/1.0"
    assert event.headers["x-request-id"] == "upstream-req-42"
    assert event.headers["content-type"] == "application/json"
    assert "authorization" not in event.headers
    assert "x-other" not in event.headers
    assert event.source.startswith("api:integration-")


def test_kept_headers_are_stored_safely_whatever_they_hold() -> None:
    kept = ingest.kept_headers({"User-Agent": "crm\x00/1.0 \ud800", "X-Request-ID": "r" * 5000})
    assert kept["user-agent"] == "crm\ufffd/1.0 \ufffd"
    assert len(kept["x-request-id"]) == ingest.MAX_HEADER_LENGTH


def test_the_hash_of_the_body_as_sent_is_kept(api: Api, workflow: Workflow) -> None:
    raw = b'{ "email" : "ada@example.com" }'
    response = api.post("/workflows/lead-routing/events", raw=raw)

    event = Event.objects.get(pk=response.json()["id"])
    assert event.headers[ingest.BODY_HASH_HEADER] == hashlib.sha256(raw).hexdigest()


def test_a_payload_missing_required_fields_is_still_stored(api: Api, workflow: Workflow) -> None:
    response = api.post("/workflows/lead-routing/events", {"unexpected": True})

    assert response.status_code == 202
    assert Event.objects.filter(pk=response.json()["id"]).exists()


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "application/cloudevents+json"]
)
def test_json_media_types_with_parameters_or_suffixes_are_accepted(
    api: Api, workflow: Workflow, content_type: str
) -> None:
    response = api.post("/workflows/lead-routing/events", LEAD, content_type=content_type)

    assert response.status_code == 202


def test_repeated_idempotency_key_returns_the_same_event_with_200(
    api: Api, workflow: Workflow
) -> None:
    headers = {"Idempotency-Key": "lead-123"}
    first = api.post("/workflows/lead-routing/events", LEAD, headers=headers)
    # Same payload, other key order and spacing: still the same payload.
    again = api.post(
        "/workflows/lead-routing/events",
        raw=json.dumps(dict(reversed(list(LEAD.items()))), indent=2),
        headers=headers,
    )

    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json() == {"id": first.json()["id"], "status": "received", "duplicate": True}
    assert Event.objects.count() == 1


def test_same_key_with_a_different_payload_is_a_409_conflict(api: Api, workflow: Workflow) -> None:
    headers = {"Idempotency-Key": "lead-123"}
    first = api.post("/workflows/lead-routing/events", LEAD, headers=headers)
    other = api.post(
        "/workflows/lead-routing/events", {"email": "bob@example.com"}, headers=headers
    )

    assert other.status_code == 409
    assert error_code(other) == "idempotency_conflict"
    assert other.json()["error"]["details"]["event_id"] == first.json()["id"]
    assert Event.objects.count() == 1


def test_webhook_id_dedups_when_there_is_no_idempotency_key(api: Api, workflow: Workflow) -> None:
    first = api.post("/workflows/lead-routing/events", LEAD, headers={"webhook-id": "msg_1"})
    again = api.post("/workflows/lead-routing/events", LEAD, headers={"webhook-id": "msg_1"})

    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"]
    assert Event.objects.get().idempotency_key == "msg_1"


def test_keys_are_per_workflow(
    api: Api,
    workflow: Workflow,
    make_workflow: Callable[..., Workflow],
    make_token: Callable[..., Any],
) -> None:
    both = api.as_token(make_token(workflow, make_workflow("refunds"))[1])

    first = both.post("/workflows/lead-routing/events", LEAD, headers={"Idempotency-Key": "k"})
    second = both.post("/workflows/refunds/events", LEAD, headers={"Idempotency-Key": "k"})

    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["id"] != second.json()["id"]


def test_workers_are_woken_once_after_commit(
    api: Api, workflow: Workflow, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    wakes: list[bool] = []
    monkeypatch.setattr(ingest, "wake_workers", lambda: wakes.append(True))

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        api.post("/workflows/lead-routing/events", LEAD)

    assert len(callbacks) == 1
    assert wakes == [True]


def test_a_duplicate_does_not_wake_the_workers(
    api: Api, workflow: Workflow, django_capture_on_commit_callbacks: Any
) -> None:
    api.post("/workflows/lead-routing/events", LEAD, headers={"Idempotency-Key": "k"})
    with django_capture_on_commit_callbacks() as callbacks:
        api.post("/workflows/lead-routing/events", LEAD, headers={"Idempotency-Key": "k"})

    assert callbacks == []


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_declared_json_is_415(
    api: Api, workflow: Workflow, content_type: str
) -> None:
    response = api.post("/workflows/lead-routing/events", LEAD, content_type=content_type)

    assert response.status_code == 415
    assert error_code(response) == "unsupported_media_type"
    assert Event.objects.count() == 0


@override_settings(HANDOFF_MAX_PAYLOAD_BYTES=1024)
def test_a_declared_content_length_above_the_limit_is_413_before_reading(
    api: Api, workflow: Workflow
) -> None:
    response = api.post(
        "/workflows/lead-routing/events", {"blob": "x" * 2000}, headers={"Idempotency-Key": "k"}
    )

    assert response.status_code == 413
    assert error_code(response) == "payload_too_large"
    assert response.json()["error"]["details"] == {"max_bytes": 1024}
    assert Event.objects.count() == 0


def test_the_default_limit_is_256_kib(api: Api, workflow: Workflow) -> None:
    fits = {"blob": "x" * (256 * 1024 - 20)}
    too_big = {"blob": "x" * (256 * 1024)}

    assert api.post("/workflows/lead-routing/events", fits).status_code == 202
    assert api.post("/workflows/lead-routing/events", too_big).status_code == 413


@override_settings(HANDOFF_MAX_PAYLOAD_BYTES=1024)
def test_a_body_longer_than_its_content_length_says_is_413(token: str, workflow: Workflow) -> None:
    """Without (or with an understated) Content-Length, as with chunked uploads over ASGI."""
    body = json.dumps({"blob": "x" * 2000}).encode()
    client = AsyncClient()
    # A raw ASGI request: a body, and no content-length header at all.
    response = async_to_sync(client.request)(
        method="POST",
        path="/api/v1/workflows/lead-routing/events",
        headers=[
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {token}".encode()),
        ],
        _body_file=FakePayload(body),
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert Event.objects.count() == 0


@pytest.mark.parametrize("raw", [b"{not json", b'{"a": 1', b"\xff\xfe", b'{"a": NaN}', b" "])
def test_a_body_that_is_not_json_is_400_invalid_json(
    api: Api, workflow: Workflow, raw: bytes
) -> None:
    response = api.post("/workflows/lead-routing/events", raw=raw)

    assert response.status_code == 400
    assert error_code(response) == "invalid_json"


def test_an_empty_json_body_is_400_invalid_json(api: Api, workflow: Workflow) -> None:
    response = api.post("/workflows/lead-routing/events", raw=b"", CONTENT_TYPE="application/json")

    assert response.status_code == 400
    assert error_code(response) == "invalid_json"


@pytest.mark.parametrize(
    ("value", "kind"),
    [([1, 2], "array"), ("text", "string"), (42, "integer"), (None, "null"), (True, "boolean")],
)
def test_json_that_is_not_an_object_is_400_not_an_object(
    api: Api, workflow: Workflow, value: Any, kind: str
) -> None:
    response = api.post("/workflows/lead-routing/events", raw=json.dumps(value))

    assert response.status_code == 400
    assert error_code(response) == "not_an_object"
    # The type is named as the required-field check names it.
    assert response.json()["error"]["message"].endswith(f"not a JSON {kind}.")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"note": "a\\u0000b"}',
        b'{"key\\u0000": 1}',
        b'{"note": "\\ud800"}',
        b'{"n": 1e400}',
        b"[" * 150 + b"]" * 150,
    ],
    ids=["nul-in-value", "nul-in-key", "lone-surrogate", "infinite-number", "deep-nesting"],
)
def test_json_postgres_cannot_store_is_refused_with_400(
    api: Api, workflow: Workflow, raw: bytes
) -> None:
    response = api.post("/workflows/lead-routing/events", raw=raw)

    assert response.status_code == 400
    assert error_code(response) in {"invalid_json", "not_an_object"}
    assert Event.objects.count() == 0


def test_an_unknown_workflow_is_404_unknown_workflow(api: Api, workflow: Workflow) -> None:
    response = api.post("/workflows/no-such-workflow/events", LEAD)

    assert response.status_code == 404
    assert error_code(response) == "unknown_workflow"


def test_a_workflow_without_a_current_version_is_404_unknown_workflow(
    make_token: Callable[..., Any], client: Any
) -> None:
    draft = WorkflowFactory(slug="draft")
    api = Api(client, make_token(draft)[1])

    response = api.post("/workflows/draft/events", LEAD)

    assert response.status_code == 404
    assert error_code(response) == "unknown_workflow"


@pytest.mark.parametrize("key", ["has space", "x" * 256, "ünïcode"])
def test_a_malformed_idempotency_key_is_400(api: Api, workflow: Workflow, key: str) -> None:
    response = api.post(
        "/workflows/lead-routing/events",
        LEAD,
        headers={"Idempotency-Key": key.encode().decode("latin-1")},
    )

    assert response.status_code == 400
    assert error_code(response) == "invalid_request"


# --- batch ----------------------------------------------------------------------------------


def test_a_batch_is_stored_with_one_result_per_event_in_order(
    api: Api, workflow: Workflow, django_capture_on_commit_callbacks: Any
) -> None:
    events = [
        {"idempotency_key": "a", "payload": {"n": 1}},
        {"payload": {"n": 2}},
        {"idempotency_key": "c", "payload": {"n": 3}},
    ]
    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post("/workflows/lead-routing/events/batch", {"events": events})

    assert response.status_code == 202
    results = response.json()["results"]
    assert [r["duplicate"] for r in results] == [False, False, False]
    stored = [Event.objects.get(pk=r["id"]).payload for r in results]
    assert stored == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert len(callbacks) == 1, "one wake-up per request, not per event"


def test_a_batch_reports_keys_seen_before_and_repeated_within_as_duplicates(
    api: Api, workflow: Workflow
) -> None:
    earlier = api.post("/workflows/lead-routing/events", {"n": 1}, headers={"Idempotency-Key": "a"})
    events = [
        {"idempotency_key": "a", "payload": {"n": 1}},
        {"idempotency_key": "b", "payload": {"n": 2}},
        {"idempotency_key": "b", "payload": {"n": 2}},
    ]

    response = api.post("/workflows/lead-routing/events/batch", {"events": events})

    results = response.json()["results"]
    assert results[0] == {"id": earlier.json()["id"], "duplicate": True}
    assert results[1]["duplicate"] is False
    assert results[2] == {"id": results[1]["id"], "duplicate": True}
    assert Event.objects.count() == 2


def test_a_key_conflict_inside_a_batch_is_409_naming_the_index_and_stores_nothing(
    api: Api, workflow: Workflow
) -> None:
    events = [
        {"idempotency_key": "fresh", "payload": {"n": 0}},
        {"idempotency_key": "a", "payload": {"n": 1}},
        {"idempotency_key": "a", "payload": {"n": 2}},
    ]

    response = api.post("/workflows/lead-routing/events/batch", {"events": events})

    assert response.status_code == 409
    assert error_code(response) == "idempotency_conflict"
    assert response.json()["error"]["details"]["index"] == 2
    assert Event.objects.count() == 0


def test_a_batch_item_conflicting_with_a_stored_event_is_409_and_stores_nothing(
    api: Api, workflow: Workflow
) -> None:
    api.post("/workflows/lead-routing/events", {"n": 1}, headers={"Idempotency-Key": "a"})
    events = [{"payload": {"n": 0}}, {"idempotency_key": "a", "payload": {"n": 99}}]

    response = api.post("/workflows/lead-routing/events/batch", {"events": events})

    assert response.status_code == 409
    assert response.json()["error"]["details"]["index"] == 1
    assert Event.objects.count() == 1


def test_a_batch_of_more_than_1000_events_is_400_with_details(api: Api, workflow: Workflow) -> None:
    events = [{"payload": {"n": n}} for n in range(1001)]

    response = api.post("/workflows/lead-routing/events/batch", {"events": events})

    assert response.status_code == 400
    assert error_code(response) == "invalid_request"
    [detail] = response.json()["error"]["details"]
    assert detail["loc"] == ["body", "batch", "events"]
    assert detail["type"] == "too_long"
    assert Event.objects.count() == 0


def test_an_empty_batch_stores_nothing_and_answers_an_empty_list(
    api: Api, workflow: Workflow
) -> None:
    response = api.post("/workflows/lead-routing/events/batch", {"events": []})

    assert response.status_code == 202, response.content
    assert response.json() == {"results": []}
    assert Event.objects.count() == 0


def test_a_batch_of_exactly_1000_events_is_stored(api: Api, workflow: Workflow) -> None:
    events = [{"idempotency_key": f"k{n}", "payload": {"n": n}} for n in range(1000)]

    response = api.post("/workflows/lead-routing/events/batch", {"events": events})

    assert response.status_code == 202
    assert len(response.json()["results"]) == 1000
    assert Event.objects.count() == 1000


def test_a_batch_item_whose_payload_is_not_an_object_is_400_naming_the_index(
    api: Api, workflow: Workflow
) -> None:
    events = [{"payload": {"n": 1}}, {"payload": [1, 2]}]

    response = api.post("/workflows/lead-routing/events/batch", {"events": events})

    assert response.status_code == 400
    assert error_code(response) == "not_an_object"
    assert response.json()["error"]["details"] == {"index": 1}
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"events": "nope"}, "invalid_request"),
        ({}, "invalid_request"),
        ({"events": [{"idempotency_key": "k"}]}, "invalid_request"),
        ([{"payload": {}}], "not_an_object"),
    ],
)
def test_a_batch_that_does_not_match_the_schema_is_400(
    api: Api, workflow: Workflow, body: Any, code: str
) -> None:
    response = api.post("/workflows/lead-routing/events/batch", body)

    assert response.status_code == 400
    assert error_code(response) == code


def test_a_batch_sent_as_text_is_415(api: Api, workflow: Workflow) -> None:
    response = api.post(
        "/workflows/lead-routing/events/batch", {"events": []}, content_type="text/plain"
    )

    assert response.status_code == 415
    assert error_code(response) == "unsupported_media_type"


def test_a_batch_of_invalid_json_is_400_invalid_json(api: Api, workflow: Workflow) -> None:
    response = api.post("/workflows/lead-routing/events/batch", raw=b'{"events": [')

    assert response.status_code == 400
    assert error_code(response) == "invalid_json"


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=4096)
def test_a_batch_body_above_the_servers_limit_is_413(api: Api, workflow: Workflow) -> None:
    events = [{"payload": {"blob": "x" * 100}} for _ in range(100)]

    response = api.post("/workflows/lead-routing/events/batch", {"events": events})

    assert response.status_code == 413
    assert error_code(response) == "payload_too_large"


@override_settings(HANDOFF_MAX_PAYLOAD_BYTES=100)
def test_a_batch_item_above_the_payload_limit_is_413_naming_the_index(
    api: Api, workflow: Workflow
) -> None:
    events = [{"payload": {"n": 1}}, {"payload": {"blob": "x" * 200}}]

    response = api.post("/workflows/lead-routing/events/batch", {"events": events})

    assert response.status_code == 413
    assert response.json()["error"]["details"]["index"] == 1
