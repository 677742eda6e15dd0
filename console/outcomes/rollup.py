"""The outcome figures of the events received before the last refresh, rolled up per day, so
/outcomes/ adds up days, not events.

For every local day, workflow version and owner team the rollup keeps the same counts the live
query makes (workflows.OutcomeDay), the cases per reason code (OutcomeCaseDay), and the cycle
times as a histogram (console.outcomes.histogram). A refresh (a beat task every two minutes, or
`outcome_rollup_refresh` on demand) rolls up the days not rolled up yet, today's events so far,
and again every day whose records changed since the previous refresh: events and cases stamp
`updated_at` on every change, and people's entries on the trail carry their time. The page adds
up the rolled-up rows and computes the events received since the refresh from the records, with
the same statements. A period's figures are therefore sums either way, at most one refresh
behind the records for the events received before it, and only the percentiles differ from the
exact ones, by at most the histogram's precision.
"""

# The SQL is assembled from this module's constants only; every value is a parameter.
# ruff: noqa: S608

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from console.outcomes.histogram import Histogram, bucket_sql, merge, percentiles
from console.outcomes.metrics import (
    CASES_SQL,
    ERROR_REASONS,
    EVENT_COLUMNS,
    EVENT_COUNTS_SQL,
    FAILED_ATTEMPTS,
    JUDGED_SQL,
    TOUCHES_SQL,
    Figures,
    Key,
    OutcomeFigures,
    add_cases,
    analytic_rows,
    levels,
    scope_filters,
    workflows_named,
)
from console.outcomes.scope import Scope, midnight
from workflows.models import OutcomeCaseDay, OutcomeDay, OutcomeRollup

COUNTS = [name for name in EVENT_COLUMNS if name != "cycles"]
# A change is stamped inside its transaction and seen once it commits: a refresh looks this far
# before the previous one began, so a change that committed while it ran is not missed.
SLACK = timedelta(minutes=5)
# The events a refresh rolls up are those received this long before it began: an ingest that
# stamped its event a moment earlier has committed by then.
SETTLE = timedelta(seconds=10)
# Days rolled up in one statement: a first refresh over a long history goes a week at a time.
CHUNK_DAYS = 7

DayKey = tuple[date, int, int, int | None]  # (day, workflow, version, owner team)

DAY_EVENTS_SQL = (
    JUDGED_SQL
    + f""",
counted (workflow_id, bucket, version_id, owner_team_id, {", ".join(COUNTS)}) AS (
    SELECT workflow_id, bucket, version_id, owner_team_id, {EVENT_COUNTS_SQL.format(cycles="")}
    FROM judged
    GROUP BY 1, 2, 3, 4
),
binned AS (
    SELECT workflow_id, bucket, version_id, owner_team_id, {bucket_sql("cycle")} AS b,
        count(*) AS n, sum(cycle) AS s
    FROM judged WHERE cycle IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5
),
histograms AS (
    SELECT workflow_id, bucket, version_id, owner_team_id,
        jsonb_object_agg(b, jsonb_build_array(n, s)) AS cycles
    FROM binned
    GROUP BY 1, 2, 3, 4
)
SELECT c.*, h.cycles
FROM counted c
LEFT JOIN histograms h ON h.workflow_id = c.workflow_id AND h.bucket = c.bucket
    AND h.version_id = c.version_id AND h.owner_team_id IS NOT DISTINCT FROM c.owner_team_id
"""
)
# Per day, workflow, the event's version, the case's owner team and the reason.
DAY_CASES_KEYS = {
    "keys": ", e.version_id, c.owner_team_id",
    "group": "1, 2, 3, 4, 5",
    "join": "JOIN workflows_event e ON e.id = c.event_id",
}
DAY_TOUCHES_KEYS = {"keys": ", e.version_id, e.owner_team_id", "group": "1, 2, 3, 4"}

