"""The outcome figures, per workflow and per bucket of a period, computed by PostgreSQL.

Three queries, whatever the number of events: events (outcome, cycle time, errors, who closed
them), exception cases (reasons, time to acknowledge and to resolve), and the people's actions on
the audit trail (manual touches). Each groups in the database; only the sums come back, so the
page costs what its SQL costs.

What counts (the page says it too):
- an event's outcome is its latest Outcome. Achieved and failed count by their source: a person's
  (manual) outcome is counted apart, never as the automation's success or failure. No outcome on
  an event that waits for a person, or an expired confirmation, is a missing outcome; one still
  on its way is pending. A dismissed (cancelled) event and one whose outcome is carried by its
  replay are left out of the rates.
- cycle time runs from receipt to the outcome (achieved or failed, either source).
- an event errored if an attempt to run its action failed, or a case opened on it for a rule
  error, a processing error, a refused or failed delivery, or a failed outcome.
- MTTA: from a case opening to a person acknowledging it (or closing it, if nobody acknowledged
  first); MTTR: from opening to closing. Means over the cases opened in the bucket.
- a manual touch is an entry of a person on the audit trail about the event or one of its cases.
- an event closed automatically if it succeeded or failed with no case and no manual outcome.
"""

# The SQL is assembled from this module's constants only; every value is a parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from console.outcomes.histogram import Histogram
from console.outcomes.scope import Scope
from workflows.models import Workflow

ERROR_REASONS = (
    "rule_error",
    "processing_error",
    "delivery_rejected",
    "delivery_failed",
    "outcome_failed",
)
FAILED_ATTEMPTS = ("failed", "rejected", "exhausted")
Key = tuple[int | None, date | None]  # (workflow id, bucket); None is "all of them"


@dataclass
class Figures:
    """Every figure of one workflow (or all) over one bucket (or the whole period)."""

    events: int = 0  # received, replays included
    events_in: int = 0  # received from outside (not replays)
    achieved: int = 0
    manual: int = 0  # outcome recorded by a person, achieved or failed
    manual_achieved: int = 0
    failed: int = 0
    missing: int = 0
    pending: int = 0
    replayed: int = 0
    cancelled: int = 0
    cycles: list[float] | None = None  # p50, p90, p99 as the query gives them
    cycle_p50: float | None = None  # seconds
    cycle_p90: float | None = None
    cycle_p99: float | None = None
    with_outcome: int = 0
    errored: int = 0
    closed: int = 0
    automatic: int = 0
    cases: int = 0
    acknowledged: int = 0
    ack_seconds: float = 0.0
    resolved: int = 0
    resolve_seconds: float = 0.0
    touches: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    histogram: Histogram = field(default_factory=dict)  # cycle times, when read from the rollup

    @property
    def rated(self) -> int:
        """Events whose outcome counts in the rates."""
        return self.achieved + self.manual + self.failed + self.missing

    def share(self, part: int, whole: int) -> float | None:
        return round(100 * part / whole, 1) if whole else None

    @property
    def outcome_rate(self) -> float | None:
        return self.share(self.achieved, self.rated)

    @property
    def manual_rate(self) -> float | None:
        return self.share(self.manual, self.rated)

    @property
    def failed_rate(self) -> float | None:
        return self.share(self.failed, self.rated)

    @property
    def missing_rate(self) -> float | None:
        return self.share(self.missing, self.rated)

    @property
    def error_rate(self) -> float | None:
        return self.share(self.errored, self.events)

    @property
    def automatic_share(self) -> float | None:
        return self.share(self.automatic, self.closed)

    @property
    def human_share(self) -> float | None:
        return self.share(self.closed - self.automatic, self.closed)

    @property
    def mtta(self) -> float | None:
        return self.ack_seconds / self.acknowledged if self.acknowledged else None

    @property
    def mttr(self) -> float | None:
        return self.resolve_seconds / self.resolved if self.resolved else None

    @property
    def touches_per_event(self) -> float | None:
        return round(self.touches / self.events, 2) if self.events else None


