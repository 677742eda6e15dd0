"""Reads for the queue and the case and event pages: querysets and records, no wording.

How the rows read on a page (durations, SLA words, the payload's lines) is in presenters.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import (
    Count,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.http import QueryDict

from audit.models import AuditEntry
from exceptions.filters import CaseFilter
from exceptions.models import (
    OPEN_STATES,
    SLA_SORT_KEY,
    BulkItemState,
    BulkJob,
    BulkJobState,
    ExceptionCase,
    SavedView,
)
from exceptions.pagination import SortSpec, keyset_page
from workflows.models import Event

# Up to this many matching cases the queue counts exactly; beyond, it shows the planner's
# estimate and says so. Either way the count costs about the same on 1,000 or 1,000,000 cases.
EXACT_COUNT_LIMIT = 5000
GROUP_COUNT_LIMIT = 1000
_ROW_RELATIONS = ("workflow", "reason", "owner_team", "owner_user")
_ROW_DEFERRED = ("search", "resolution_note")


# --- default and saved views -----------------------------------------------------------------

OPEN_QUERY = "state=open&state=acknowledged&state=snoozed"
DEFAULT_VIEWS = [
    ("My open", f"{OPEN_QUERY}&owner=me"),
    ("Unassigned", f"{OPEN_QUERY}&owner=none"),
    ("No owner", f"{OPEN_QUERY}&team=none"),
    ("Breached SLA", f"{OPEN_QUERY}&breached=1"),
    ("All open", OPEN_QUERY),
]


def saved_views(*, user: Any) -> list[SavedView]:
    return list(SavedView.objects.filter(owner=user).order_by("name"))


# --- the filters --------------------------------------------------------------------------------


def case_filter(
    params: QueryDict, *, user: Any = None, queryset: QuerySet[ExceptionCase] | None = None
) -> CaseFilter:
    """The queue's filters over `queryset` (every case by default), as the queue reads them.

    The one place a filter is built: the queue, its bulk "everything matching", a group's
    members, the overview's counts and the API all narrow cases through here.
    """
    cases = ExceptionCase.objects.all() if queryset is None else queryset
    return CaseFilter(params, queryset=cases, user=user)


def cases_matching(
    params: QueryDict, *, user: Any = None, queryset: QuerySet[ExceptionCase] | None = None
) -> QuerySet[ExceptionCase]:
    """The cases the filters match; none when a filter value names nothing there is."""
    filterset = case_filter(params, user=user, queryset=queryset)
    return filterset.qs if filterset.is_valid() else ExceptionCase.objects.none()


# --- pages of cases ------------------------------------------------------------------------------

SORT_SPECS = {
    "sla": SortSpec(("sla_key", "id"), ("dt", "int")),
    "age": SortSpec(("opened_at", "id"), ("dt", "int")),
    "newest": SortSpec(("opened_at", "id"), ("dt", "int"), descending=True),
    "workflow": SortSpec(("workflow_id", "opened_at", "id"), ("int", "dt", "int")),
}


@dataclass
class QueuePage:
    rows: list[Any]
    next_cursor: str = ""
    prev_cursor: str = ""
    count: int = 0
    count_is_estimate: bool = False
    group_sizes: dict[str, int] = field(default_factory=dict)


def count_matching(queryset: QuerySet[Any]) -> tuple[int, bool]:
    """(count, is an estimate): exact up to EXACT_COUNT_LIMIT, the planner's estimate above."""
    capped = queryset.order_by().values("pk")[: EXACT_COUNT_LIMIT + 1]
    try:
        sql, params = capped.query.sql_with_params()
    except EmptyResultSet:
        # A filter naming nothing there is (an unknown workflow) makes an empty queryset,
        # which has no SQL at all.
        return 0, False
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({sql}) AS capped", params)  # noqa: S608
        (exact,) = cursor.fetchone()
        if exact <= EXACT_COUNT_LIMIT:
            return exact, False
        sql, params = queryset.order_by().values("pk").query.sql_with_params()
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return max(int(plan[0]["Plan"]["Plan Rows"]), exact), True


