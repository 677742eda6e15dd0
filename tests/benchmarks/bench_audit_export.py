"""/audit/export.jsonl and .csv over a million entries: entries per second and the peak RSS of
the process streaming them.

    DATABASE_URL=postgres://... REDIS_URL=redis://... \\
        python tests/benchmarks/bench_audit_export.py [--entries 1000000]

Uses the database DATABASE_URL names as it is (migrated). With fewer sealed entries than
--entries it appends the rest as a proper chain: each hash computed by audit.chain exactly as
the sealer does, the rows written with COPY (a year of actions by a few people, with roles,
memberships and a before/after), so `manage.py audit_verify` passes over them. Each export then
runs in a fresh process, through Django's test client (middleware, permission, view, the
streamed body consumed and dropped as a client would), sampling its resident memory as it goes;
the process's CPU seconds are printed too, since wall time depends on what else the machine runs.
Not collected by pytest (the file name does not start with test_).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.benchmarks.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402

from audit.chain import GENESIS_HASH, entry_hash  # noqa: E402
from audit.models import AuditEntry  # noqa: E402

PEOPLE = [
    ("olivia", ["operator"], [{"team": "revenue-ops", "role": "member"}]),
    ("mara", ["manager"], [{"team": "sales-managers", "role": "lead"}]),
    ("ada", ["admin"], []),
]
ACTIONS = ["case.claim", "case.resolve", "case.comment", "event.replay", "membership.change"]
WORKFLOWS = ["lead-routing", "support-triage", "refund-approval"]


def fill(target: int, *, batch: int = 50_000) -> None:
    """Append sealed, chained entries until there are `target` sealed ones."""
    sealed = AuditEntry.objects.filter(seq__isnull=False).count()
    missing = target - sealed
    if missing <= 0:
        return
    last = AuditEntry.objects.filter(seq__isnull=False).order_by("-seq").first()
    seq, prev_hash = (last.seq or 0, last.hash) if last else (0, GENESIS_HASH)
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM audit_auditentry")
        next_id = cursor.fetchone()[0] + 1
    start = datetime.now(UTC) - timedelta(days=365)
    step = timedelta(days=365) / missing
    began = time.perf_counter()
    made = 0
    while made < missing:
        rows = []
        for _ in range(min(batch, missing - made)):
            n = made
            label, roles, memberships = PEOPLE[n % len(PEOPLE)]
            created = start + step * n
            seq += 1
            entry = AuditEntry(
                id=next_id + n,
                created_at=created,
                actor_id=None,
                actor_kind="user",
                actor_label=label,
                actor_roles=roles,
                actor_memberships=memberships,
                action=ACTIONS[n % len(ACTIONS)],
                object_type="exceptions.exceptioncase",
                object_id=str(100_000 + n // 3),
                before={"state": "open", "owner": None},
                after={"state": "acknowledged", "owner": label, "note": f"looked at it ({n})"},
                reason="triage" if n % 4 else "",
                request_id=f"req-{n:010d}",
                approval_id=None,
                workflow=WORKFLOWS[n % len(WORKFLOWS)],
                seq=seq,
                prev_hash=prev_hash,
            )
            entry.hash = entry_hash(prev_hash, entry)
            prev_hash = entry.hash
            rows.append(
                {
                    "id": entry.id,
                    "created_at": created,
                    "actor_kind": entry.actor_kind,
                    "actor_label": label,
                    "actor_roles": json.dumps(roles),
                    "actor_memberships": json.dumps(memberships),
                    "action": entry.action,
                    "object_type": entry.object_type,
                    "object_id": entry.object_id,
                    "before": json.dumps(entry.before),
                    "after": json.dumps(entry.after),
                    "reason": entry.reason,
                    "request_id": entry.request_id,
                    "workflow": entry.workflow,
                    "seq": seq,
                    "prev_hash": entry.prev_hash,
                    "hash": entry.hash,
                    "sealed_at": created + timedelta(seconds=2),
                }
            )
            made += 1
        with transaction.atomic(), connection.cursor() as cursor:
            copy_sql = f"COPY audit_auditentry ({', '.join(rows[0])}) FROM STDIN"
            with cursor.cursor.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row(tuple(row.values()))
        print(f"  filled {made:,} / {missing:,}", file=sys.stderr, end="\r")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('audit_auditentry', 'id'), "
            "(SELECT max(id) FROM audit_auditentry))"
        )
    print(f"filled {missing:,} chained entries in {time.perf_counter() - began:.0f} s")


def rss_kib() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def measure(fmt: str) -> dict[str, float]:
    """One export through the test client in this (fresh) process."""
    auditor, _ = get_user_model().objects.get_or_create(username="bench-auditor")
    auditor.groups.add(Group.objects.get(name="auditor"))
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(auditor)
    baseline = rss_kib()
    began = time.perf_counter()
    response = client.get(f"/audit/export.{fmt}")
    assert response.status_code == 200, response.status_code
    size = lines = 0
    samples = []
    for i, chunk in enumerate(response.streaming_content):
        size += len(chunk)
        lines += chunk.count(b"\n")
        if i % 500 == 0:
            samples.append(rss_kib())
    elapsed = time.perf_counter() - began
    usage = resource.getrusage(resource.RUSAGE_SELF)
    rows = lines - 1  # the CSV header, or the digest record that ends JSON Lines
    return {
        "seconds": elapsed,
        "rows": rows,
        "bytes": size,
        "baseline_kib": baseline,
        "sampled_max_kib": max(samples),
        "sampled_first_kib": samples[1] if len(samples) > 1 else samples[0],
        "peak_kib": usage.ru_maxrss,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--formats", default="jsonl,csv", help="which exports to measure")
    parser.add_argument("--measure", choices=["jsonl", "csv"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    fill(args.entries)
    sealed = AuditEntry.objects.filter(seq__isnull=False).count()
    print(f"{sealed:,} sealed entries; each export in a fresh process through the test client")
    print(
        f"{'format':<7}{'entries':>11}{'MB':>8}{'seconds':>9}{'entries/s':>11}"
        f"{'RSS start':>11}{'RSS early':>11}{'RSS peak':>10}{'CPU s':>8}"
    )
    for fmt in args.formats.split(","):
        out = subprocess.run(
            [sys.executable, __file__, "--measure", fmt],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(
            f"{fmt:<7}{int(r['rows']):>11,}{r['bytes'] / 1e6:>8.0f}{r['seconds']:>9.1f}"
            f"{r['rows'] / r['seconds']:>11,.0f}{r['baseline_kib'] / 1024:>9.0f}MB"
            f"{r['sampled_first_kib'] / 1024:>9.0f}MB{r['peak_kib'] / 1024:>8.0f}MB"
            f"{r['cpu_seconds']:>8.0f}"
        )


if __name__ == "__main__":
    main()
