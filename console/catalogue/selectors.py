"""Reads for the catalogue and the workflow page."""

# ruff: noqa: S608

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.http import Http404
from django.utils import timezone

from console.outcomes.metrics import Figures, OutcomeFigures
from console.outcomes.rollup import outcome_figures
from console.outcomes.scope import Scope, midnight
from exceptions.event_selectors import latest_outcomes
from exceptions.models import OPEN_STATES, ExceptionCase
from workflows.models import Event, Outcome, ShapeDrift, Workflow, WorkflowVersion

HEALTH_DAYS = 7
RECENT_EVENTS = 20
DRIFT_READ = 1000  # the latest flagged events whose changes are tallied by path

# The latest success and failure of each workflow, each found by walking the workflow's events
# backwards from the newest (event_workflow_recv_idx): a few rows each, however long the history.
LAST_SEEN_SQL = """
SELECT w.id, s.at, f.at
FROM workflows_workflow w
LEFT JOIN LATERAL (
    SELECT coalesce(e.completed_at, e.received_at) AS at FROM workflows_event e
    WHERE e.workflow_id = w.id AND e.state = 'succeeded'
    ORDER BY e.received_at DESC LIMIT 1) s ON true
LEFT JOIN LATERAL (
    SELECT coalesce(e.completed_at, e.updated_at) AS at FROM workflows_event e
    WHERE e.workflow_id = w.id AND e.state IN ('failed', 'needs_attention')
    ORDER BY e.received_at DESC LIMIT 1) f ON true
"""


def workflow_for(slug: str) -> Workflow:
    """The workflow the URL names, or a 404."""
    workflow = Workflow.objects.select_related("current_version").filter(slug=slug).first()
    if workflow is None:
        raise Http404("No such workflow.")
    return workflow


def health_scope(*, workflow: Workflow | None = None) -> Scope:
    """The last HEALTH_DAYS days, by day: what "at a glance" means on these pages."""
    today = timezone.localdate()
    return Scope(
        start=midnight(today - timedelta(days=HEALTH_DAYS - 1)),
        end=midnight(today + timedelta(days=1)),
        unit="day",
        workflow=workflow,
    )


@dataclass
class CatalogueRow:
    workflow: Workflow
    figures: Figures
    open_cases: int
    last_success: datetime | None
    last_failure: datetime | None

    @property
    def definition(self) -> dict[str, Any]:
        version = self.workflow.current_version
        return version.definition if version is not None else {}


def open_case_counts() -> dict[int, int]:
    rows = (
        ExceptionCase.objects.filter(state__in=OPEN_STATES)
        .order_by()
        .values("workflow_id")
        .annotate(n=Count("id"))
        .values_list("workflow_id", "n")
    )
    return dict(rows)


def last_seen() -> dict[int, tuple[datetime | None, datetime | None]]:
    with connection.cursor() as cursor:
        cursor.execute(LAST_SEEN_SQL)
        return {workflow_id: (ok, bad) for workflow_id, ok, bad in cursor.fetchall()}


def catalogue() -> tuple[list[CatalogueRow], OutcomeFigures]:
    """Every workflow with its health over the last days, and those figures."""
    figures = outcome_figures(health_scope())
    counts = open_case_counts()
    seen = last_seen()
    rows = []
    for workflow in Workflow.objects.select_related("current_version").order_by("name"):
        ok, bad = seen.get(workflow.pk, (None, None))
        rows.append(
            CatalogueRow(
                workflow=workflow,
                figures=figures.at(workflow.pk, None),
                open_cases=counts.get(workflow.pk, 0),
                last_success=ok,
                last_failure=bad,
            )
        )
    return rows, figures


@dataclass
class RecentEvent:
    event: Event
    outcome: Outcome | None


@dataclass
class WorkflowPage:
    workflow: Workflow
    versions: list[WorkflowVersion]
    figures: OutcomeFigures
    open_cases: int
    last_success: datetime | None
    last_failure: datetime | None
    recent: list[RecentEvent] = field(default_factory=list)

    @property
    def health(self) -> Figures:
        return self.figures.at(self.workflow.pk, None)


def workflow_versions(workflow: Workflow) -> list[WorkflowVersion]:
    """Newest first."""
    return list(workflow.versions.order_by("-number"))


def workflow_page(workflow: Workflow) -> WorkflowPage:
    versions = workflow_versions(workflow)
    events = list(
        Event.objects.filter(workflow=workflow)
        .select_related("version", "owner_team", "owner_user")
        .defer("payload", "headers", "context")
        .order_by("-received_at", "-id")[:RECENT_EVENTS]
    )
    outcomes = latest_outcomes([e.pk for e in events])
    ok, bad = last_seen().get(workflow.pk, (None, None))
    return WorkflowPage(
        workflow=workflow,
        versions=versions,
        figures=outcome_figures(health_scope(workflow=workflow)),
        open_cases=ExceptionCase.objects.filter(workflow=workflow, state__in=OPEN_STATES).count(),
        last_success=ok,
        last_failure=bad,
        recent=[RecentEvent(e, outcomes.get(e.pk)) for e in events],
    )


@dataclass
class DriftSummary:
    """The workflow's events flagged for shape drift over a scope's days."""

    days: list[tuple[date, int]]  # every day of the scope, with the events flagged on it
    changes: list[tuple[str, str, int]]  # (path, change, events), most frequent first
    latest: list[int]  # the newest flagged events' ids
    blocks: bool  # the current version holds a drifting event for a person

    @property
    def total(self) -> int:
        return sum(count for _, count in self.days)


def drift_summary(workflow: Workflow, scope: Scope) -> DriftSummary:
    flagged = ShapeDrift.objects.filter(
        workflow=workflow, received_at__gte=scope.start, received_at__lt=scope.end
    )
    per_day = dict(
        flagged.annotate(day=TruncDate("received_at"))
        .values("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    )
    tally: Counter[tuple[str, str]] = Counter()
    latest = []
    for event_id, changes in flagged.order_by("-received_at").values_list("event_id", "changes")[
        :DRIFT_READ
    ]:
        latest.append(event_id)
        tally.update((change["path"], change["change"]) for change in changes)
    version = workflow.current_version
    return DriftSummary(
        days=[(day, per_day.get(day, 0)) for day in scope.buckets()],
        changes=[(path, change, n) for (path, change), n in tally.most_common(5)],
        latest=latest[:5],
        blocks=bool(version and version.definition.get("shape_drift") == "block"),
    )