# Reading the rollup: the sums per workflow and bucket, per workflow, per bucket and in all.
_ROLLED = """
    SELECT d.*, date_trunc(%(unit)s, d.day)::date AS bucket FROM {table} d
    WHERE d.day >= %(first)s AND d.day < %(last)s {filters}
"""
ROLLED_EVENTS_SQL = f"""
SELECT workflow_id, bucket,
    {", ".join(f"coalesce(sum({name}), 0)" for name in [*COUNTS, "touches"])}
FROM ({_ROLLED.format(table="workflows_outcomeday", filters="{filters}")}) d
GROUP BY GROUPING SETS ((workflow_id, bucket), (workflow_id), (bucket), ())
"""
# Histograms merged per workflow and bucket only: adding those up into the per-workflow, per-bucket
# and total cells costs less in Python than grouping every bucket four ways in SQL.
ROLLED_CYCLES_SQL = f"""
SELECT workflow_id, bucket, jsonb_object_agg(key, jsonb_build_array(n, s))
FROM (
    SELECT d.workflow_id, d.bucket, h.key,
        sum((h.value->>0)::bigint) AS n, sum((h.value->>1)::float8) AS s
    FROM ({_ROLLED.format(table="workflows_outcomeday", filters="{filters}")}) d
    CROSS JOIN LATERAL jsonb_each(d.cycles) h
    GROUP BY 1, 2, 3
) merged
GROUP BY 1, 2
"""
ROLLED_CASES_SQL = f"""
SELECT d.workflow_id, d.bucket, d.reason, sum(d.cases), sum(d.acknowledged),
    sum(d.ack_seconds), sum(d.resolved), sum(d.resolve_seconds)
FROM ({_ROLLED.format(table="workflows_outcomecaseday", filters="{filters}")}) d
GROUP BY 1, 2, 3
"""

TOUCHED_DAYS_SQL = """
SELECT (e.received_at AT TIME ZONE %(tz)s)::date FROM workflows_event e
WHERE e.updated_at >= %(since)s AND e.received_at < %(through)s
UNION
SELECT (o.received_at AT TIME ZONE %(tz)s)::date
FROM workflows_event r JOIN workflows_event o ON o.id = r.replay_of_id
WHERE r.received_at >= %(since)s AND o.received_at < %(through)s
UNION
SELECT (c.opened_at AT TIME ZONE %(tz)s)::date FROM exceptions_exceptioncase c
WHERE c.updated_at >= %(since)s AND c.opened_at < %(through)s
UNION
SELECT (e.received_at AT TIME ZONE %(tz)s)::date
FROM exceptions_exceptioncase c JOIN workflows_event e ON e.id = c.event_id
WHERE c.updated_at >= %(since)s AND e.received_at < %(through)s
UNION
SELECT (e.received_at AT TIME ZONE %(tz)s)::date
FROM audit_auditentry a
LEFT JOIN exceptions_exceptioncase c
    ON a.object_type = 'exceptions.exceptioncase' AND c.id = a.object_id::bigint
JOIN workflows_event e ON e.id = coalesce(c.event_id,
    CASE WHEN a.object_type = 'workflows.event' THEN a.object_id::bigint END)
WHERE a.created_at >= %(since)s AND a.actor_kind = 'user'
    AND a.object_type IN ('workflows.event', 'exceptions.exceptioncase')
    AND a.object_id ~ '^[0-9]{1,18}$' AND e.received_at < %(through)s
"""


@dataclass(frozen=True)
class DayRecords:
    """The rollup's rows for some days, as the records make them now (not saved)."""

    events: dict[DayKey, dict[str, Any]]
    cases: list[tuple[Any, ...]]  # (workflow, day, reason, version, team, counts...)


