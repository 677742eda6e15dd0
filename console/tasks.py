from __future__ import annotations

from celery import shared_task


@shared_task(name="console.ping")
def ping() -> str:
    """Does nothing: a broker round trip for diagnostics, and the floor for task throughput."""
    return "pong"


@shared_task(name="console.demo_triage")
def demo_triage() -> int:
    from console.demo.triage import demo_triage as run

    return run()


@shared_task(name="console.outcomes_roll_up")
def outcomes_roll_up() -> int:
    """Roll up the finished days of outcome figures, and the past days that changed."""
    from console.outcomes.rollup import outcome_rollup_refresh

    result = outcome_rollup_refresh()
    return result.days if result is not None else 0
