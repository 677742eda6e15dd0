"""What every scenario of `make bench` stands on: its own database, the processes it starts
(gunicorn, Celery workers, an nginx sink), wrk with a Lua script, and the table it prints.

Nothing here imports Django: the runner starts Django in-process only for the scenarios that
read the database directly, after the database exists.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
ORIGINAL_DATABASE_URL = os.environ.get("DATABASE_URL", "")
# The database the bench drops and creates afresh: BENCH_DATABASE, or <DATABASE_URL's>_bench.
BENCH_DB = os.environ.get("BENCH_DATABASE") or (
    urlsplit(ORIGINAL_DATABASE_URL).path.lstrip("/") + "_bench"
)
SECRET = "bench-only-not-secret-" + "x" * 50


@dataclass
class Row:
    """One line of the table: a figure beside its ceiling, the target and whether it is met."""

    scenario: str
    figure: float
    unit: str
    ceiling: float | None = None
    ceiling_label: str = ""
    target: str = ""
    passed: bool | None = None
    detail: dict[str, float | str] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if not self.ceiling:
            return None
        return self.figure / self.ceiling


def database_url(name: str) -> str:
    parts = urlsplit(ORIGINAL_DATABASE_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


def env(**extra: str) -> dict[str, str]:
    """Production settings (plus the bare-INSERT view), on the bench's own database."""
    return {
        **os.environ,
        "DATABASE_URL": database_url(BENCH_DB),
        "DJANGO_SETTINGS_MODULE": "tests.benchmarks.settings",
        "PYTHONPATH": str(ROOT),
        "SECRET_KEY": SECRET,
        "SECURE_SSL_REDIRECT": "0",
        "HANDOFF_DESTINATION_ALLOWLIST": "127.0.0.1",
        "HANDOFF_DATA_DIR": str(Path(tempfile.gettempdir()) / f"handoff-bench-{os.getpid()}"),
        "LOG_LEVEL": "WARNING",
        # The benchmark is the load: no per-token budget in the way.
        "HANDOFF_API_RATE_LIMIT": "1000000000",
        **extra,
    }


