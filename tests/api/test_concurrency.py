"""Idempotency under real concurrency: many requests, one key, one event."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.test import Client

from tests.support.api import Api
from tests.support.waits import in_thread
from workflows.models import Event, Workflow

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/workflows/lead-routing/events", {"email": "ada@example.com"}),
        (
            "/workflows/lead-routing/events/batch",
            {"events": [{"idempotency_key": "lead-42", "payload": {"email": "ada@example.com"}}]},
        ),
    ],
    ids=["single", "batch"],
)
def test_fifty_concurrent_posts_with_one_key_store_exactly_one_event(
    workflow: Workflow, token: str, path: str, body: dict[str, Any]
) -> None:
    posters = 50
    barrier = threading.Barrier(posters)
    statuses: list[int] = []
    ids: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def post() -> None:
        try:
            api = Api(Client(), token)
            barrier.wait(timeout=30)
            response = api.post(path, body, headers={"Idempotency-Key": "lead-42"})
            data = response.json()
            result = data["results"][0] if "results" in data else data
            with lock:
                statuses.append(response.status_code)
                ids.append(result["id"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=in_thread(post)) for _ in range(posters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert Event.objects.count() == 1
    assert set(ids) == {Event.objects.get().pk}
    if path.endswith("/batch"):
        assert statuses == [202] * posters
    else:
        assert sorted(statuses) == [200] * (posters - 1) + [202]