def day_records(start: datetime, end: datetime, scope: Scope | None = None) -> DayRecords:
    """Each day's rows between two midnights, for every workflow (or the scope's filters)."""
    params: dict[str, Any] = {
        "start": start,
        "end": end,
        "unit": "day",
        "tz": settings.TIME_ZONE,
        "error_reasons": list(ERROR_REASONS),
        "failed_attempts": list(FAILED_ATTEMPTS),
    }
    event_filters, case_filters = "", ""
    if scope is not None:
        event_filters, filter_params = scope_filters(scope, event="e")
        case_filters, _ = scope_filters(scope, event="e", case="c")
        case_filters = case_filters.replace("e.workflow_id", "c.workflow_id")
        params.update(filter_params)
    events: dict[DayKey, dict[str, Any]] = {}
    for row in analytic_rows(DAY_EVENTS_SQL.format(filters=event_filters), params):
        workflow_id, day, version_id, team_id, *values, cycles = row
        record = dict(zip(COUNTS, values, strict=True))
        record["touches"] = 0
        # Django has the driver hand jsonb over as text (its JSONField decodes it).
        record["cycles"] = json.loads(cycles) if cycles else {}
        events[(day, workflow_id, version_id, team_id)] = record
    touches = TOUCHES_SQL.format(filters=event_filters, **DAY_TOUCHES_KEYS)
    for workflow_id, day, version_id, team_id, count in analytic_rows(touches, params):
        key = (day, workflow_id, version_id, team_id)
        # An entry about an event is about one that was received: its row exists.
        events.setdefault(key, {**dict.fromkeys(COUNTS, 0), "cycles": {}})["touches"] = count
    cases = analytic_rows(CASES_SQL.format(filters=case_filters, **DAY_CASES_KEYS), params)
    return DayRecords(events=events, cases=cases)


@dataclass(frozen=True)
class RollupResult:
    days: int  # days rolled up (again)
    rows: int  # rows written
    until: datetime  # the events received before this are rolled up


@transaction.atomic
def outcome_rollup_refresh(*, now: datetime | None = None) -> RollupResult | None:
    """Roll up the events received until a moment ago: the days not rolled up yet, today so far,
    and again the days whose records changed since the last refresh. None when another refresh
    is running (it holds the rollup's row)."""
    now = now or timezone.now()
    until = now - SETTLE
    OutcomeRollup.objects.get_or_create(pk=1)
    state = OutcomeRollup.objects.select_for_update(skip_locked=True).filter(pk=1).first()
    if state is None:
        return None
    days = _days_due(state, until)
    rows = 0
    for first, last in _runs(sorted(days)):
        rows += _roll_up(first, last, until)
    state.until, state.refreshed_at = until, now
    state.save(update_fields=["until", "refreshed_at"])
    return RollupResult(days=len(days), rows=rows, until=until)