@dataclass
class OutcomeFigures:
    scope: Scope
    buckets: list[date]
    workflows: list[tuple[int, str, str]]  # (id, slug, name) of the workflows with figures
    cells: dict[Key, Figures]

    def at(self, workflow_id: int | None, bucket: date | None) -> Figures:
        return self.cells.get((workflow_id, bucket)) or Figures()

    def series(self, workflow_id: int | None) -> list[Figures]:
        """One workflow's (or all workflows') figures, bucket by bucket."""
        return [self.at(workflow_id, bucket) for bucket in self.buckets]

    def reasons(self, workflow_id: int | None) -> list[str]:
        """The reason codes of the cases in the period, most frequent first."""
        total = self.at(workflow_id, None).by_reason
        return sorted(total, key=lambda code: (-total[code], code))


def scope_filters(
    scope: Scope, *, event: str, case: str | None = None
) -> tuple[str, dict[str, Any]]:
    """SQL conditions for the scope's filters on an event alias, or on a case alias (whose
    event, aliased `event`, is then needed only for the version)."""
    sql, params = "", {}
    if scope.workflow is not None:
        sql += f" AND {case or event}.workflow_id = %(workflow)s"
        params["workflow"] = scope.workflow.pk
    if scope.team is not None:
        owner = f"{case}.owner_team_id" if case else f"{event}.owner_team_id"
        sql += f" AND {owner} = %(team)s"
        params["team"] = scope.team.pk
    if scope.version is not None:
        sql += (
            f" AND {event}.version_id IN (SELECT v.id FROM workflows_workflowversion v"
            " WHERE v.number = %(version)s)"
        )
        params["version"] = scope.version
    return sql, params


def _common(scope: Scope) -> dict[str, Any]:
    return {
        "start": scope.start,
        "end": scope.end,
        "unit": scope.unit,
        "tz": settings.TIME_ZONE,
        "error_reasons": list(ERROR_REASONS),
        "failed_attempts": list(FAILED_ATTEMPTS),
    }


# The columns of EVENTS_SQL after the workflow and the bucket, in order.
EVENT_COLUMNS = (
    "events", "events_in", "achieved", "manual", "manual_achieved", "failed", "missing",
    "pending", "replayed", "cancelled", "cycles", "with_outcome", "errored", "closed", "automatic",
)  # fmt: skip

JUDGED_SQL = """
-- Each record is looked up for the events of the scope only: by index for a day or two, by
-- one pass over the table for a long period, as the planner finds cheaper.
WITH scope AS (
    SELECT e.id, e.workflow_id, e.version_id, e.owner_team_id, e.state, e.received_at,
        e.replay_of_id, date_trunc(%(unit)s, e.received_at AT TIME ZONE %(tz)s)::date AS bucket
    FROM workflows_event e
    WHERE e.received_at >= %(start)s AND e.received_at < %(end)s {filters}
),
last_outcome AS (
    SELECT DISTINCT ON (o.event_id) o.event_id, o.status, o.source, o.observed_at
    FROM workflows_outcome o
    WHERE o.observed_at >= %(start)s AND o.event_id IN (SELECT id FROM scope)
    ORDER BY o.event_id, o.observed_at DESC, o.id DESC
),
cased AS (
    SELECT c.event_id, bool_or(c.reason_id = ANY(%(error_reasons)s)) AS errored
    FROM exceptions_exceptioncase c
    WHERE c.opened_at >= %(start)s AND c.event_id IN (SELECT id FROM scope)
    GROUP BY c.event_id
),
failed_attempt AS (
    SELECT DISTINCT a.event_id FROM workflows_attempt a
    WHERE a.started_at >= %(start)s AND a.status = ANY(%(failed_attempts)s)
        AND a.event_id IN (SELECT id FROM scope)
),
replayed AS (
    SELECT DISTINCT r.replay_of_id AS event_id FROM workflows_event r
    WHERE r.replay_of_id IN (SELECT id FROM scope) AND r.received_at >= %(start)s
),
judged AS (
    SELECT s.workflow_id, s.bucket, s.version_id, s.owner_team_id,
        s.replay_of_id IS NULL AS original,
        CASE
            WHEN s.state = 'cancelled' THEN 'cancelled'
            WHEN rp.event_id IS NOT NULL THEN 'replayed'
            WHEN lo.source = 'manual' THEN 'manual'
            WHEN lo.status = 'achieved' THEN 'achieved'
            WHEN lo.status = 'failed' OR s.state = 'failed' THEN 'failed'
            WHEN lo.status = 'expired' OR s.state = 'needs_attention' THEN 'missing'
            ELSE 'pending'
        END AS category,
        lo.source = 'manual' AND lo.status = 'achieved' AS manual_achieved,
        CASE WHEN lo.status IN ('achieved', 'failed')
            THEN extract(epoch FROM lo.observed_at - s.received_at) END AS cycle,
        coalesce(cs.errored, false) OR fa.event_id IS NOT NULL AS errored,
        s.state IN ('succeeded', 'failed') AS closed,
        cs.event_id IS NULL AND lo.source IS DISTINCT FROM 'manual' AS untouched
    FROM scope s
    LEFT JOIN last_outcome lo ON lo.event_id = s.id
    LEFT JOIN cased cs ON cs.event_id = s.id
    LEFT JOIN failed_attempt fa ON fa.event_id = s.id
    LEFT JOIN replayed rp ON rp.event_id = s.id
)
"""

