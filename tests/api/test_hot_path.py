"""What the ingest request still does, and what it no longer waits on: its token and workflow
come from a short-lived in-process cache, its rate limit is counted without Redis on the
request thread, and the INSERT itself reads the version and skips stored keys."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import redis
import time_machine
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.actors import Actor
from tests.factories import open_definition, version_create
from tests.support.api import Api, error_code
from workflows import ratelimit
from workflows.api_cache import cache_seconds
from workflows.models import ApiToken, Event, Workflow
from workflows.services.tokens import api_token_revoke

pytestmark = pytest.mark.django_db

PATH = "/workflows/lead-routing/events"


def test_a_cached_ingest_request_runs_one_insert_and_nothing_else(
    api: Api, workflow: Workflow
) -> None:
    api.post(PATH, {"n": 0}, headers={"Idempotency-Key": "warm"})

    with CaptureQueriesContext(connection) as captured:
        response = api.post(PATH, {"n": 1}, headers={"Idempotency-Key": "k-1"})

    assert response.status_code == 202
    statements = [q["sql"] for q in captured.captured_queries]
    # The test wraps each request in a savepoint; the request itself is one INSERT.
    work = [sql for sql in statements if not sql.startswith(("SAVEPOINT", "RELEASE"))]
    assert len(work) == 1, statements
    assert work[0].startswith("INSERT INTO") and "ON CONFLICT DO NOTHING" in work[0]


def test_a_repeated_key_costs_the_insert_and_one_read(api: Api, workflow: Workflow) -> None:
    first = api.post(PATH, {"n": 1}, headers={"Idempotency-Key": "k-1"})

    with CaptureQueriesContext(connection) as captured:
        again = api.post(PATH, {"n": 1}, headers={"Idempotency-Key": "k-1"})
        conflict = api.post(PATH, {"n": 2}, headers={"Idempotency-Key": "k-1"})

    assert (again.status_code, again.json()["duplicate"]) == (200, True)
    assert again.json()["id"] == first.json()["id"]
    assert conflict.status_code == 409
    assert conflict.json()["error"]["details"]["event_id"] == first.json()["id"]
    selects = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("SELECT")]
    assert len(selects) == 2, "one read of the stored key per repeated request"
    assert Event.objects.count() == 1


def test_a_token_revoked_by_another_process_stops_working_within_the_cache_bound(
    api: Api, workflow: Workflow, make_token: Callable[..., Any]
) -> None:
    token, plaintext = make_token(workflow)
    caller = api.as_token(plaintext)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        assert caller.post(PATH, {"n": 1}).status_code == 202
    # As another process revokes it: the row changes, this process's cache is not told.
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=start)

    with time_machine.travel(start + timedelta(seconds=cache_seconds() / 2), tick=False):
        within = caller.post(PATH, {"n": 2})
    with time_machine.travel(start + timedelta(seconds=cache_seconds() + 0.1), tick=False):
        after = caller.post(PATH, {"n": 3})

    assert within.status_code == 202, "inside the bound the process may still accept it"
    assert after.status_code == 401
    assert error_code(after) == "unauthenticated"
    assert "revoked" in after.json()["error"]["message"].lower()
    assert Event.objects.count() == 2


def test_a_token_revoked_in_this_process_stops_working_at_once(
    api: Api, workflow: Workflow, make_token: Callable[..., Any]
) -> None:
    token, plaintext = make_token(workflow)
    caller = api.as_token(plaintext)
    assert caller.post(PATH, {"n": 1}).status_code == 202

    api_token_revoke(token=token, actor=Actor(kind="system", label="tests"))

    assert caller.post(PATH, {"n": 2}).status_code == 401


def test_a_token_unscoped_in_this_process_is_refused_at_once(
    api: Api, workflow: Workflow, make_token: Callable[..., Any]
) -> None:
    token, plaintext = make_token(workflow)
    caller = api.as_token(plaintext)
    assert caller.post(PATH, {"n": 1}).status_code == 202

    token.workflows.clear()

    assert caller.post(PATH, {"n": 2}).status_code == 403


def test_events_are_stored_under_the_version_current_at_insert_whatever_the_cache_says(
    api: Api, workflow: Workflow
) -> None:
    first_version = workflow.current_version_id
    api.post(PATH, {"n": 0})  # caches the workflow
    newer = version_create({**open_definition("lead-routing", "revenue-ops"), "name": "v2"})
    api.post(PATH, {"n": 1})  # caches it again, current version = newer
    # Another process moves the workflow back: this process's cached copy still says `newer`.
    Workflow.objects.filter(pk=workflow.pk).update(current_version_id=first_version)

    response = api.post(PATH, {"n": 2})

    assert response.status_code == 202
    assert Event.objects.get(pk=response.json()["id"]).version_id == first_version
    assert Event.objects.get(payload={"n": 1}).version_id == newer.pk


def test_a_batch_with_stored_keys_inserts_only_the_new_ones(api: Api, workflow: Workflow) -> None:
    api.post(PATH, {"n": 1}, headers={"Idempotency-Key": "a"})

    response = api.post(
        f"{PATH}/batch",
        {
            "events": [
                {"idempotency_key": "a", "payload": {"n": 1}},
                {"payload": {"n": 2}},
                {"idempotency_key": "b", "payload": {"n": 3}},
                {"idempotency_key": "b", "payload": {"n": 3}},
            ]
        },
    )

    results = response.json()["results"]
    assert response.status_code == 202
    assert [r["duplicate"] for r in results] == [True, False, False, True]
    assert results[2]["id"] == results[3]["id"]
    assert Event.objects.count() == 3


def test_a_batch_conflicting_with_a_stored_key_stores_nothing(api: Api, workflow: Workflow) -> None:
    api.post(PATH, {"n": 1}, headers={"Idempotency-Key": "a"})

    response = api.post(
        f"{PATH}/batch",
        {"events": [{"payload": {"n": 2}}, {"idempotency_key": "a", "payload": {"n": 9}}]},
    )

    assert response.status_code == 409
    assert response.json()["error"]["details"]["index"] == 1
    assert Event.objects.count() == 1


# What a single request and a batch store alike (a single request also keeps its body's hash
# and key among the headers).
STORED_AS = ["workflow_id", "version_id", "payload", "payload_hash", "source", "state",
             "step", "context", "replay_of_id", "owner_team_id", "attempt_count", "completed_at"]  # fmt: skip


def test_a_batch_stores_each_event_as_a_single_request_stores_it(
    api: Api, workflow: Workflow
) -> None:
    """A batch goes in by COPY and a single event by bound values: the rows are the same."""
    payload = {"email": "dana@example.com", "note": 'caf\u00e9 \\ "quoted"\ttab', "n": 1.5}
    single = api.post(PATH, payload, headers={"Idempotency-Key": "single"}).json()["id"]
    results = api.post(
        f"{PATH}/batch",
        {"events": [{"idempotency_key": "batch", "payload": payload}, {"payload": payload}]},
    ).json()["results"]

    rows = Event.objects.filter(pk__in=[single, *(r["id"] for r in results)]).order_by("pk")
    stored = [{name: getattr(event, name) for name in STORED_AS} for event in rows]
    assert stored[0]["payload"] == payload
    assert stored[1] == stored[0] and stored[2] == stored[0]
    assert [e.idempotency_key for e in rows] == ["single", "batch", None]
    assert rows[1].headers == rows[2].headers == {"content-type": "application/json"}


def test_two_batches_in_one_transaction_store_each_event_once(workflow: Workflow) -> None:
    """The staging table is emptied for each batch, not only at commit: a transaction that
    ingests twice (as a test's does) must not store the first batch again."""
    from workflows.services.ingest import IncomingEvent, event_ingest_batch

    for n in range(2):
        items = [IncomingEvent({"n": n, "i": i}, f"k{n}-{i}") for i in range(3)]
        event_ingest_batch(workflow=workflow, items=items, headers={}, source="test")
    assert sorted(Event.objects.values_list("idempotency_key", flat=True)) == [
        "k0-0", "k0-1", "k0-2", "k1-0", "k1-1", "k1-2"
    ]  # fmt: skip


def _redis_count(token_plaintext: str) -> int:
    from workflows.services.tokens import token_hash

    window = settings.HANDOFF_API_RATE_WINDOW_SECONDS
    key = ratelimit.counter_key(token_hash(token_plaintext)[:16], int(time.time() // window))
    return int(redis.Redis.from_url(settings.REDIS_URL).get(key) or 0)


@override_settings(HANDOFF_API_RATE_LIMIT=100, HANDOFF_API_RATE_WINDOW_SECONDS=3600)
def test_requests_are_counted_in_redis_by_the_flusher(
    api: Api, workflow: Workflow, make_token: Callable[..., Any]
) -> None:
    plaintext = make_token(workflow)[1]
    caller = api.as_token(plaintext)

    for n in range(3):
        caller.post(PATH, {"n": n})
    assert ratelimit.rate_limit_flush()

    assert _redis_count(plaintext) == 3


@override_settings(HANDOFF_API_RATE_LIMIT=5, HANDOFF_API_RATE_WINDOW_SECONDS=3600)
def test_requests_counted_by_other_processes_use_up_the_limit(
    api: Api, workflow: Workflow, make_token: Callable[..., Any]
) -> None:
    plaintext = make_token(workflow)[1]
    caller = api.as_token(plaintext)
    assert caller.post(PATH, {"n": 0}).status_code == 202
    # Other processes counted four more for this token in this window.
    from workflows.services.tokens import token_hash

    window_index = int(time.time() // 3600)
    key = ratelimit.counter_key(token_hash(plaintext)[:16], window_index)
    redis.Redis.from_url(settings.REDIS_URL).incrby(key, 4)
    # This process learns of them with its next flush, which follows its next request.
    assert caller.post(PATH, {"n": 1}).status_code == 202
    assert ratelimit.rate_limit_flush()

    limited = caller.post(PATH, {"n": 2})

    assert limited.status_code == 429
    assert error_code(limited) == "rate_limited"
    assert Event.objects.count() == 2


@override_settings(HANDOFF_API_RATE_LIMIT=2, HANDOFF_API_RATE_WINDOW_SECONDS=60)
def test_the_limit_holds_in_this_process_while_redis_hangs(
    api: Api, workflow: Workflow, make_token: Callable[..., Any]
) -> None:
    caller = api.as_token(make_token(workflow)[1])
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        hung = f"redis://127.0.0.1:{listener.getsockname()[1]}/1"
        with override_settings(REDIS_URL=hung):
            took, statuses = [], []
            for n in range(3):
                started = time.monotonic()
                statuses.append(caller.post(PATH, {"n": n}).status_code)
                took.append(time.monotonic() - started)

    assert statuses == [202, 202, 429]
    # Below the client's 0.5 s socket timeout: no request waited on the hung server.
    assert max(took) < 0.4, took
