"""Wake-up messages: coalesced under load, never lost at the end of a burst."""

from __future__ import annotations

import threading
import time

import pytest
import redis
from django.conf import settings

from workflows import dispatch

pytestmark = pytest.mark.django_db


@pytest.fixture
def events_queue(monkeypatch: pytest.MonkeyPatch) -> redis.Redis:
    monkeypatch.setattr(dispatch, "_broker_down_until", 0.0)
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(dispatch.EVENTS_QUEUE)
    yield client
    client.delete(dispatch.EVENTS_QUEUE)


def test_a_burst_of_wake_ups_sends_at_most_two_messages(events_queue) -> None:
    for _ in range(50):
        assert dispatch.wake_workers()
    time.sleep(dispatch.COALESCE_SECONDS * 4)
    # One for the burst's start, and one more if wake-ups came in while it was being sent.
    assert 1 <= events_queue.llen(dispatch.EVENTS_QUEUE) <= 2
    assert dispatch._pending_app is None, "the burst's last wake-up was answered"


def test_a_wake_up_returns_before_the_broker_answers(events_queue, monkeypatch) -> None:
    sent = threading.Event()
    real_send = dispatch._send

    def slow_send(app) -> bool:
        time.sleep(0.5)
        sent.set()
        return real_send(app)

    monkeypatch.setattr(dispatch, "_send", slow_send)
    started = time.monotonic()
    assert dispatch.wake_workers()
    assert time.monotonic() - started < 0.05
    assert sent.wait(2), "the publisher sent it meanwhile"


def test_wake_ups_further_apart_than_the_window_each_send(events_queue) -> None:
    for _ in range(3):
        dispatch.wake_workers()
        time.sleep(dispatch.COALESCE_SECONDS * 1.5)
    assert events_queue.llen(dispatch.EVENTS_QUEUE) == 3
