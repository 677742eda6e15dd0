"""Wake-up messages: coalesced under load, never lost at the end of a burst."""

from __future__ import annotations

import time

import pytest
import redis
from django.conf import settings

from workflows import dispatch

pytestmark = pytest.mark.django_db


@pytest.fixture
def events_queue(monkeypatch: pytest.MonkeyPatch) -> redis.Redis:
    monkeypatch.setattr(dispatch, "_broker_down_until", 0.0)
    monkeypatch.setattr(dispatch, "_last_sent", float("-inf"))
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(dispatch.EVENTS_QUEUE)
    yield client
    client.delete(dispatch.EVENTS_QUEUE)


def test_a_burst_of_wake_ups_sends_one_message_and_one_trailing(events_queue) -> None:
    for _ in range(50):
        assert dispatch.wake_workers()
    assert events_queue.llen(dispatch.EVENTS_QUEUE) == 1
    time.sleep(dispatch.COALESCE_SECONDS * 4)
    assert events_queue.llen(dispatch.EVENTS_QUEUE) == 2, "the burst's last event gets a wake-up"


def test_wake_ups_further_apart_than_the_window_each_send(events_queue) -> None:
    for _ in range(3):
        dispatch.wake_workers()
        time.sleep(dispatch.COALESCE_SECONDS * 1.5)
    assert events_queue.llen(dispatch.EVENTS_QUEUE) == 3
