"""Ingest and processing figures, each beside its floor on the same machine.

    make bench            (or: python tests/benchmarks/bench_engine.py)

1. Ingest: wrk posts one event at a time to POST /api/v1/workflows/{slug}/events through
   gunicorn, then the same payload to a bare Django view doing one raw INSERT under the same
   server. Prints requests per second and p99 latency of both, and their ratio.
2. Processing: N events are stored due, then two worker processes run them end to end
   (validate, enrich, route, webhook to a local sink, outcome). Prints events per second beside
   the rate at which the same two processes drain N no-op Celery tasks.

Needs DATABASE_URL and REDIS_URL (make bench starts the embedded servers otherwise) and wrk.
BENCH_PART=ingest or processing runs one half; BENCH_SECONDS, BENCH_CONNECTIONS and
BENCH_EVENTS change the load.
It uses its own database, handoff_bench, dropped and created afresh.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
BENCH_DB = "handoff_bench"
DURATION = os.environ.get("BENCH_SECONDS", "10")
CONNECTIONS = os.environ.get("BENCH_CONNECTIONS", "16")
EVENTS = int(os.environ.get("BENCH_EVENTS", "3000"))

PAYLOAD = {
    "email": "dana@example.com",
    "company": {"name": "Example GmbH", "size": 820},
    "territory": "EMEA",
    "source": "web-form",
}

WORKFLOW = """\
slug: bench-leads
name: Bench leads
owner: bench-team
required_fields:
  - {path: email, type: string}
  - {path: company.size, type: integer}
enrich:
  segment: 'payload.company.size >= 500 ? "enterprise" : "smb"'
routes:
  - {name: enterprise, when: 'context.segment == "enterprise"', owner: bench-team}
  - {name: default, when: 'true', owner: bench-team}
action:
  type: webhook
  url: %(sink)s
  timeout_seconds: 10
"""

POST_LUA = """\
wrk.method = "POST"
wrk.body = '%s'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(name: str) -> str:
    parts = urlsplit(ORIGINAL_DATABASE_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


def admin_connection() -> psycopg.Connection:
    return psycopg.connect(database_url("postgres"), autocommit=True)


def env() -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url(BENCH_DB),
        "DJANGO_SETTINGS_MODULE": "tests.benchmarks.settings",
        "PYTHONPATH": str(ROOT),
        # The benchmark is the load: no per-token budget in the way.
        "HANDOFF_API_RATE_LIMIT": "1000000000",
    }


def manage(*args: str) -> str:
    result = subprocess.run(
        [PY, "manage.py", *args], cwd=ROOT, env=env(), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


ORIGINAL_DATABASE_URL = os.environ.get("DATABASE_URL", "")


def fresh_database() -> None:
    with admin_connection() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    manage("migrate", "--noinput", "-v0")
    with psycopg.connect(database_url(BENCH_DB), autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_raw_event (id bigserial PRIMARY KEY, payload jsonb)")


class Sink(BaseHTTPRequestHandler):
    # Keep-alive, as real destinations do: the benchmark measures Handoff, not TCP set-up.
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


class SinkServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a worker closing its keep-alive connection at shutdown is not news


def setup_workflow(sink_url: str) -> str:
    manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model; "
        "from workflows.services.teams import membership_start, team_create; "
        "team = team_create(slug='bench-team', name='Bench', actor=None); "
        "person = get_user_model().objects.create(username='bench-owner'); "
        "membership_start(user=person, team=team, role='member', actor=None)",
    )
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        fh.write(WORKFLOW % {"sink": sink_url})
    manage("load_workflows", fh.name)
    output = manage("create_api_token", "--name", "bench", "--workflow", "bench-leads")
    match = re.search(r"(hnd_[A-Za-z0-9_\-]+)", output)
    if not match:
        sys.exit(f"no token in create_api_token output:\n{output}")
    return match.group(1)


def start(cmd: list[str], **kwargs: object) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603
        cmd, cwd=ROOT, env=env(), start_new_session=True, stdout=subprocess.DEVNULL, **kwargs
    )


def stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)


def wait_http(url: str) -> None:
    import urllib.request

    for _ in range(100):
        try:
            urllib.request.urlopen(url, timeout=1).close()  # noqa: S310
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{url} did not come up")


