from __future__ import annotations

from celery import shared_task


@shared_task(name="console.ping", queue="default")
def ping() -> str:
    """Does nothing: a broker round trip for diagnostics, and the floor for task throughput."""
    return "pong"


@shared_task(name="console.demo_triage", queue="default")
def demo_triage() -> int:
    from console.demo.triage import demo_triage as run

    return run()
