"""Where a single-event ingest request spends its time: cProfile over N requests.

    DATABASE_URL=... REDIS_URL=... python tests/benchmarks/profile_ingest.py [--requests 500]

Runs against the database `make bench` left behind (BENCH_DATABASE, with its bench-leads
workflow), on production settings, through Django's whole handler (middleware, Ninja, the
view, the service; no network). Prints the statements one request runs, the mean time of a
request, and the functions where the time goes. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks import harness  # noqa: E402
from tests.benchmarks.bench import PAYLOAD  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    os.environ.update(harness.env())
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from workflows.services.tokens import api_token_create

    _, token = api_token_create(
        name=f"profile-{uuid.uuid4().hex[:8]}", workflow_slugs=["bench-leads"], actor=None
    )
    client = Client(HTTP_HOST="127.0.0.1")
    path = "/api/v1/workflows/bench-leads/events"
    headers = {"Authorization": f"Bearer {token}"}
    run = uuid.uuid4().hex[:8]

    def post(n: int) -> None:
        response = client.post(
            path,
            PAYLOAD,
            content_type="application/json",
            headers={**headers, "Idempotency-Key": f"profile-{run}-{n}"},
        )
        assert response.status_code == 202, response.content

    for n in range(20):  # warm: connections, caches, imports
        post(-n - 1)
    with CaptureQueriesContext(connection) as captured:
        post(0)
    print(f"statements of one request ({len(captured.captured_queries)}):")
    for query in captured.captured_queries:
        print(f"  {query['time']}s  {query['sql'][:150]}")

    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for n in range(1, args.requests + 1):
        post(n)
    profiler.disable()
    elapsed = time.perf_counter() - started
    print(f"\n{args.requests} requests, {elapsed / args.requests * 1000:.2f} ms each (profiled)")
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    print(json.dumps({"ms_per_request": elapsed / args.requests * 1000}))


if __name__ == "__main__":
    main()
