"""Which reason codes recur week after week, per workflow: the problems nobody fixed at the root.

A reason that opened cases in each of the last few weeks is not bad luck; the page lists those
first, each with the queue view of its cases.
"""

# ruff: noqa: S608

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.db import connection
from django.urls import reverse

from console.outcomes.metrics import scope_filters
from console.outcomes.scope import Scope, midnight
from exceptions.models import CaseState, ReasonCode
from workflows.models import Workflow

MIN_WEEKS = 6  # "week after week" needs weeks to look at, whatever the period chosen
RECURRING_STREAK = 3

WEEKLY_SQL = """
SELECT c.workflow_id, c.reason_id,
    date_trunc('week', c.opened_at AT TIME ZONE %(tz)s)::date AS week, count(*)
FROM exceptions_exceptioncase c
{join}
WHERE c.opened_at >= %(start)s AND c.opened_at < %(end)s {filters}
GROUP BY 1, 2, 3
"""


@dataclass(frozen=True)
class Recurrence:
    workflow: str  # slug
    workflow_name: str
    reason: str
    reason_label: str
    weekly: list[int]  # cases per week, oldest first
    streak: int  # weeks in a row with cases, up to the latest
    open_url: str  # the queue: this workflow's open cases of this reason
    all_url: str  # the queue: every case of it received in these weeks

    @property
    def total(self) -> int:
        return sum(self.weekly)

    @property
    def weeks_with_cases(self) -> int:
        return sum(1 for n in self.weekly if n)

    @property
    def recurring(self) -> bool:
        return self.streak >= RECURRING_STREAK


def weeks_of(scope: Scope) -> list[date]:
    """The Mondays of the weeks looked at: the period's, and at least MIN_WEEKS up to its end."""
    last = scope.end.date() - timedelta(days=1)
    last_monday = last - timedelta(days=last.weekday())
    first = min(scope.start.date(), last_monday - timedelta(weeks=MIN_WEEKS - 1))
    first -= timedelta(days=first.weekday())
    return [first + timedelta(weeks=i) for i in range((last_monday - first).days // 7 + 1)]


def reason_recurrences(scope: Scope) -> tuple[list[date], list[Recurrence]]:
    """(the weeks, each workflow's reasons with their weekly counts), recurring ones first."""
    weeks = weeks_of(scope)
    start = midnight(weeks[0])
    filters, params = scope_filters(scope, event="e", case="c")
    counts: dict[tuple[int, str], dict[date, int]] = defaultdict(dict)
    with connection.cursor() as cursor:
        cursor.execute(
            WEEKLY_SQL.format(
                filters=filters,
                join="JOIN workflows_event e ON e.id = c.event_id" if scope.version else "",
            ),
            {"tz": settings.TIME_ZONE, "start": start, "end": scope.end, **params},
        )
        for workflow_id, reason, week, n in cursor.fetchall():
            counts[(workflow_id, reason)][week] = n
    flows = Workflow.objects.in_bulk({key[0] for key in counts})
    labels = dict(ReasonCode.objects.values_list("code", "label"))
    found = []
    for (workflow_id, reason), by_week in counts.items():
        weekly = [by_week.get(week, 0) for week in weeks]
        flow = flows[workflow_id]
        found.append(
            Recurrence(
                workflow=flow.slug,
                workflow_name=flow.name,
                reason=reason,
                reason_label=labels.get(reason, reason),
                weekly=weekly,
                streak=_streak(weekly),
                open_url=_queue_url(flow.slug, reason),
                all_url=_queue_url(
                    flow.slug, reason, first=weeks[0], last=scope.end.date() - timedelta(days=1)
                ),
            )
        )
    found.sort(key=lambda r: (-r.streak, -r.weeks_with_cases, -r.total, r.workflow, r.reason))
    return weeks, found


def _streak(weekly: list[int]) -> int:
    streak = 0
    for n in reversed(weekly):
        if not n:
            break
        streak += 1
    return streak


def _queue_url(
    workflow: str, reason: str, *, first: date | None = None, last: date | None = None
) -> str:
    params: list[tuple[str, str]] = [("workflow", workflow), ("reason", reason)]
    if first is not None and last is not None:
        params += [("state", state) for state in CaseState.values]
        params += [("received_after", first.isoformat()), ("received_before", last.isoformat())]
    return f"{reverse('queue')}?{urlencode(params)}"
