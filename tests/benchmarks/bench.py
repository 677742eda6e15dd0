"""`make bench`: each figure beside its ceiling, measured in the same run on the same database.

    make bench                         every scenario, full sizes
    make bench BENCH_JSON=out.json     the same, and the table as JSON
    BENCH_ONLY=ingest,batch BENCH_QUICK=1 make bench     a subset, small sizes

Scenarios: ingest, batch, processing, queue, replay, verify, memory (see the README's
performance section for what each measures and its target). It runs on production settings
against its own database (BENCH_DATABASE, default <DATABASE_URL's name>_bench, dropped and
created afresh) and the Redis of REDIS_URL, and starts what it needs: gunicorn, Celery workers,
an nginx sink. The load comes from wrk. Not collected by pytest.
"""

from __future__ import annotations

import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks import harness  # noqa: E402
from tests.benchmarks.harness import QUICK, Row  # noqa: E402

SECONDS = float(os.environ.get("BENCH_SECONDS", "5" if QUICK else "15"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
PROCESS_EVENTS = int(os.environ.get("BENCH_EVENTS", "2000" if QUICK else "100000"))
QUEUE_CASES = int(os.environ.get("BENCH_CASES", "20000" if QUICK else "1000000"))
REPLAY_EVENTS = int(os.environ.get("BENCH_REPLAY", "1000" if QUICK else "100000"))
AUDIT_ENTRIES = int(os.environ.get("BENCH_AUDIT", "50000" if QUICK else "1000000"))
BATCH_SIZE = 1000
SCENARIOS = ["ingest", "batch", "processing", "queue", "replay", "verify", "memory"]

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


def payload_1kb() -> str:
    """A lead of 1,024 bytes as JSON: the fields the workflow reads, padded with notes."""
    lead = {
        "email": "dana@example.com",
        "company": {"name": "Example GmbH", "size": 820},
        "territory": "EMEA",
        "source": "web-form",
        "notes": "",
    }
    lead["notes"] = "n" * (1024 - len(json.dumps(lead, separators=(",", ":"))))
    text = json.dumps(lead, separators=(",", ":"))
    assert len(text) == 1024
    return text


PAYLOAD = payload_1kb()


def setup_workflow(sink_url: str) -> str:
    harness.manage(
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
    harness.manage("load_workflows", fh.name)
    os.unlink(fh.name)
    output = harness.manage("create_api_token", "--name", "bench", "--workflow", "bench-leads")
    match = re.search(r"(hnd_[A-Za-z0-9_\-]+)", output)
    if not match:
        sys.exit(f"no token in create_api_token output:\n{output}")
    return match.group(1)


def django_setup() -> None:
    os.environ.update(harness.env())
    import django

    django.setup()


class Bench:
    """One run: the token, the sink and the gunicorn that scenarios share."""

    def __init__(self, token: str, sink_url: str, web: harness.Server) -> None:
        self.token = token
        self.sink_url = sink_url
        self.web = web
        base_url = self.base_url = web.url
        self.ingest_url = f"{base_url}/api/v1/workflows/bench-leads/events"
        self.web_events = 0  # events the web workers took, for the memory figure
        self.worker_peaks: list[float] = []
        self.worker_events = 0
        self.baseline_p99: float | None = None

    # --- 1. single-event ingest -------------------------------------------------------------

    def single(self, url: str, prefix: str, seconds: float = SECONDS) -> harness.WrkResult:
        script = harness.post_script(self.token, PAYLOAD, prefix)
        return harness.wrk(url, script, connections=CONNECTIONS, seconds=seconds)

    def ingest(self) -> list[Row]:
        raw_url = f"{self.base_url}/bench/raw-insert"
        self.single(raw_url, "warm-raw", 2)
        self.single(self.ingest_url, "warm", 2)
        raw = self.single(raw_url, "raw")
        api = self.single(self.ingest_url, "single")
        self.web_events += api.requests
        self.baseline_p99 = api.p99_ms
        ratio = api.requests_per_second / raw.requests_per_second
        load = f"wrk 2 threads, {CONNECTIONS} connections, {SECONDS:.0f} s, 1 KB, gunicorn 2"
        return [
            Row(
                "1. single-event ingest",
                api.requests_per_second,
                "events/s",
                raw.requests_per_second,
                f"bare Django view, one raw INSERT ({load})",
                ">= 0.75x, p99 < 50 ms",
                ratio >= 0.75 and api.p99_ms < 50,
                {"api": api.as_dict(), "ceiling": raw.as_dict()},  # type: ignore[dict-item]
            ),
            Row("   ingest p50", api.p50_ms, "ms", raw.p50_ms),
            Row("   ingest p99", api.p99_ms, "ms", raw.p99_ms, target="< 50 ms",
                passed=api.p99_ms < 50),
        ]  # fmt: skip

    # --- 2. batch ingest --------------------------------------------------------------------

    def batch(self) -> list[Row]:
        script = harness.batch_script(self.token, PAYLOAD, "batch", BATCH_SIZE)
        url = f"{self.ingest_url}/batch"
        # A request of 1,000 events takes a good part of a second: a run long enough to
        # complete many of them (wrk counts only the requests that complete in it).
        seconds = max(2 * SECONDS, 20)
        harness.wrk(url, script.replace('"batch-', '"warm-batch-'), connections=2, seconds=5)
        result = harness.wrk(url, script, connections=2, seconds=seconds)
        events_per_second = result.requests_per_second * BATCH_SIZE
        self.web_events += result.requests * BATCH_SIZE
        copy_rate = copy_rows_per_second(rows=20 * BATCH_SIZE)
        ratio = events_per_second / copy_rate
        return [
            Row(
                "2. batch ingest, 1,000 a request",
                events_per_second,
                "events/s",
                copy_rate,
                "COPY of the same rows (key, 1 KB payload) into a scratch table, 1,000 a statement",
                ">= 0.30x",
                ratio >= 0.30,
                {"p50_ms": result.p50_ms, "p99_ms": result.p99_ms},
            )
        ]

    # --- 3. processing ----------------------------------------------------------------------

    def processing(self) -> list[Row]:
        events, elapsed, peaks = process_events(PROCESS_EVENTS)
        self.worker_peaks = peaks
        self.worker_events += events
        noop = noop_tasks_per_second(PROCESS_EVENTS)
        rate = events / elapsed
        return [
            Row(
                "3. processing end to end",
                rate,
                "events/s",
                noop,
                f"no-op Celery tasks drained by the same worker (2 processes), {PROCESS_EVENTS:,}",
                ">= 1.0x",
                rate / noop >= 1.0,
                {"events": events, "seconds": elapsed},
            )
        ]

    # --- 4. queue pages ---------------------------------------------------------------------

    def queue(self) -> list[Row]:
        from tests.benchmarks.bench_replay import ensure_cases

        ensure_cases(QUEUE_CASES)
        out = Path(tempfile.gettempdir()) / f"bench-queue-{os.getpid()}.json"
        subprocess.run(
            [harness.PY, "tests/benchmarks/bench_queue.py", "--cases", str(QUEUE_CASES),
             "--runs", "7" if QUICK else "21", "--json", str(out)],
            cwd=ROOT, env=harness.env(), check=True,
        )  # fmt: skip
        rows = []
        for scenario in json.loads(out.read_text()):
            ok = scenario["server_p95_ms"] < 150 and scenario["ratio"] <= 3
            rows.append(
                Row(
                    f"4. queue: {scenario['name']}"[:46],
                    scenario["server_p50_ms"],
                    "ms p50",
                    scenario["sql_p50_ms"],
                    "",
                    "<= 3x SQL, p95 < 150 ms",
                    ok,
                    {"server_p95_ms": scenario["server_p95_ms"]},
                )
            )
            rows.append(Row("   p95", scenario["server_p95_ms"], "ms", scenario["sql_p95_ms"]))
        rows[
            0
        ].ceiling_label = (
            f"each page's SQL re-run alone, {QUEUE_CASES:,} cases (bench_queue.py prints more)"
        )
        out.unlink()
        return rows

    # --- 5. bulk replay ---------------------------------------------------------------------

    def replay(self) -> list[Row]:
        from tests.benchmarks.bench_replay import bulk_replay

        return bulk_replay(self, REPLAY_EVENTS)

    # --- 6. audit verify --------------------------------------------------------------------

    def verify(self) -> list[Row]:
        entries, seconds, read_rate = audit_verify_rate(AUDIT_ENTRIES)
        rate = entries / seconds
        return [
            Row(
                f"6. audit_verify, {entries:,} entries",
                rate,
                "entries/s",
                read_rate,
                "reading the same rows in seq order alone (server-side cursor)",
                ">= 50,000/s",
                rate >= 50_000,
            )
        ]

    # --- 7. memory --------------------------------------------------------------------------

    def memory(self) -> list[Row]:
        workers = harness.children(self.web.pid)
        web_peak = max(harness.peak_rss_mb(pid) for pid in workers)
        rows = [
            Row(
                f"7. web worker peak RSS, {self.web_events:,} events",
                web_peak,
                "MB",
                target="< 200 MB",
                passed=web_peak < 200,
            )
        ]
        if self.worker_peaks:
            peak = max(self.worker_peaks)
            rows.append(
                Row(
                    f"   Celery worker peak RSS, {self.worker_events:,} events",
                    peak,
                    "MB",
                    target="< 200 MB",
                    passed=peak < 200,
                )
            )
        return rows


def copy_rows_per_second(*, rows: int) -> float:
    """COPY the rows batch ingest stores (a key and the 1 KB payload), 1,000 a statement."""
    import psycopg

    lines = [f"copy-{n}\t{PAYLOAD}\n" for n in range(rows)]
    with psycopg.connect(harness.database_url(harness.BENCH_DB), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_copy (id bigserial PRIMARY KEY, "
            "idempotency_key text, payload jsonb)"
        )
        conn.execute("TRUNCATE bench_copy")
        started = time.perf_counter()
        for start in range(0, rows, BATCH_SIZE):
            copy_sql = "COPY bench_copy (idempotency_key, payload) FROM STDIN"
            with conn.cursor() as cursor, cursor.copy(copy_sql) as copy:
                copy.write("".join(lines[start : start + BATCH_SIZE]))
        elapsed = time.perf_counter() - started
    return rows / elapsed


def process_events(count: int) -> tuple[int, float, list[float]]:
    """Store `count` events due now, let one worker with two processes run them end to end."""
    from django.utils import timezone

    from workflows.dispatch import wake_workers
    from workflows.models import Event, EventState, Workflow
    from workflows.tasks import sweep

    workflow = Workflow.objects.get(slug="bench-leads")
    # Only the events stored here count: what earlier scenarios ingested is set aside.
    Event.objects.filter(state=EventState.RECEIVED).update(state=EventState.CANCELLED)
    payload = json.loads(PAYLOAD)
    now = timezone.now()
    for start in range(0, count, 5000):
        Event.objects.bulk_create(
            Event(workflow=workflow, version=workflow.current_version, payload=payload,
                  payload_hash="bench", source="bench", next_attempt_at=now)
            for _ in range(min(5000, count - start))
        )  # fmt: skip
    with harness.celery_worker(2) as process:
        started = time.monotonic()
        for _ in range(4):
            wake_workers()
        deadline = started + max(600, count / 50)
        done = 0
        while done < count:
            if time.monotonic() > deadline:
                sys.exit(f"processing did not finish: {done} of {count}")
            sweep()
            time.sleep(0.2)
            done = Event.objects.filter(source="bench", state=EventState.SUCCEEDED).count()
        elapsed = time.monotonic() - started
        peaks = [harness.peak_rss_mb(pid) for pid in harness.children(process.pid)]
        peaks += [peak for pid in harness.children(process.pid)
                  for peak in map(harness.peak_rss_mb, harness.children(pid))]  # fmt: skip
    return count, elapsed, peaks


def noop_tasks_per_second(count: int) -> float:
    import redis

    from console.tasks import ping

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.delete("default")
    for _ in range(count):
        ping.delay()
    with harness.celery_worker(2):
        started = time.monotonic()
        while client.llen("default") > 0:
            time.sleep(0.02)
        elapsed = time.monotonic() - started
    return count / elapsed


def audit_verify_rate(count: int) -> tuple[int, float, float]:
    """(entries verified, seconds, entries/s of reading them alone) for `count` sealed entries."""
    from django.db import connection

    from audit.models import AuditEntry
    from audit.services import audit_seal_pending
    from audit.verification import verify_chain

    have = AuditEntry.objects.count()
    if have < count:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO audit_auditentry (created_at, actor_kind, actor_label, actor_roles,
                    actor_memberships, action, object_type, object_id, before, after, reason,
                    request_id, workflow, prev_hash, hash)
                SELECT now() - make_interval(secs => g), 'person', 'olivia', '["operator"]',
                    '[{"team": "revenue-ops", "role": "member"}]', 'case.acknowledge',
                    'exceptions.exceptioncase', g::text, jsonb_build_object('state', 'open'),
                    jsonb_build_object('state', 'acknowledged', 'version', g), 'looked at it',
                    md5(g::text), 'lead-routing', '', ''
                FROM generate_series(1, %s) AS g
                """,
                [count - have],
            )
    started = time.monotonic()
    while audit_seal_pending(max_batches=1000):
        pass
    print(f"  sealed {count:,} entries in {time.monotonic() - started:.1f} s")
    started = time.perf_counter()
    report = verify_chain()
    seconds = time.perf_counter() - started
    assert report.ok, report.problem
    import psycopg

    with psycopg.connect(harness.database_url(harness.BENCH_DB)) as conn:
        started = time.perf_counter()
        with conn.cursor(name="read_alone") as cursor:
            cursor.itersize = 10_000
            cursor.execute("SELECT * FROM audit_auditentry WHERE seq IS NOT NULL ORDER BY seq")
            read = sum(1 for _ in cursor)
        read_rate = read / (time.perf_counter() - started)
    return report.checked, seconds, read_rate


def main() -> None:
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    only = [name for name in os.environ.get("BENCH_ONLY", "").split(",") if name]
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        sys.exit(f"unknown scenario {', '.join(sorted(unknown))}; choose from {SCENARIOS}")
    chosen = [name for name in SCENARIOS if not only or name in only]
    started = time.monotonic()
    print(f"bench database {harness.BENCH_DB}, {'quick' if QUICK else 'full'} sizes: {chosen}")
    harness.fresh_database()
    django_setup()
    rows: list[Row] = []
    with harness.nginx_sink() as sink_url, harness.gunicorn(2) as web:
        bench = Bench(setup_workflow(sink_url), sink_url, web)
        for name in chosen:
            print(f"- {name}")
            scenario: Callable[[], list[Row]] = getattr(bench, name)
            rows += scenario()
    harness.print_table(rows)
    context = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": QUICK,
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
        "load_average_at_end": os.getloadavg(),
        "seconds": round(time.monotonic() - started),
    }
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    target = os.environ.get("BENCH_JSON")
    if target:
        harness.write_json(rows, target, context)
        print(f"written to {target}")


if __name__ == "__main__":
    main()
