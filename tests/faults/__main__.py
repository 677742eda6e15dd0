"""python -m tests.faults [--short] [--keep] [SCENARIO ...]: run the fault scenarios.

Starts its own PostgreSQL and Redis under a temporary directory, gunicorn, two Celery workers,
Celery beat and a sink; runs each scenario; prints what it sent, stored, finished and lost; exits
1 when anything was lost or a promise broken. FAULTS_SHORT=1 is the same as --short.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time

from tests.faults import fuzz, scenarios
from tests.faults.stack import Stack

SCENARIOS = {
    "kills": scenarios.worker_kills,
    "redis": scenarios.redis_outages,
    "postgres": scenarios.postgres_outage,
    "beats": scenarios.beats,
    "storm": scenarios.duplicate_storm,
    "fuzz": fuzz.fuzz_api,
}
SLUGS = ["faults-kill", "faults-redis", "faults-pg", "faults-beat", "faults-storm", "faults-fuzz"]


def main(argv: list[str]) -> int:
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    parser = argparse.ArgumentParser(prog="python -m tests.faults")
    parser.add_argument("names", nargs="*", metavar="SCENARIO", help=", ".join(SCENARIOS))
    parser.add_argument(
        "--short", action="store_true", default=bool(os.environ.get("FAULTS_SHORT"))
    )
    parser.add_argument("--keep", action="store_true", help="keep the logs and data")
    args = parser.parse_args(argv)
    names = args.names or list(SCENARIOS)
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: {', '.join(SCENARIOS)}")
    sizes = scenarios.Sizes.short() if args.short else scenarios.Sizes.full()
    started = time.monotonic()
    stack = Stack(keep=args.keep)
    reports = []
    try:
        print(f"fault run ({'short' if args.short else 'full'} form) in {stack.dir}")
        stack.start(SLUGS)
        print(f"stack up in {time.monotonic() - started:.0f} s: PostgreSQL, Redis, gunicorn, "
              f"{len(stack.workers)} workers, beat, sink")  # fmt: skip
        for name in names:
            report = SCENARIOS[name](stack, sizes)
            report.print()
            reports.append(report)
    finally:
        stack.close()
    failed = [r.name for r in reports if not r.ok]
    total = time.monotonic() - started
    print(f"fault scenarios: {len(reports) - len(failed)} ok, {len(failed)} failed")
    print(f"fault run took {total:.0f} s")
    return 1 if failed or len(reports) < len(names) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
