"""Real worker processes for tests, against the test run's own database and broker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from console.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]


def subprocess_database_url() -> str:
    """A DATABASE_URL for the test database (not the configured one), for a subprocess.

    The server may be reached over TCP or, for the embedded server, a unix socket directory
    (given as HOST or as the "host" option); a socket path goes percent-encoded in the host.
    """
    conf = connection.settings_dict
    auth = quote(conf.get("USER") or "", safe="")
    if conf.get("PASSWORD"):
        auth += ":" + quote(str(conf["PASSWORD"]), safe="")
    host = conf.get("HOST") or conf.get("OPTIONS", {}).get("host") or "127.0.0.1"
    socket_dir = host.startswith("/")
    netloc = quote(host, safe="") if socket_dir else f"{host}:{conf.get('PORT') or 5432}"
    return f"postgres://{auth}@{netloc}/{quote(conf['NAME'], safe='')}"


def purge_queue(name: str) -> None:
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge(name)


class CeleryWorker:
    """`celery worker` against the test database, in a process group of its own so it can be
    killed whole; start() returns once it answers a ping."""

    def __init__(self, log_path: Path, *, queues: str = "events,default", **env: str) -> None:
        self.log_path = log_path
        self.queues = queues
        self.node = f"e2e-{os.getpid()}-{time.monotonic_ns()}@{socket.gethostname()}"
        self.env = {
            **os.environ,
            "DATABASE_URL": subprocess_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "DJANGO_SETTINGS_MODULE": "console.settings.test",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, ready_within: float = 30.0) -> CeleryWorker:
        command = [
            sys.executable, "-m", "celery", "-A", "console.celery", "worker",
            "--queues", self.queues, "--concurrency", "2", "--pool", "prefork",
            "--loglevel", "WARNING", "--hostname", self.node,
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + ready_within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited at start:\n{self.log()}")
            if celery_app.control.ping(destination=[self.node], timeout=0.5):
                return self
        raise AssertionError(f"worker not ready after {ready_within} s:\n{self.log()}")

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once: nothing gets to clean up."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if not self.alive:
            return
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
