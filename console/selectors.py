"""Reads for the overview: where the queue stands and what the engine did lately."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q
from django.http import HttpRequest, QueryDict

from exceptions.selectors import DEFAULT_VIEWS, cases_matching, count_matching
from workflows.models import Event, EventState


@dataclass(frozen=True)
class ViewCount:
    name: str
    query: str
    count: int
    estimate: bool


def queue_counts(*, request: HttpRequest) -> list[ViewCount]:
    """The default queue views with how many cases each holds (estimated on large tables)."""
    counts = []
    for name, query in DEFAULT_VIEWS:
        # The same filter the queue applies, so a number here is the number you get there.
        cases = cases_matching(QueryDict(query), user=request.user)
        count, estimate = count_matching(cases)
        counts.append(ViewCount(name, query, count, estimate))
    return counts


def recent_events(*, now: datetime, hours: int = 24) -> dict[str, Any]:
    """Events received in the last `hours`, by state, and the share whose outcome happened."""
    since = now - timedelta(hours=hours)
    rows = (
        Event.objects.filter(received_at__gte=since)
        .values("state")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    by_state = {row["state"]: row["n"] for row in rows}
    total = sum(by_state.values())
    closed = Event.objects.filter(received_at__gte=since).aggregate(
        done=Count("id", filter=Q(state__in=[EventState.SUCCEEDED, EventState.FAILED])),
        ok=Count("id", filter=Q(state=EventState.SUCCEEDED)),
    )
    return {
        "hours": hours,
        "total": total,
        "by_state": [(EventState(state).label, n) for state, n in by_state.items()],
        "outcome_rate": round(100 * closed["ok"] / closed["done"]) if closed["done"] else None,
    }
