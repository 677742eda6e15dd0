"""Reads for the overview: the few numbers each role needs first, and what the engine did lately."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, F, Q
from django.http import HttpRequest, QueryDict
from django.utils import timezone

from console.catalogue.readiness import TREND_DAYS, scorecards
from console.outcomes.rollup import outcome_figures
from console.outcomes.scope import Scope, midnight
from exceptions import gaps
from exceptions.models import ExceptionCase
from exceptions.selectors import DEFAULT_VIEWS, OPEN_QUERY, cases_matching, count_matching
from workflows.models import Event, EventState

MY_WORK = [
    ("My open cases", f"{OPEN_QUERY}&owner=me"),
    ("My overdue cases", f"{OPEN_QUERY}&owner=me&breached=1"),
]
RECENT_DAYS = TREND_DAYS


@dataclass(frozen=True)
class ViewCount:
    name: str
    query: str
    count: int
    estimate: bool


def queue_counts(
    *, request: HttpRequest, views: list[tuple[str, str]] = DEFAULT_VIEWS
) -> list[ViewCount]:
    """Queue views (the default ones) with how many cases each holds (estimated on large
    tables)."""
    counts = []
    for name, query in views:
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


def _recent_scope(now: datetime) -> Scope:
    today = timezone.localdate(now)
    return Scope(
        start=midnight(today - timedelta(days=RECENT_DAYS - 1)),
        end=midnight(today + timedelta(days=1)),
        unit="day",
    )


def manager_numbers(*, request: HttpRequest, now: datetime) -> dict[str, Any]:
    """Outcome rate, ownership gaps and the SLA, over the last RECENT_DAYS days."""
    total = outcome_figures(_recent_scope(now)).at(None, None)
    radar = gaps.radar(now=now)
    closed = ExceptionCase.objects.filter(
        resolved_at__gte=now - timedelta(days=RECENT_DAYS), resolve_due_at__isnull=False
    ).aggregate(
        closed=Count("id"), in_time=Count("id", filter=Q(resolved_at__lte=F("resolve_due_at")))
    )
    (breached,) = queue_counts(request=request, views=[DEFAULT_VIEWS[3]])
    return {
        "days": RECENT_DAYS,
        "outcome_rate": total.outcome_rate,
        "rated": total.rated,
        "gaps": sum(1 for gap in radar if gap.count),
        "gap_kinds": len(radar),
        "breached": breached,
        "sla_met": round(100 * closed["in_time"] / closed["closed"], 1)
        if closed["closed"]
        else None,
        "sla_closed": closed["closed"],
    }


def admin_numbers(*, now: datetime) -> dict[str, Any]:
    """Workflows whose events fail lately, and those failing a readiness control."""
    # The readiness trend reads the same last seven days: computed once for both.
    figures = outcome_figures(_recent_scope(now))
    failing = [
        (slug, name, figures.at(workflow_id, None))
        for workflow_id, slug, name in figures.workflows
        if figures.at(workflow_id, None).failed or figures.at(workflow_id, None).errored
    ]
    cards = scorecards(recent=figures)
    return {
        "days": RECENT_DAYS,
        "failing": sorted(failing, key=lambda row: -(row[2].error_rate or 0)),
        "readiness_fails": [card for card in cards if card.status == "fail"],
        "workflows": len(cards),
    }
