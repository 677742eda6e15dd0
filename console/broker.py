"""Handoff's Redis broker: the transport options its processes use, and two corrections to
kombu's Redis transport, which the workers run with.

A message only says "look for due events" (or names a bulk chunk or a seal); the database is the
truth and a claim makes a second delivery a no-op. So whenever kombu must choose between keeping
a worker consuming and handing a message back exactly, these choose to keep consuming: a message
left in Redis's unacked index is restored after the visibility timeout, and the sweeper
re-enqueues due events long before that.

1. Acknowledging. With late acknowledgement, a worker takes at most its prefetch count of
   messages and asks for more only as it acknowledges them. kombu frees that slot only after
   removing the message from the unacked index; when Redis hangs at that moment the removal
   times out, the slot stays taken, and once every slot is held the worker never asks Redis for
   work again. Here the slot is freed whatever the removal did.
2. Reconnecting. When Redis goes away, Celery collects the broken connection (which detaches its
   transport) and then closes it; closing the channel hands its unacknowledged messages back, and
   kombu builds a new Redis client for that from the detached transport: an AttributeError, which
   Celery treats as unrecoverable, so every worker holding a task when Redis went away exited
   (and so did one acknowledging, after the reconnect, a task it took before). Here a detached
   transport is a connection error, which Celery logs and recovers from.
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual


def transport_options(hard_time_limit: int) -> dict[str, Any]:
    return {
        # Must exceed the hard time limit, or Redis redelivers a task that is still running.
        "visibility_timeout": hard_time_limit * 4,
        "socket_connect_timeout": 1,
        # A hung (not down) Redis must not hold a publisher: reads and writes give up too.
        "socket_timeout": 1,
        # Publishing fails at once when the broker is down instead of retrying for seconds:
        # ingest must not wait on Redis, and the sweeper re-enqueues what was not sent.
        "max_retries": 0,
    }


class QoS(kombu_redis.QoS):
    def ack(self, delivery_tag: str) -> None:
        try:
            self._remove_from_indices(delivery_tag).execute()  # type: ignore[attr-defined]
        finally:
            virtual.QoS.ack(self, delivery_tag)


class Channel(kombu_redis.Channel):
    QoS = QoS

    def _create_client(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            # A connection error, which Celery logs and recovers from: the message stays in
            # the unacked index until the visibility timeout hands it out again.
            raise redis.exceptions.ConnectionError("the connection to Redis was lost")
        return super()._create_client(asynchronous)  # type: ignore[misc]


def install() -> None:
    kombu_redis.Transport.Channel = Channel