def group_sizes(fingerprints: list[str]) -> dict[str, int]:
    """Open cases per fingerprint, counted up to GROUP_COUNT_LIMIT each (one query)."""
    if not fingerprints:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT f.fp, (
                SELECT count(*) FROM (
                    SELECT 1 FROM exceptions_exceptioncase c
                    WHERE c.fingerprint = f.fp AND c.state = ANY(%s)
                    LIMIT %s
                ) AS g
            )
            FROM unnest(%s::text[]) AS f(fp)
            """,
            [list(OPEN_STATES), GROUP_COUNT_LIMIT, sorted(set(fingerprints))],
        )
        return dict(cursor.fetchall())


def queue_page(
    *, queryset: QuerySet[ExceptionCase], sort: str, after: str, before: str, per: int
) -> QueuePage:
    """One page of cases in `sort` order from a cursor, at the same cost on any page.

    A cursor that is not one of this sort's raises pagination.InvalidCursor.
    """
    spec = SORT_SPECS.get(sort, SORT_SPECS["sla"])
    rows = (
        queryset.select_related(*_ROW_RELATIONS)
        .defer(*_ROW_DEFERRED)
        .annotate(sla_key=SLA_SORT_KEY)
    )
    found = keyset_page(rows, spec=spec, after=after, before=before, per=per)
    count, estimate = count_matching(queryset)
    return QueuePage(
        rows=found.rows,
        next_cursor=found.next_cursor,
        prev_cursor=found.prev_cursor,
        count=count,
        count_is_estimate=estimate,
        group_sizes=group_sizes([row.fingerprint for row in found.rows]),
    )


# Grouped: one row per fingerprint among the matching cases, ordered by an aggregate.
GROUP_SORT_SPECS = {
    "sla": SortSpec(("g_key", "fingerprint"), ("dt", "str")),
    "age": SortSpec(("g_key", "fingerprint"), ("dt", "str")),
    "newest": SortSpec(("g_key", "fingerprint"), ("dt", "str"), descending=True),
    "workflow": SortSpec(("workflow_id", "g_key", "fingerprint"), ("int", "dt", "str")),
}
_GROUP_KEY = {
    "sla": Min(SLA_SORT_KEY),
    "age": Min("opened_at"),
    "newest": Max("opened_at"),
    "workflow": Min("opened_at"),
}
# Walking the groups: a group's head is its first matching case in this order, and the group's
# sort key is the head's.
_HEAD_ORDER: dict[str, tuple[Any, ...]] = {
    "sla": (SLA_SORT_KEY.asc(), "id"),
    "age": ("opened_at", "id"),
    "newest": ("-opened_at", "-id"),
    "workflow": ("opened_at", "id"),
}
_HEAD_KEY = {
    "sla": SLA_SORT_KEY,
    "age": F("opened_at"),
    "newest": F("opened_at"),
    "workflow": F("opened_at"),
}
# From this many matching open cases on, the groups are found by walking the open cases'
# fingerprints in an index (one probe per group) instead of grouping every matching case.
GROUP_WALK_FROM = EXACT_COUNT_LIMIT


@dataclass
class CaseGroup:
    fingerprint: str
    size: int
    head: ExceptionCase
    key: Any
    workflow_id: int
    oldest: datetime
    due: datetime | None
    size_is_floor: bool = False  # "at least": counted up to GROUP_COUNT_LIMIT and stopped


def queue_groups_page(
    *,
    queryset: QuerySet[ExceptionCase],
    sort: str,
    after: str,
    before: str,
    per: int,
    open_only: bool = False,
) -> QueuePage:
    """One page of groups (same fingerprint) among the matching cases, with their sizes.

    `open_only` says the queryset holds open cases only. Up to GROUP_WALK_FROM matching cases,
    the matches are grouped and every size is exact. Past it, open cases' groups are walked
    instead: the cost follows the number of problems, not of cases, and a size of
    GROUP_COUNT_LIMIT or more reads "at least". Closed cases are always grouped.
    """
    sort = sort if sort in GROUP_SORT_SPECS else "sla"
    spec = GROUP_SORT_SPECS[sort]
    count, estimate = count_matching(queryset)
    walk = open_only and count >= max(GROUP_WALK_FROM, 1)
    source, groups_of = (_walked if walk else _grouped)(queryset, sort)
    found = keyset_page(source, spec=spec, after=after, before=before, per=per)
    return QueuePage(
        rows=groups_of(found.rows),
        next_cursor=found.next_cursor,
        prev_cursor=found.prev_cursor,
        count=count,
        count_is_estimate=estimate,
    )


# A source of groups: the rows to page and what makes CaseGroups of a page of them.
_GroupSource = tuple[QuerySet[Any], Callable[[list[Any]], list[CaseGroup]]]


def _grouped(queryset: QuerySet[ExceptionCase], sort: str) -> _GroupSource:
    """GROUP BY over every matching case: exact sizes, at a cost that follows the matches."""
    grouped = (
        queryset.order_by()
        .values("fingerprint", "workflow_id")
        .annotate(
            g_key=_GROUP_KEY[sort],
            size=Count("id"),
            head=Min("id"),
            oldest=Min("opened_at"),
            due=Min("sla_due_at"),
        )
    )

    def groups_of(rows: list[dict[str, Any]]) -> list[CaseGroup]:
        heads = (
            ExceptionCase.objects.select_related(*_ROW_RELATIONS)
            .defer(*_ROW_DEFERRED)
            .in_bulk([g["head"] for g in rows])
        )
        return [
            CaseGroup(
                fingerprint=g["fingerprint"],
                size=g["size"],
                head=heads[g["head"]],
                key=g["g_key"],
                workflow_id=g["workflow_id"],
                oldest=g["oldest"],
                due=g["due"],
            )
            for g in rows
        ]

    return grouped, groups_of


class _CountUpTo(Subquery):
    """How many rows the subquery yields, which should be LIMITed: an "at most" count."""

    template = "(SELECT count(*) FROM (%(subquery)s) AS capped)"
    output_field = IntegerField()


# The distinct fingerprints of the open cases, in order: one index probe each.
_OPEN_SQL = "state IN ({})".format(", ".join(f"'{state.value}'" for state in OPEN_STATES))
_OPEN_FINGERPRINTS = f"""
WITH RECURSIVE fps(fp) AS (
    (SELECT fingerprint FROM {ExceptionCase._meta.db_table}
      WHERE {_OPEN_SQL} ORDER BY fingerprint LIMIT 1)
  UNION ALL
    SELECT (SELECT fingerprint FROM {ExceptionCase._meta.db_table}
             WHERE {_OPEN_SQL} AND fingerprint > fps.fp ORDER BY fingerprint LIMIT 1)
      FROM fps WHERE fps.fp IS NOT NULL
)
"""  # noqa: S608 (the table name from the model, the states from OPEN_STATES)


def _walked(queryset: QuerySet[ExceptionCase], sort: str) -> _GroupSource:
    """Each open fingerprint's first matching case in the sort's order is its group's head; the
    page is the heads' keyset page, each with its group's oldest case, first deadline and size."""
    head_of = (
        queryset.filter(fingerprint=RawSQL("fps.fp", ()))
        .order_by(*_HEAD_ORDER[sort])
        .values("id")[:1]
    )
    head_sql, head_params = head_of.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            # The head query is the ORM's, with its values as parameters.
            f"{_OPEN_FINGERPRINTS} SELECT h.id FROM fps CROSS JOIN LATERAL ({head_sql}) AS h",  # noqa: S608
            head_params,
        )
        head_ids = [row[0] for row in cursor.fetchall()]
    members = queryset.filter(fingerprint=OuterRef("fingerprint")).order_by()
    heads = (
        ExceptionCase.objects.filter(pk__in=head_ids)
        .select_related(*_ROW_RELATIONS)
        .defer(*_ROW_DEFERRED)
        .annotate(
            g_key=_HEAD_KEY[sort],
            size=_CountUpTo(members.values("id")[:GROUP_COUNT_LIMIT]),
            oldest=Subquery(members.order_by("opened_at", "id").values("opened_at")[:1]),
            due=Subquery(members.order_by(SLA_SORT_KEY.asc(), "id").values("sla_due_at")[:1]),
        )
    )

    def groups_of(rows: list[Any]) -> list[CaseGroup]:  # heads, with their annotations
        return [
            CaseGroup(
                fingerprint=head.fingerprint,
                size=head.size,
                head=head,
                key=head.g_key,
                workflow_id=head.workflow_id,
                oldest=head.oldest,
                due=head.due,
                size_is_floor=head.size >= GROUP_COUNT_LIMIT,
            )
            for head in rows
        ]

    return heads, groups_of


def group_members(
    *, fingerprint: str, queryset: QuerySet[ExceptionCase], limit: int = 50
) -> list[Any]:
    return list(
        queryset.filter(fingerprint=fingerprint)
        .select_related(*_ROW_RELATIONS)
        .defer(*_ROW_DEFERRED)
        .alias(sla_key=SLA_SORT_KEY)
        .order_by("sla_key", "id")[:limit]
    )


# --- one case, one event ---------------------------------------------------------------------


def case_for_page(pk: int) -> ExceptionCase:
    return ExceptionCase.objects.select_related(
        "event__workflow__current_version",
        "event__version",
        "event__owner_team",
        "event__owner_user",
        "event__replay_of",
        "workflow",
        "reason",
        "owner_team",
        "owner_user",
        "closed_by",
    ).get(pk=pk)


def event_for_page(pk: int) -> Event:
    return Event.objects.select_related(
        "workflow__current_version", "version", "owner_team", "owner_user", "replay_of"
    ).get(pk=pk)


@dataclass
class EventRecords:
    """The five records of an event, and what people did about it (DESIGN.md section 1)."""

    event: Event
    decisions: list[Any]
    attempts: list[Any]
    outcomes: list[Any]
    cases: list[ExceptionCase]
    replays: list[Event]
    comments: list[Any]
    audit: list[AuditEntry]


def event_records(*, event: Event, case: ExceptionCase | None = None) -> EventRecords:
    cases = list(
        event.exception_cases.select_related("reason", "owner_team", "owner_user", "closed_by")
        .defer("search")
        .order_by("-opened_at", "-id")
    )
    comments = []
    if case is not None:
        comments = list(case.comments.select_related("author").order_by("created_at", "id"))
    audit = AuditEntry.objects.filter(
        Q(object_type="exceptions.exceptioncase", object_id__in=[str(c.pk) for c in cases])
        | Q(object_type="workflows.event", object_id=str(event.pk))
    )
    return EventRecords(
        event=event,
        decisions=list(event.decisions.order_by("created_at", "id")),
        attempts=list(event.attempts.select_related("actor").order_by("number")),
        outcomes=list(event.outcomes.order_by("observed_at", "id")),
        cases=cases,
        replays=list(event.replays.only("id", "state", "received_at").order_by("id")),
        comments=comments,
        audit=list(audit.order_by("created_at", "id")),
    )


def bulk_job_for(*, pk: int, user: Any) -> BulkJob | None:
    return BulkJob.objects.filter(pk=pk, created_by=user).first()


def bulk_jobs_stalled(*, now: datetime, after: timedelta) -> list[int]:
    """Unfinished jobs with work left whose chunks stopped committing `after` ago or more.

    A job's chain of tasks ends if its message is lost (a broker restart, a purge); the items
    are still pending in the database, so sending the job again picks up where it stopped.
    """
    cutoff = now - after
    return list(
        BulkJob.objects.filter(state__in=[BulkJobState.QUEUED, BulkJobState.RUNNING])
        .annotate(moved=Coalesce("progressed_at", "started_at", "created_at"))
        .filter(moved__lt=cutoff, items__state=BulkItemState.PENDING)
        .values_list("pk", flat=True)
        .distinct()
    )