def wrk(url: str, token: str) -> tuple[float, float]:
    """(requests per second, p99 latency in ms) for one wrk run against url."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(POST_LUA % (json.dumps(PAYLOAD), token))
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}s", "--latency", "-s", fh.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
    factor = {"us": 0.001, "ms": 1, "s": 1000}[unit]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        print(f"  warning: {non2xx.group(1)} non-2xx responses from {url}")
    return rps, float(p99) * factor


def bench_ingest(token: str) -> None:
    port = free_port()
    server = start(
        [
            PY,
            "-m",
            "gunicorn",
            "console.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--log-level",
            "warning",
        ]  # fmt: skip
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        base = f"http://127.0.0.1:{port}"
        wrk(f"{base}/bench/raw-insert", token)  # warm-up
        raw = wrk(f"{base}/bench/raw-insert", token)
        ingest = wrk(f"{base}/api/v1/workflows/bench-leads/events", token)
    finally:
        stop(server)
    print(f"\ningest: wrk, 2 threads, {CONNECTIONS} connections, {DURATION} s, gunicorn 2 workers")
    print(f"  {'':34} {'req/s':>9} {'p99 ms':>9}")
    print(f"  {'bare view, one raw INSERT':34} {raw[0]:>9.0f} {raw[1]:>9.1f}")
    print(f"  {'POST /api/v1/.../events':34} {ingest[0]:>9.0f} {ingest[1]:>9.1f}")
    print(
        f"  ratio ingest/bare: throughput {ingest[0] / raw[0]:.2f}x, p99 {ingest[1] / raw[1]:.2f}x"
    )


def worker() -> subprocess.Popen:
    return start(
        [
            PY,
            "-m",
            "celery",
            "-A",
            "console.celery",
            "worker",
            "--queues",
            "events,default",
            "--concurrency",
            "2",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]  # fmt: skip
    )


def wait_ready(process: subprocess.Popen) -> None:
    """Until the worker answers a ping, so start-up is not counted as throughput."""
    from console.celery import app

    for _ in range(120):
        if app.control.ping(timeout=0.5):
            return
    stop(process)
    sys.exit("the worker did not start")


def bench_processing() -> None:
    os.environ.update(env())
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.utils import timezone

    from console.tasks import ping
    from workflows.dispatch import wake_workers
    from workflows.models import Event, EventState, Workflow
    from workflows.tasks import sweep

    workflow = Workflow.objects.get(slug="bench-leads")
    # Only the events stored here count: the ingest run's events are set aside.
    Event.objects.filter(state=EventState.RECEIVED).update(state=EventState.CANCELLED)
    now = timezone.now()
    Event.objects.bulk_create(
        Event(workflow=workflow, version=workflow.current_version, payload=PAYLOAD,
              payload_hash="bench", source="bench", next_attempt_at=now)
        for _ in range(EVENTS)
    )  # fmt: skip
    process = worker()
    wait_ready(process)
    started = time.monotonic()
    for _ in range(4):
        wake_workers()
    deadline = started + 600
    while Event.objects.filter(source="bench", state=EventState.SUCCEEDED).count() < EVENTS:
        if time.monotonic() > deadline:
            stop(process)
            sys.exit("processing did not finish within 10 minutes")
        sweep()
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    stop(process)

    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.delete("default")
    for _ in range(EVENTS):
        ping.delay()
    process = worker()
    wait_ready(process)
    started = time.monotonic()
    while client.llen("default") > 0:
        time.sleep(0.02)
    noop_elapsed = time.monotonic() - started
    stop(process)

    events_rate, noop_rate = EVENTS / elapsed, EVENTS / noop_elapsed
    print(f"\nprocessing: {EVENTS} events end to end, one worker with 2 processes, local sink")
    print(f"  events/s, validate to outcome:  {events_rate:>8.0f}  ({elapsed:.1f} s)")
    print(f"  no-op Celery tasks/s:           {noop_rate:>8.0f}  ({noop_elapsed:.1f} s)")
    print(f"  ratio events / no-op tasks:     {events_rate / noop_rate:>8.2f}x")


def main() -> None:
    if isinstance(sys.stdout, io.TextIOWrapper):  # always, run from a shell; it narrows the type
        sys.stdout.reconfigure(line_buffering=True)
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    fresh_database()
    sink_port = free_port()
    sink = SinkServer(("127.0.0.1", sink_port), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    token = setup_workflow(f"http://127.0.0.1:{sink_port}/hook")
    part = os.environ.get("BENCH_PART", "all")  # "ingest", "processing" or "all"
    if part in ("all", "ingest"):
        bench_ingest(token)
    if part in ("all", "processing"):
        bench_processing()
    sink.shutdown()


if __name__ == "__main__":
    main()