def _days_due(state: OutcomeRollup, until: datetime) -> set[date]:
    last = timezone.localdate(until)
    if state.until is None or state.refreshed_at is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT min(received_at) FROM workflows_event")
            (earliest,) = cursor.fetchone()
        if earliest is None:
            return set()
        first = timezone.localdate(earliest)
        return {first + timedelta(days=i) for i in range((last - first).days + 1)}
    # The day the last refresh stopped in, each day since, and every day changed since.
    first = timezone.localdate(state.until)
    due = {first + timedelta(days=i) for i in range((last - first).days + 1)}
    with connection.cursor() as cursor:
        cursor.execute(
            TOUCHED_DAYS_SQL,
            {
                "since": state.refreshed_at - SLACK,
                "through": state.until,
                "tz": settings.TIME_ZONE,
            },
        )
        due.update(day for (day,) in cursor.fetchall())
    return {day for day in due if day <= last}


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) runs of at most CHUNK_DAYS."""
    runs: list[tuple[date, date]] = []
    for day in days:
        first, last = runs[-1] if runs else (day, day)
        if runs and day - last == timedelta(days=1) and (day - first).days < CHUNK_DAYS:
            runs[-1] = (first, day)
        else:
            runs.append((day, day))
    return runs


def _roll_up(first: date, last: date, until: datetime) -> int:
    records = day_records(midnight(first), min(midnight(last + timedelta(days=1)), until))
    OutcomeDay.objects.filter(day__gte=first, day__lte=last).delete()
    OutcomeCaseDay.objects.filter(day__gte=first, day__lte=last).delete()
    event_rows = [
        OutcomeDay(day=day, workflow_id=workflow, version_id=version, owner_team_id=team, **record)
        for (day, workflow, version, team), record in records.events.items()
    ]
    case_rows = [
        OutcomeCaseDay(
            day=day,
            workflow_id=workflow,
            reason=reason,
            version_id=version,
            owner_team_id=team,
            cases=count,
            acknowledged=acked,
            ack_seconds=float(ack_s),
            resolved=resolved,
            resolve_seconds=float(resolve_s),
        )
        for workflow, day, reason, version, team, count, acked, ack_s, resolved, resolve_s in (
            records.cases
        )
    ]
    OutcomeDay.objects.bulk_create(event_rows, batch_size=1000)
    OutcomeCaseDay.objects.bulk_create(case_rows, batch_size=1000)
    return len(event_rows) + len(case_rows)


def outcome_figures(scope: Scope) -> OutcomeFigures:
    """Every figure of the scope, per workflow and bucket, per workflow, per bucket and in all:
    the events received before the last refresh from the rollup, the others from the records."""
    first, end = timezone.localdate(scope.start), timezone.localdate(scope.end)
    until = OutcomeRollup.objects.filter(pk=1).values_list("until", flat=True).first()
    cells: dict[Key, Figures] = defaultdict(Figures)
    if until is None or until <= scope.start:
        _add_live(cells, scope, scope.start)
    else:
        # Rows of the days up to the one the refresh stopped in hold what came before it.
        _add_rolled(cells, scope, first, min(timezone.localdate(until) + timedelta(days=1), end))
        if until < scope.end:
            _add_live(cells, scope, until)
    for cell in cells.values():
        cell.cycle_p50, cell.cycle_p90, cell.cycle_p99 = percentiles(
            cell.histogram, (0.5, 0.9, 0.99)
        )
    return OutcomeFigures(
        scope=scope,
        buckets=scope.buckets(),
        workflows=workflows_named({key[0] for key in cells if key[0] is not None}),
        cells=dict(cells),
    )


def _add_rolled(cells: dict[Key, Figures], scope: Scope, first: date, last: date) -> None:
    """Add the rolled-up rows of the days from `first` to before `last`."""
    filters, filter_params = scope_filters(scope, event="d")
    params = {"unit": scope.unit, "first": first, "last": last, **filter_params}
    for workflow_id, bucket, *sums in analytic_rows(
        ROLLED_EVENTS_SQL.format(filters=filters), params
    ):
        cell = cells[(workflow_id, bucket)]
        for name, value in zip([*COUNTS, "touches"], sums, strict=True):
            setattr(cell, name, getattr(cell, name) + value)
    _add_histograms(
        cells,
        {
            (workflow_id, bucket): json.loads(cycles)
            for workflow_id, bucket, cycles in analytic_rows(
                ROLLED_CYCLES_SQL.format(filters=filters), params
            )
        },
    )
    add_cases(cells, analytic_rows(ROLLED_CASES_SQL.format(filters=filters), params))


def _add_histograms(cells: dict[Key, Figures], histograms: dict[Key, Histogram]) -> None:
    """Add each workflow's and bucket's histogram into its cell and the three it adds up into;
    the total from the workflows' totals, so each bucket of each day is added three times."""
    totals: dict[int | None, Histogram] = defaultdict(dict)
    for (workflow_id, bucket), histogram in histograms.items():
        merge(cells[(workflow_id, bucket)].histogram, histogram)
        merge(cells[(None, bucket)].histogram, histogram)
        merge(totals[workflow_id], histogram)
    for workflow_id, histogram in totals.items():
        merge(cells[(workflow_id, None)].histogram, histogram)
        merge(cells[(None, None)].histogram, histogram)


def _add_live(cells: dict[Key, Figures], scope: Scope, start: datetime) -> None:
    records = day_records(start, scope.end, scope)
    histograms: dict[Key, Histogram] = defaultdict(dict)
    for (day, workflow_id, _, _), record in records.events.items():
        bucket = _bucket(day, scope.unit)
        for key in levels(workflow_id, bucket):
            cell = cells[key]
            for name in (*COUNTS, "touches"):
                setattr(cell, name, getattr(cell, name) + record[name])
        merge(histograms[(workflow_id, bucket)], record["cycles"])
    _add_histograms(cells, histograms)
    add_cases(
        cells,
        [
            (workflow_id, _bucket(day, scope.unit), reason, *counts)
            for workflow_id, day, reason, _, _, *counts in records.cases
        ],
    )


def _bucket(day: date, unit: str) -> date:
    return day - timedelta(days=day.weekday()) if unit == "week" else day
