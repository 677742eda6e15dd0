"""The case file of an event retried N times: time, queries, size and memory, JSON and page.

    DATABASE_URL=postgres://.../scratch REDIS_URL=redis://... \\
        python tests/benchmarks/bench_case_file.py [--sizes 10,1000,10000,100000] [--runs 5]

Migrates the database DATABASE_URL names (use a scratch one: it adds an event per size, each
with N failed attempts, N decisions and N audit entries, as tests/support/case_files.py writes
them). Each file is requested through Django's test client as an auditor `runs` times; it
prints the median time, the queries one request ran, the response's size and the peak of Python
memory allocated during one request (tracemalloc). Not collected by pytest.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

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

from tests import factories  # noqa: E402
from tests.benchmarks.bench_queue import median_ms  # noqa: E402
from tests.support.case_files import retries_pile_up  # noqa: E402
from workflows.models import Event  # noqa: E402


def measure(client: Client, url: str, runs: int) -> tuple[float, int, int, float]:
    """(median ms, queries, bytes, peak MiB allocated) of GET url."""
    client.get(url)  # warm caches and connections
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code)
    statements: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        size = len(client.get(url).content)
    tracemalloc.start()
    client.get(url)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return median_ms(samples), len(statements), size, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,1000,10000,100000")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)

    auditor, _ = get_user_model().objects.get_or_create(username="bench-auditor")
    auditor.groups.add(Group.objects.get(name="auditor"))
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(auditor)

    header = (
        f"{'retries':>8} {'form':>5} {'median ms':>10} {'queries':>8} {'KiB':>8} {'peak MiB':>9}"
    )
    print(f"\n{args.runs} runs each, medians\n")
    print(header)
    print("-" * len(header))
    for size in (int(n) for n in args.sizes.split(",")):
        event = Event.objects.get(pk=factories.case().event_id)
        retries_pile_up(event, size)
        for form, url in (
            ("json", f"/events/{event.pk}/case-file.json"),
            ("html", f"/events/{event.pk}/case-file/"),
        ):
            ms, queries, size_bytes, peak = measure(client, url, args.runs)
            print(
                f"{size:8,d} {form:>5} {ms:10.1f} {queries:8d} {size_bytes / 1024:8.0f} {peak:9.1f}"
            )
    print(
        "\nEach file keeps the first and last rows of a long section (docs/case-file.md), so"
        "\ntime, queries, size and memory should stay flat once the sections are cut."
    )


if __name__ == "__main__":
    main()
