"""The queue page's server time beside the time of its SQL alone, on page 1 and deep in the cursor.

    DATABASE_URL=postgres://... REDIS_URL=redis://... \\
        python tests/benchmarks/bench_queue.py [--cases 1000000] [--runs 15]

Uses the database DATABASE_URL names as it is (migrate it, `manage.py seed_demo`, then
`manage.py generate_cases --count 1000000`; with --cases it generates what is missing). Each
scenario is requested through Django's test client (the whole middleware, view and template
path, no network) `runs` times; the SQL the page ran is captured once and re-executed alone,
and the page's main query is also run under EXPLAIN ANALYZE. It prints medians and ratios.
Not collected by pytest (the file name does not start with test_).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings.test")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from exceptions.models import OPEN_STATES, SLA_SORT_KEY, ExceptionCase  # noqa: E402
from exceptions.pagination import encode_cursor  # noqa: E402


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def p95_ms(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1000


def sql_alone(statements: list[str], runs: int) -> float:
    """Median time of re-running the page's statements, one after another, raw."""
    return median_ms(sql_samples(statements, runs))


def sql_samples(statements: list[str], runs: int) -> list[float]:
    """Seconds of each re-run of the page's statements, one after another, raw."""
    samples = []
    with connection.cursor() as cursor:
        for _ in range(runs):
            started = time.perf_counter()
            for sql in statements:
                cursor.execute(sql)
                if cursor.description:
                    cursor.fetchall()
            samples.append(time.perf_counter() - started)
    return samples


def runnable(statements: list[str]) -> list[str]:
    """The statements as they can be re-run alone: a server-side cursor becomes its SELECT."""
    kept = []
    for sql in statements:
        if sql.startswith("DECLARE"):
            kept.append(sql[sql.index(" FOR ") + 5 :])
        elif not sql.startswith(("FETCH", "CLOSE", "SAVEPOINT", "RELEASE", "ROLLBACK TO")):
            kept.append(sql)
    return kept


def explain_ms(sql: str) -> float:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
        plan = cursor.fetchone()[0]
    return float(plan[0]["Execution Time"]) + float(plan[0]["Planning Time"])


def main_query(statements: list[str]) -> str:
    """The page's rows (or groups) query: cases, ordered, limited."""
    candidates = [
        sql
        for sql in statements
        if sql.startswith("SELECT")
        and "exceptions_exceptioncase" in sql
        and "ORDER BY" in sql
        and "LIMIT" in sql
    ]
    if not candidates:
        raise SystemExit("the rows query was not found among the page's SQL")
    return max(candidates, key=lambda sql: ("GROUP BY" in sql, "JOIN" in sql))


def deep_cursor(position: int) -> str:
    """A cursor at `position` in the default order (found the slow way, once)."""
    row = (
        ExceptionCase.objects.filter(state__in=OPEN_STATES)
        .alias(sla_key=SLA_SORT_KEY)
        .order_by("sla_key", "id")
        .only("id", "sla_due_at")[position]
    )
    from exceptions.models import NO_DEADLINE

    return encode_cursor([row.sla_due_at or NO_DEADLINE, row.pk])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=0, help="generate up to this many cases")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    args = parser.parse_args()

    have = ExceptionCase.objects.count()
    if args.cases and have < args.cases:
        call_command("generate_cases", count=args.cases - have, no_history=True)
        have = ExceptionCase.objects.count()
    open_cases = ExceptionCase.objects.filter(state__in=OPEN_STATES).count()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE exceptions_exceptioncase")

    user, _ = get_user_model().objects.get_or_create(username="bench-operator")
    user.groups.add(Group.objects.get(name="operator"))
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)

    deep = deep_cursor(int(open_cases * 0.9))
    scenarios = [
        ("page 1 (all open, SLA order, 50 rows)", "/queue/"),
        (f"deep page (cursor at {int(open_cases * 0.9):,})", f"/queue/?after={deep}"),
        ("page 1, 200 rows", "/queue/?per=200"),
        ("deep page, 200 rows", f"/queue/?per=200&after={deep}"),
        ("page 1, unassigned, oldest first", "/queue/?owner=none&sort=age"),
        ("page 1, full text 'ReadTimeout'", "/queue/?q=ReadTimeout"),
        ("htmx fragment, deep page", f"/queue/?after={deep}"),
        ("grouped by problem, page 1", "/queue/?group=1"),
    ]
    print(f"\n{have:,} cases ({open_cases:,} open), {args.runs} runs each, medians\n")
    figures = []
    header = f"{'scenario':44} {'server ms':>10} {'p95 ms':>8} {'SQL ms':>8} {'main q ms':>10} {'queries':>8} {'server/SQL':>11}"
    print(header)
    print("-" * len(header))
    for name, url in scenarios:
        headers = {"HTTP_HX_REQUEST": "true"} if name.startswith("htmx") else {}
        for _ in range(3):  # warm caches and connections
            client.get(url, **headers)
        samples = []
        for _ in range(args.runs):
            started = time.perf_counter()
            response = client.get(url, **headers)
            samples.append(time.perf_counter() - started)
            assert response.status_code == 200, (url, response.status_code)
        with CaptureQueriesContext(connection) as captured:
            client.get(url, **headers)
        statements = runnable([q["sql"] for q in captured.captured_queries])
        server = median_ms(samples)
        alone = sql_samples(statements, args.runs)
        sql = median_ms(alone)
        main_ms = explain_ms(main_query(statements))
        print(
            f"{name:44} {server:10.1f} {p95_ms(samples):8.1f} {sql:8.1f} {main_ms:10.2f} "
            f"{len(statements):8d} {server / sql:10.1f}x"
        )
        figures.append(
            {
                "name": name,
                "server_p50_ms": server,
                "server_p95_ms": p95_ms(samples),
                "sql_p50_ms": sql,
                "sql_p95_ms": p95_ms(alone),
                "ratio": server / sql,
                "queries": len(statements),
            }
        )
    print(
        "\nserver: request through the test client (middleware, session, view, template);"
        "\nSQL: the same page's statements re-run raw, back to back (round trips included);"
        "\nmain q: the rows query's planning + execution time under EXPLAIN ANALYZE."
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=2)


if __name__ == "__main__":
    main()
