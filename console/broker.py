"""One correction to kombu's Redis transport, which the workers run with.

With late acknowledgement, a worker takes at most its prefetch count of messages and asks for
more only as it acknowledges them. kombu's Redis QoS frees that slot only after removing the
message from Redis's unacked index; when Redis hangs at that moment the removal times out, the
slot stays taken, and once every slot is held so the worker never asks Redis for work again
(the fault run "Redis hung" showed workers idle for good beside a full queue).

Here the slot is freed whatever the removal did. The message left in Redis's unacked index is
restored after the visibility timeout and delivered again, which costs nothing: a message only
says "look for due events", and the claim makes a second delivery a no-op.
"""

from __future__ import annotations

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual


class QoS(kombu_redis.QoS):
    def ack(self, delivery_tag: str) -> None:
        try:
            self._remove_from_indices(delivery_tag).execute()  # type: ignore[attr-defined]
        finally:
            virtual.QoS.ack(self, delivery_tag)


def install() -> None:
    kombu_redis.Channel.QoS = QoS
