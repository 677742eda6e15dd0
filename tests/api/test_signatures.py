"""Inbound Standard Webhooks signatures, for workflows with an inbound secret."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks import Webhook

from tests.support.api import Api, error_code
from workflows.models import Event, Workflow
from workflows.services.definitions import new_signing_secret

pytestmark = pytest.mark.django_db

PATH = "/workflows/signed/events"
BODY = json.dumps({"ticket": 7})


@pytest.fixture
def secret() -> str:
    return new_signing_secret()


@pytest.fixture
def signed_api(
    api: Api, make_workflow: Callable[..., Workflow], make_token: Any, secret: str
) -> Api:
    return api.as_token(make_token(make_workflow("signed", inbound_secret=secret))[1])


def signature_headers(
    secret: str, body: str, *, msg_id: str = "msg_1", at: datetime | None = None
) -> dict[str, str]:
    at = at or datetime.now(tz=UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
    }


def test_a_correctly_signed_request_is_stored_and_dedups_on_webhook_id(
    signed_api: Api, secret: str
) -> None:
    headers = signature_headers(secret, BODY)

    first = signed_api.post(PATH, raw=BODY, headers=headers)
    again = signed_api.post(PATH, raw=BODY, headers=headers)

    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert Event.objects.get().headers["webhook-id"] == "msg_1"


def test_a_signed_request_replayed_with_a_fresh_idempotency_key_is_the_same_event(
    signed_api: Api, secret: str
) -> None:
    headers = signature_headers(secret, BODY)

    first = signed_api.post(PATH, raw=BODY, headers={**headers, "Idempotency-Key": "a"})
    replayed = signed_api.post(PATH, raw=BODY, headers={**headers, "Idempotency-Key": "b"})

    assert (first.status_code, replayed.status_code) == (202, 200)
    assert replayed.json() == {**first.json(), "duplicate": True}
    assert Event.objects.get().idempotency_key == "msg_1"


def test_an_unsigned_request_is_401_saying_the_signature_is_missing(signed_api: Api) -> None:
    response = signed_api.post(PATH, raw=BODY)

    assert response.status_code == 401
    assert error_code(response) == "unauthenticated"
    assert "missing" in response.json()["error"]["message"].lower()
    assert Event.objects.count() == 0


def test_a_request_signed_with_another_secret_is_401_invalid(signed_api: Api) -> None:
    response = signed_api.post(
        PATH, raw=BODY, headers=signature_headers(new_signing_secret(), BODY)
    )

    assert response.status_code == 401
    assert error_code(response) == "unauthenticated"
    assert "invalid" in response.json()["error"]["message"].lower()


def test_a_body_changed_after_signing_is_401(signed_api: Api, secret: str) -> None:
    headers = signature_headers(secret, BODY)

    response = signed_api.post(PATH, raw=json.dumps({"ticket": 8}), headers=headers)

    assert response.status_code == 401
    assert Event.objects.count() == 0


@pytest.mark.parametrize("minutes", [-6, 6])
def test_a_timestamp_more_than_five_minutes_off_is_401(
    signed_api: Api, secret: str, minutes: int
) -> None:
    at = datetime.now(tz=UTC) + timedelta(minutes=minutes)

    response = signed_api.post(PATH, raw=BODY, headers=signature_headers(secret, BODY, at=at))

    assert response.status_code == 401
    assert error_code(response) == "unauthenticated"
    assert "timestamp" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "signature", ["garbage", "v1,not-base64!", "v1", "v2,abc v1,", "v1,AAAA v1,BBBB"]
)
def test_a_malformed_signature_header_is_401_not_an_error(
    signed_api: Api, secret: str, signature: str
) -> None:
    headers = {**signature_headers(secret, BODY), "webhook-signature": signature}

    response = signed_api.post(PATH, raw=BODY, headers=headers)

    assert response.status_code == 401
    assert error_code(response) == "unauthenticated"


def test_a_signed_workflow_refuses_unsigned_batches(signed_api: Api, secret: str) -> None:
    body = json.dumps({"events": [{"payload": {"n": 1}}]})

    unsigned = signed_api.post("/workflows/signed/events/batch", raw=body)
    signed = signed_api.post(
        "/workflows/signed/events/batch", raw=body, headers=signature_headers(secret, body)
    )

    assert unsigned.status_code == 401
    assert signed.status_code == 202


def test_a_workflow_without_an_inbound_secret_takes_unsigned_requests(
    api: Api, workflow: Workflow
) -> None:
    assert api.post("/workflows/lead-routing/events", {"a": 1}).status_code == 202