# The counts of EVENT_COLUMNS but the percentiles, over rows of the judged events.
EVENT_COUNTS_SQL = """
    count(*), count(*) FILTER (WHERE original),
    count(*) FILTER (WHERE category = 'achieved'),
    count(*) FILTER (WHERE category = 'manual'),
    count(*) FILTER (WHERE category = 'manual' AND manual_achieved),
    count(*) FILTER (WHERE category = 'failed'),
    count(*) FILTER (WHERE category = 'missing'),
    count(*) FILTER (WHERE category = 'pending'),
    count(*) FILTER (WHERE category = 'replayed'),
    count(*) FILTER (WHERE category = 'cancelled'),
    {cycles}
    count(cycle),
    count(*) FILTER (WHERE errored),
    count(*) FILTER (WHERE closed),
    count(*) FILTER (WHERE closed AND untouched)
"""

EVENTS_SQL = (
    JUDGED_SQL
    + "SELECT workflow_id, bucket,"
    + EVENT_COUNTS_SQL.format(
        cycles="percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY cycle),"
    )
    + """FROM judged
GROUP BY GROUPING SETS ((workflow_id, bucket), (workflow_id), (bucket), ())
"""
)


# {keys}: more columns to group by, after the workflow, the bucket and the reason.
CASES_SQL = """
SELECT c.workflow_id, date_trunc(%(unit)s, c.opened_at AT TIME ZONE %(tz)s)::date, c.reason_id
    {keys}, count(*),
    count(t.acknowledged),
    coalesce(sum(extract(epoch FROM t.acknowledged - c.opened_at)), 0),
    count(*) FILTER (WHERE c.state IN ('resolved', 'dismissed')),
    coalesce(sum(extract(epoch FROM c.resolved_at - c.opened_at))
        FILTER (WHERE c.state IN ('resolved', 'dismissed')), 0)
FROM exceptions_exceptioncase c
{join}
CROSS JOIN LATERAL (SELECT coalesce(c.acknowledged_at,
    CASE WHEN c.closed_by_id IS NOT NULL THEN c.resolved_at END) AS acknowledged) t
WHERE c.opened_at >= %(start)s AND c.opened_at < %(end)s {filters}
GROUP BY {group}
"""

