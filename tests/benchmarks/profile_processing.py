"""Where processing an event spends its time: cProfile over N events, in one process.

    DATABASE_URL=... REDIS_URL=... python tests/benchmarks/profile_processing.py [--events 2000]

Starts `make bench`'s database afresh (BENCH_DATABASE), its nginx sink and its bench-leads
workflow, stores N events due, and drains them as a worker does (`events_process_due`, batches
of the worker's size) under cProfile, on production settings, without Celery. Prints the time
per event, each engine phase's share and the functions where the time goes, and, beside it, a
no-op Celery task's cost in the same process for scale. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks import harness  # noqa: E402
from tests.benchmarks.bench import PAYLOAD, setup_workflow  # noqa: E402

# The engine's phases, by the function that does each: (label, file suffix, function name).
PHASES = [
    ("claim the batch", "engine/claims.py", "events_claim_due"),
    ("validate, enrich, route (steps)", "engine/steps.py", "steps_run"),
    ("deliver over HTTP", "workflows/delivery.py", "webhooks_deliver"),
    ("record each attempt", "engine/delivery.py", "_record_attempt"),
    ("write the batch", "engine/batch.py", "_write_runs"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    harness.fresh_database()
    os.environ.update(harness.env())
    import django

    django.setup()
    from django.utils import timezone

    from workflows.models import Event, EventState, Workflow
    from workflows.services.engine import batch
    from workflows.tasks import claim_batch_size

    with harness.nginx_sink() as sink_url:
        setup_workflow(sink_url)
        workflow = Workflow.objects.get(slug="bench-leads")
        payload = json.loads(PAYLOAD)
        Event.objects.bulk_create(
            Event(workflow=workflow, version=workflow.current_version, payload=payload,
                  payload_hash="profile", source="profile", next_attempt_at=timezone.now())
            for _ in range(args.events)
        )  # fmt: skip
        profile = cProfile.Profile()
        started = time.perf_counter()
        profile.enable()
        result = batch.events_process_due(
            limit=claim_batch_size(), worker="profile", budget_seconds=3600
        )
        profile.disable()
        elapsed = time.perf_counter() - started
    done = Event.objects.filter(source="profile", state=EventState.SUCCEEDED).count()
    print(f"\n{done:,} of {args.events:,} events succeeded in {result.batches} batches")
    print(f"{elapsed / args.events * 1000:.2f} ms an event under the profiler, one process")
    stats = pstats.Stats(profile)
    print(f"\n{'phase':36} {'ms/event':>9} {'share':>7}")
    for label, suffix, name in PHASES:
        spent = sum(
            row[3]
            for (path, _, function), row in stats.stats.items()
            if function == name and path.endswith(suffix)
        )
        print(f"{label:36} {spent / args.events * 1000:9.3f} {spent / elapsed:7.0%}")
    print(f"\nno-op Celery task, for scale: {noop_task_ms():.3f} ms each (apply, no broker)\n")
    stats.sort_stats("tottime").print_stats(args.top)


def noop_task_ms(count: int = 2000) -> float:
    from console.tasks import ping

    started = time.perf_counter()
    for _ in range(count):
        ping.apply()
    return (time.perf_counter() - started) / count * 1000


if __name__ == "__main__":
    main()
