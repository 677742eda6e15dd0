"""Running the engine in the test's own process, as a worker's task does."""

from __future__ import annotations

from workflows.models import Event
from workflows.services.engine import BatchResult, events_claim_due, events_process_claimed


def process_due(worker: str = "test-worker", limit: int = 50) -> BatchResult:
    """Claim what is due and process it, as a worker's task does."""
    return events_process_claimed(events=events_claim_due(limit=limit, worker=worker))


def reload(event: Event) -> Event:
    return Event.objects.select_related("owner_team", "owner_user").get(pk=event.pk)