TOUCHES_SQL = """
WITH touched AS (
    SELECT coalesce(c.event_id, CASE WHEN a.object_type = 'workflows.event'
        THEN a.object_id::bigint END) AS event_id
    FROM audit_auditentry a
    LEFT JOIN exceptions_exceptioncase c
        ON a.object_type = 'exceptions.exceptioncase' AND c.id = a.object_id::bigint
    WHERE a.actor_kind = 'user' AND a.created_at >= %(start)s
        AND a.object_type IN ('workflows.event', 'exceptions.exceptioncase')
        AND a.object_id ~ '^[0-9]{{1,18}}$'
)
SELECT e.workflow_id, date_trunc(%(unit)s, e.received_at AT TIME ZONE %(tz)s)::date
    {keys}, count(*)
FROM touched t JOIN workflows_event e ON e.id = t.event_id
WHERE e.received_at >= %(start)s AND e.received_at < %(end)s {filters}
GROUP BY {group}
"""


# An analytic query sorts and hashes hundreds of thousands of rows: in memory rather than in
# temporary files, and without JIT compilation, which costs more than it saves on queries
# planned afresh each time. Only for these statements (SET LOCAL ends with the transaction).
ANALYTIC_SETTINGS = ("SET LOCAL work_mem = '64MB'", "SET LOCAL jit = off")


def analytic_rows(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with transaction.atomic(), connection.cursor() as cursor:
        for setting in ANALYTIC_SETTINGS:
            cursor.execute(setting)
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def levels(workflow_id: int, bucket: date) -> list[Key]:
    """The cells a per-workflow, per-bucket row adds up into."""
    return [(workflow_id, bucket), (workflow_id, None), (None, bucket), (None, None)]


def add_cases(cells: dict[Key, Figures], rows: list[tuple[Any, ...]]) -> None:
    """Add rows of (workflow, bucket, reason, cases, acknowledged, seconds to acknowledge,
    resolved, seconds to resolve) into their cells."""
    for workflow_id, bucket, reason, count, acked, ack_s, resolved, resolve_s in rows:
        for key in levels(workflow_id, bucket):
            cell = cells[key]
            cell.cases += count
            cell.acknowledged += acked
            cell.ack_seconds += float(ack_s)
            cell.resolved += resolved
            cell.resolve_seconds += float(resolve_s)
            cell.by_reason[reason] = cell.by_reason.get(reason, 0) + count


def live_outcome_figures(scope: Scope) -> OutcomeFigures:
    """Every figure of the scope, per workflow and bucket, per workflow, per bucket and in all,
    computed from the records alone, percentiles exact.

    The definition of the figures: the page reads the same ones from the daily rollup
    (console.outcomes.rollup), which its tests hold equal to these.
    """
    cells: dict[Key, Figures] = defaultdict(Figures)
    params = _common(scope)

    event_filters, event_params = scope_filters(scope, event="e")
    for row in analytic_rows(EVENTS_SQL.format(filters=event_filters), {**params, **event_params}):
        workflow_id, bucket, *values = row
        cell = cells[(workflow_id, bucket)]
        for name, value in zip(EVENT_COLUMNS, values, strict=True):
            setattr(cell, name, value)
        cell.cycle_p50, cell.cycle_p90, cell.cycle_p99 = cell.cycles or (None, None, None)

    case_filters, case_params = scope_filters(scope, event="e", case="c")
    # The events are joined only to filter by version: a case knows its workflow and owner.
    join = "JOIN workflows_event e ON e.id = c.event_id" if scope.version is not None else ""
    cases_sql = CASES_SQL.format(
        filters=case_filters.replace("e.workflow_id", "c.workflow_id"),
        join=join,
        keys="",
        group="1, 2, 3",
    )
    add_cases(cells, analytic_rows(cases_sql, {**params, **case_params}))

    for workflow_id, bucket, count in analytic_rows(
        TOUCHES_SQL.format(filters=event_filters, keys="", group="1, 2"),
        {**params, **event_params},
    ):
        for key in levels(workflow_id, bucket):
            cells[key].touches += count

    return OutcomeFigures(
        scope=scope,
        buckets=scope.buckets(),
        workflows=workflows_named({key[0] for key in cells if key[0] is not None}),
        cells=dict(cells),
    )


def workflows_named(ids: set[int]) -> list[tuple[int, str, str]]:
    rows = Workflow.objects.filter(pk__in=ids).order_by("name").values_list("pk", "slug", "name")
    return list(rows)