def manage(*args: str) -> str:
    result = subprocess.run(
        [PY, "manage.py", *args], cwd=ROOT, env=env(), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def fresh_database() -> None:
    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    manage("migrate", "--noinput", "-v0")
    with psycopg.connect(database_url(BENCH_DB), autocommit=True) as conn:
        # The ceiling of single-event ingest: the bare view's table (tests/benchmarks/urls.py).
        conn.execute("CREATE TABLE bench_raw_event (id bigserial PRIMARY KEY, payload jsonb)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(cmd: list[str], **extra_env: str) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603
        cmd,
        cwd=ROOT,
        env=env(**extra_env),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the leader (gunicorn, Celery and nginx stop their children themselves)."""
    try:
        process.terminate()
        process.wait(30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def wait_http(url: str, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).close()  # noqa: S310
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{url} did not come up")


def children(pid: int) -> list[int]:
    """Direct children of a process (gunicorn's workers, Celery's pool processes)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The second field (the name) may hold spaces; the parent pid follows its ")".
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the most resident memory the process ever had, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- the processes ------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    url: str
    pid: int


@contextmanager
def gunicorn(workers: int = 2) -> Iterator[Server]:
    """The console under gunicorn (sync workers, as the Procfile)."""
    port = free_port()
    process = start(
        [PY, "-m", "gunicorn", "console.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--log-level", "warning"]
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        yield Server(f"http://127.0.0.1:{port}", process.pid)
    finally:
        stop(process)


def celery_queues() -> str:
    """Every queue of the routing table, so the worker takes every kind of work."""
    from django.conf import settings

    return ",".join(settings.CELERY_QUEUES)


@contextmanager
def celery_worker(concurrency: int = 2, queues: str = "") -> Iterator[subprocess.Popen]:
    """A worker of `concurrency` processes taking `queues` (every queue if none named)."""
    process = start(
        [PY, "-m", "celery", "-A", "console.celery", "worker", "--queues",
         queues or celery_queues(),
         "--concurrency", str(concurrency), "--loglevel", "WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat"]
    )  # fmt: skip
    try:
        wait_worker(process)
        yield process
    finally:
        stop(process)


def wait_worker(process: subprocess.Popen) -> None:
    """Until the worker answers a ping, so start-up is not counted as throughput."""
    from console.celery import app

    for _ in range(360):
        if app.control.ping(timeout=0.5):
            return
    stop(process)
    sys.exit("the Celery worker did not start")


NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log crit;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        client_body_buffer_size 1m;
        location / {{ return 200 '{{}}'; }}
    }}
}}
"""


@contextmanager
def nginx_sink() -> Iterator[str]:
    """A destination that answers 200 in microseconds: nginx from a config in a temp dir."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        sys.exit("nginx is needed for the sink: apt-get install nginx-light")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-sink-") as tmp:
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=tmp, port=port))
        process = subprocess.Popen(  # noqa: S603
            [binary, "-c", str(conf), "-p", tmp], start_new_session=True
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        sys.exit("nginx did not start")
                    time.sleep(0.05)
            yield f"http://127.0.0.1:{port}/hook"
        finally:
            stop(process)


# --- wrk ----------------------------------------------------------------------------------

# Every thread numbers itself, so each request's key is its own: thread, then a counter.
LUA_PRELUDE = """\
local threads_made = 0
function setup(thread)
    threads_made = threads_made + 1
    thread:set("tid", threads_made)
end
function init(args)
    counter = 0
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
    wrk.headers["Authorization"] = "Bearer %(token)s"
end
"""

POST_LUA = (
    LUA_PRELUDE
    + """\
function request()
    counter = counter + 1
    wrk.headers["Idempotency-Key"] = "%(prefix)s-" .. tid .. "-" .. counter
    return wrk.format(nil, nil, nil, %(body)s)
end
"""
)

# One batch of %(size)d events per request, each with a key of its own.
BATCH_LUA = (
    LUA_PRELUDE
    + """\
function request()
    counter = counter + 1
    local items = {}
    for i = 1, %(size)d do
        items[i] = '{"idempotency_key":"%(prefix)s-' .. tid .. '-' .. counter .. '-' .. i
            .. '","payload":' .. %(payload)s .. '}'
    end
    return wrk.format(nil, nil, nil, '{"events":[' .. table.concat(items, ",") .. ']}')
end
"""
)


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal here


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, script: str, *, connections: int, seconds: float, threads: int = 2) -> WrkResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
    try:
        out = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:.0f}s", "--latency",
             "--timeout", "10s", "-s", fh.name, url],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    finally:
        os.unlink(fh.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(*re.search(r"50%\s+([\d.]+)(us|ms|s)", out).groups())  # type: ignore[union-attr]
    p99 = _ms(*re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups())  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if errors or socket_errors:
        print(
            f"  warning: {url}: {errors} non-2xx; {socket_errors.group(0) if socket_errors else ''}"
        )
    return WrkResult(rps, p50, p99, total, errors)


def post_script(token: str, body: str, prefix: str, pace_ms: int = 0) -> str:
    """One event per request; with pace_ms, each connection waits that long between requests
    (steady traffic rather than as fast as the server answers)."""
    script = POST_LUA % {"token": token, "body": _lua_string(body), "prefix": prefix}
    return script + (f"function delay()\n    return {pace_ms}\nend\n" if pace_ms else "")


def batch_script(token: str, payload: str, prefix: str, size: int) -> str:
    return BATCH_LUA % {
        "token": token,
        "payload": _lua_string(payload),
        "prefix": prefix,
        "size": size,
    }


# --- the table ----------------------------------------------------------------------------


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'scenario':46} {'figure':>12} {'unit':9} {'ceiling':>10}  "
        f"{'ratio':>6}  {'target':24} {'result':6}"
    )
    print("\n" + header)
    print("-" * len(header))
    for row in rows:
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
        result = {True: "pass", False: "MISS", None: "-"}[row.passed]
        print(
            f"{row.scenario:46} {_number(row.figure):>12} {row.unit:9} "
            f"{_number(row.ceiling):>10}  {ratio:>6}  {row.target:24} {result:6}"
        )
    ceilings = [row for row in rows if row.ceiling_label]
    if ceilings:
        print("\nceilings, measured in the same run on the same database:")
        for row in ceilings:
            print(f"  {row.scenario}: {row.ceiling_label}")


def write_json(rows: list[Row], path: str, context: dict[str, object]) -> None:
    data = {
        "context": context,
        "rows": [{**asdict(row), "ratio": row.ratio} for row in rows],
    }
    Path(path).write_text(json.dumps(data, indent=2) + "\n")
