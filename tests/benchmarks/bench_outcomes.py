"""/events/, /outcomes/ and /workflows/: each page's server time beside the time of its SQL alone.

    DATABASE_URL=postgres://... REDIS_URL=redis://... \\
        python tests/benchmarks/bench_outcomes.py [--events 1000000] [--runs 7]

Uses the database DATABASE_URL names as it is (migrate it, `manage.py seed_demo` or at least
the demo organisation, then `manage.py generate_events --count 1000000 --span-days 60`; with
--events it generates what is missing). The outcome rollup is refreshed first (with --rebuild,
built again from nothing) and its refresh timed, then the 30-day figures are computed both
ways (from the records alone, and from the rollup plus today). Each scenario is requested
through Django's test client (the whole middleware, view and template path, no network) `runs`
times; the SQL the page ran is captured once and re-executed alone, back to back. It prints
medians and their ratio.
Not collected by pytest (the file name does not start with test_).
"""

from __future__ import annotations

import argparse
import os
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

from console.outcomes.metrics import live_outcome_figures  # noqa: E402
from console.outcomes.rollup import outcome_figures, outcome_rollup_refresh  # noqa: E402
from console.outcomes.scope import ScopeForm  # noqa: E402
from exceptions.pagination import encode_cursor  # noqa: E402
from tests.benchmarks.bench_queue import median_ms, runnable, sql_alone  # noqa: E402
from workflows.models import Event, OutcomeCaseDay, OutcomeDay, OutcomeRollup  # noqa: E402


def deep_cursor(position: int) -> str:
    """A cursor `position` events deep in the newest-first order (found the slow way, once)."""
    row = Event.objects.order_by("-received_at", "-id").only("id", "received_at")[position]
    return encode_cursor([row.received_at, row.pk])


def scenarios(total: int) -> list[tuple[str, str]]:
    deep = deep_cursor(int(total * 0.9))
    sample = Event.objects.order_by("-id").values_list("payload", flat=True).first() or {}
    word = next((v for v in sample.values() if isinstance(v, str) and "@" in v), "ORD-500123")
    return [
        ("/events/ page 1 (newest, 50 rows)", "/events/"),
        (f"/events/ deep page (cursor at {int(total * 0.9):,})", f"/events/?after={deep}"),
        ("/events/ page 1, 200 rows", "/events/?per=200"),
        ("/events/ one workflow, failed", "/events/?workflow=lead-routing&state=failed"),
        ("/events/ outcome recorded by hand", "/events/?outcome=manual"),
        (f"/events/ full text '{word}'", f"/events/?q={word}"),
        ("/events/ full text 'EUR' (common)", "/events/?q=EUR"),
        ("/events/ htmx fragment, deep page", f"/events/?after={deep}"),
        ("/outcomes/ last 7 days", "/outcomes/?period=7"),
        ("/outcomes/ last 30 days (default)", "/outcomes/"),
        ("/outcomes/ last 30 days, one workflow", "/outcomes/?workflow=refund-approval"),
        ("/outcomes/ last 90 days, by week", "/outcomes/?period=90"),
        ("/outcomes/export.csv last 30 days", "/outcomes/export.csv"),
        ("/ overview (a manager's numbers)", "/"),
        ("/workflows/ catalogue", "/workflows/"),
        ("/workflows/lead-routing/", "/workflows/lead-routing/"),
    ]


def rollup(events: int, rebuild: bool, runs: int) -> None:
    """Time the rollup's refreshes, and the 30-day figures from the records and from it."""
    if rebuild:
        OutcomeRollup.objects.all().delete()
        OutcomeDay.objects.all().delete()
        OutcomeCaseDay.objects.all().delete()
    started = time.perf_counter()
    first = outcome_rollup_refresh()
    took = time.perf_counter() - started
    started = time.perf_counter()
    second = outcome_rollup_refresh()
    again = time.perf_counter() - started
    print(f"\nrollup of {events:,} events: refresh {took:.1f} s ({first}),")
    print(f"  the next one with nothing changed {again * 1000:.0f} ms ({second})")
    scope = ScopeForm().scope()
    for name, compute in (("records alone", live_outcome_figures), ("rollup", outcome_figures)):
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            compute(scope)
            samples.append(time.perf_counter() - started)
        print(f"  30-day figures from the {name}: {median_ms(samples):.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=0, help="generate up to this many events")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--only", default="", help="run the scenarios whose name contains this")
    parser.add_argument("--rebuild", action="store_true", help="build the rollup from nothing")
    args = parser.parse_args()

    have = Event.objects.count()
    if args.events and have < args.events:
        call_command("generate_events", count=args.events - have, span_days=60)
        have = Event.objects.count()
    with connection.cursor() as cursor:
        for table in ("workflows_event", "workflows_outcome", "workflows_attempt",
                      "exceptions_exceptioncase"):  # fmt: skip
            cursor.execute(f"VACUUM ANALYZE {table}")

    rollup(have, args.rebuild, args.runs)

    user, _ = get_user_model().objects.get_or_create(username="bench-manager")
    user.groups.add(Group.objects.get(name="manager"))
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)

    print(f"\n{have:,} events, {args.runs} runs each, medians\n")
    header = f"{'scenario':46} {'server ms':>10} {'SQL ms':>9} {'queries':>8} {'server/SQL':>11}"
    print(header)
    print("-" * len(header))
    for name, url in scenarios(have):
        if args.only not in name:
            continue
        headers = {"HTTP_HX_REQUEST": "true"} if "htmx" in name else {}
        client.get(url, **headers)  # warm caches and connections
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
        sql = sql_alone(statements, args.runs)
        print(f"{name:46} {server:10.1f} {sql:9.1f} {len(statements):8d} {server / sql:10.2f}x")
    print(
        "\nserver: request through the test client (middleware, session, view, template);"
        "\nSQL: the same page's statements re-run raw, back to back (round trips included)."
    )


if __name__ == "__main__":
    main()
