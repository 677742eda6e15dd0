"""Reads for the queue and the case and event pages, shaped for the page that shows them."""

from __future__ import annotations

import base64
import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Count, F, Max, Min, Q, QuerySet
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan
from django.http import QueryDict
from django.urls import reverse

from audit.models import AuditEntry
from exceptions.models import (
    NO_DEADLINE,
    OPEN_STATES,
    SLA_SORT_KEY,
    BulkJob,
    ExceptionCase,
    SavedView,
)
from workflows.models import Event
from workflows.rules import compiled_version
from workflows.services.engine import FieldProblem, validation_problems

# Up to this many matching cases the queue counts exactly; beyond, it shows the planner's
# estimate and says so. Either way the count costs about the same on 1,000 or 1,000,000 cases.
EXACT_COUNT_LIMIT = 5000
GROUP_COUNT_LIMIT = 1000
PAYLOAD_LINE_LIMIT = 3000


# --- default and saved views -----------------------------------------------------------------

OPEN_QUERY = "state=open&state=acknowledged&state=snoozed"
DEFAULT_VIEWS = [
    ("My open", f"{OPEN_QUERY}&owner=me"),
    ("Unassigned", f"{OPEN_QUERY}&owner=none"),
    ("Breached SLA", f"{OPEN_QUERY}&breached=1"),
    ("All open", OPEN_QUERY),
]
# Parameters that are positions in the list or page furniture, not part of a view.
VOLATILE_PARAMS = ("after", "before", "job")


def view_query(params: QueryDict) -> str:
    """The query string that names a view: the filters, sort and size, not the position."""
    kept = params.copy()
    for name in VOLATILE_PARAMS:
        kept.pop(name, None)
    return kept.urlencode()


def saved_views(*, user: Any) -> list[SavedView]:
    return list(SavedView.objects.filter(owner=user).order_by("name"))


# --- keyset pagination --------------------------------------------------------------------------


@dataclass(frozen=True)
class SortSpec:
    keys: tuple[str, ...]  # aliases, the last one always "id"
    kinds: tuple[str, ...]  # "dt" or "int", to decode cursors
    descending: bool = False


SORT_SPECS = {
    "sla": SortSpec(("sla_key", "id"), ("dt", "int")),
    "age": SortSpec(("opened_at", "id"), ("dt", "int")),
    "newest": SortSpec(("opened_at", "id"), ("dt", "int"), descending=True),
    "workflow": SortSpec(("workflow_id", "opened_at", "id"), ("int", "dt", "int")),
}


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, spec: SortSpec) -> list[Any] | None:
    """The key values in a cursor, or None if it is not one of ours (then: the first page)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != len(spec.kinds):
            return None
        return [
            datetime.fromisoformat(v) if kind == "dt" else int(v)
            for v, kind in zip(values, spec.kinds, strict=True)
        ]
    except (ValueError, TypeError):
        return None


def _sort_values(case: ExceptionCase, spec: SortSpec) -> list[Any]:
    by_alias = {
        "sla_key": case.sla_due_at or NO_DEADLINE,
        "opened_at": case.opened_at,
        "workflow_id": case.workflow_id,
        "id": case.pk,
    }
    return [by_alias[key] for key in spec.keys]


def short_duration(delta: timedelta) -> str:
    """A duration as an operator scans it: "3h 12m", "2d 4h", "<1m"."""
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h" if hours and days < 10 else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m"
    return "<1m"


def sla_wording(case: ExceptionCase, now: datetime) -> tuple[str, str]:
    """(state, words): ("breached", "breached 2h ago"), ("due", "ack in 12m") or ("", "")."""
    state = case.sla_state(now)
    if state == "breached":
        return state, f"breached {short_duration(now - case.sla_due_at)} ago"  # type: ignore[operator]
    if state == "due":
        clock = "ack" if case.acknowledged_at is None and case.acknowledge_due_at else "resolve"
        return state, f"{clock} in {short_duration(case.sla_due_at - now)}"  # type: ignore[operator]
    return "", ""


@dataclass(frozen=True)
class QueueRow:
    """One line of the queue, worked out once here so the template only places it."""

    pk: int
    version: int
    url: str
    age: str
    opened_at: datetime
    sla_state: str
    sla_text: str
    sla_due_at: datetime | None
    workflow: str
    reason: str
    team: str
    person: str
    detail: str
    state: str
    state_label: str
    is_open: bool
    fingerprint: str
    group_size: int
    is_group: bool = False


def group_rows(groups: list[CaseGroup], *, now: datetime) -> list[QueueRow]:
    """One row per group: its first case's words, with the group's oldest age and worst SLA."""
    rows = []
    for group, row in zip(groups, queue_rows([g.head for g in groups], now=now), strict=True):
        sla_state, sla_text = "", ""
        if group.due is not None:
            late = now > group.due
            sla_state = "breached" if late else "due"
            sla_text = (
                f"breached {short_duration(now - group.due)} ago"
                if late
                else f"next due in {short_duration(group.due - now)}"
            )
        rows.append(
            dataclasses.replace(
                row,
                age=short_duration(now - group.oldest),
                opened_at=group.oldest,
                sla_state=sla_state,
                sla_text=sla_text,
                sla_due_at=group.due,
                group_size=group.size,
                is_group=True,
            )
        )
    return rows


def queue_rows(
    cases: list[ExceptionCase], *, now: datetime, sizes: dict[str, int] | None = None
) -> list[QueueRow]:
    """Rows for the queue template."""
    url = reverse("case", args=[0]).removesuffix("0/")
    rows = []
    for case in cases:
        sla_state, sla_text = sla_wording(case, now)
        size = (sizes or {}).get(case.fingerprint, 1)
        rows.append(
            QueueRow(
                pk=case.pk,
                version=case.version,
                url=f"{url}{case.pk}/",
                age=short_duration(now - case.opened_at),
                opened_at=case.opened_at,
                sla_state=sla_state,
                sla_text=sla_text,
                sla_due_at=case.sla_due_at,
                workflow=case.workflow.name,
                reason=case.reason.label,
                team=case.owner_team.slug if case.owner_team_id else "",
                person=case.owner_user.get_username() if case.owner_user_id else "",
                detail=case.detail,
                state=case.state,
                state_label=case.get_state_display(),
                is_open=case.is_open,
                fingerprint=case.fingerprint,
                group_size=size,
            )
        )
    return rows


@dataclass
class QueuePage:
    rows: list[Any]
    next_cursor: str = ""
    prev_cursor: str = ""
    count: int = 0
    count_is_estimate: bool = False
    group_sizes: dict[str, int] = field(default_factory=dict)

    @property
    def is_first(self) -> bool:
        return not self.prev_cursor


def _keyset(
    queryset: QuerySet,
    *,
    spec: SortSpec,
    after: str,
    before: str,
    per: int,
    key_exprs: dict[str, Any],
) -> tuple[list[Any], bool, bool]:
    """(rows, more after them, more before them) for one page in the spec's order."""
    queryset = queryset.alias(**key_exprs) if key_exprs else queryset
    position = decode_cursor(before, spec) if before else decode_cursor(after, spec)
    backwards = bool(before) and position is not None
    forward_order = [f"-{k}" if spec.descending else k for k in spec.keys]
    if backwards:
        order = [k[1:] if k.startswith("-") else f"-{k}" for k in forward_order]
    else:
        order = forward_order
    if position is not None:
        columns = Tuple(*(F(k) for k in spec.keys))
        ahead = TupleLessThan if spec.descending != backwards else TupleGreaterThan
        queryset = queryset.filter(ahead(columns, tuple(position)))
    rows = list(queryset.order_by(*order)[: per + 1])
    more = len(rows) > per
    rows = rows[:per]
    if backwards:
        rows.reverse()
        return rows, True, more
    return rows, more, position is not None


def count_matching(queryset: QuerySet) -> tuple[int, bool]:
    """(count, is an estimate): exact up to EXACT_COUNT_LIMIT, the planner's estimate above."""
    capped = queryset.order_by().values("pk")[: EXACT_COUNT_LIMIT + 1]
    sql, params = capped.query.sql_with_params()
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
    """One page of cases in `sort` order from a cursor, at the same cost on any page."""
    spec = SORT_SPECS.get(sort, SORT_SPECS["sla"])
    rows_qs = queryset.select_related("workflow", "reason", "owner_team", "owner_user").defer(
        "search", "resolution_note"
    )
    key_exprs = {"sla_key": SLA_SORT_KEY} if "sla_key" in spec.keys else {}
    rows, more_after, more_before = _keyset(
        rows_qs, spec=spec, after=after, before=before, per=per, key_exprs=key_exprs
    )
    page = QueuePage(rows=rows)
    if rows and more_after:
        page.next_cursor = encode_cursor(_sort_values(rows[-1], spec))
    if rows and more_before:
        page.prev_cursor = encode_cursor(_sort_values(rows[0], spec))
    page.count, page.count_is_estimate = count_matching(queryset)
    page.group_sizes = group_sizes([row.fingerprint for row in rows])
    return page


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


@dataclass
class CaseGroup:
    fingerprint: str
    size: int
    head: ExceptionCase
    key: Any
    workflow_id: int
    oldest: datetime
    due: datetime | None

    @property
    def sort_values(self) -> list[Any]:
        return [self.key, self.fingerprint]


def _decode_group_cursor(cursor: str, spec: SortSpec) -> list[Any] | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != len(spec.kinds):
            return None
        decoded: list[Any] = []
        for value, kind in zip(values, spec.kinds, strict=True):
            if kind == "dt":
                decoded.append(datetime.fromisoformat(value))
            elif kind == "int":
                decoded.append(int(value))
            else:
                decoded.append(str(value))
        return decoded
    except (ValueError, TypeError):
        return None


def queue_groups_page(
    *, queryset: QuerySet[ExceptionCase], sort: str, after: str, before: str, per: int
) -> QueuePage:
    """One page of groups (same fingerprint) among the matching cases, with their sizes.

    Grouping has to look at every matching case, so this costs in proportion to the filter's
    matches; the flat list is the one that costs the same on any page of any size.
    """
    spec = GROUP_SORT_SPECS.get(sort, GROUP_SORT_SPECS["sla"])
    grouped = (
        queryset.order_by()
        .values("fingerprint", "workflow_id")
        .annotate(
            g_key=_GROUP_KEY.get(sort, _GROUP_KEY["sla"]),
            size=Count("id"),
            head=Min("id"),
            oldest=Min("opened_at"),
            due=Min("sla_due_at"),
        )
    )
    cursor = before or after
    position = _decode_group_cursor(cursor, spec) if cursor else None
    backwards = bool(before) and position is not None
    forward = [f"-{k}" if spec.descending else k for k in spec.keys]
    order = [k[1:] if k.startswith("-") else f"-{k}" for k in forward] if backwards else forward
    if position is not None:
        ahead = TupleLessThan if spec.descending != backwards else TupleGreaterThan
        grouped = grouped.filter(ahead(Tuple(*(F(k) for k in spec.keys)), tuple(position)))
    found = list(grouped.order_by(*order)[: per + 1])
    more = len(found) > per
    found = found[:per]
    if backwards:
        found.reverse()
    heads = (
        ExceptionCase.objects.select_related("workflow", "reason", "owner_team", "owner_user")
        .defer("search", "resolution_note")
        .in_bulk([g["head"] for g in found])
    )
    groups = [
        CaseGroup(
            g["fingerprint"],
            g["size"],
            heads[g["head"]],
            g["g_key"],
            g["workflow_id"],
            g["oldest"],
            g["due"],
        )
        for g in found
    ]
    page = QueuePage(rows=groups)

    def values(group: CaseGroup) -> list[Any]:
        keys = {"g_key": group.key, "fingerprint": group.fingerprint, "workflow_id": None}
        keys["workflow_id"] = group.workflow_id
        return [keys[k] for k in spec.keys]

    more_after, more_before = (True, more) if backwards else (more, position is not None)
    if groups and more_after:
        page.next_cursor = encode_cursor(values(groups[-1]))
    if groups and more_before:
        page.prev_cursor = encode_cursor(values(groups[0]))
    page.count, page.count_is_estimate = count_matching(queryset)
    return page


def group_members(*, fingerprint: str, queryset: QuerySet, limit: int = 50) -> list[Any]:
    return list(
        queryset.filter(fingerprint=fingerprint)
        .select_related("workflow", "reason", "owner_team", "owner_user")
        .defer("search", "resolution_note")
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


@dataclass(frozen=True)
class JsonLine:
    depth: int
    key: str  # JSON-encoded key with its colon, or ""
    text: str  # a JSON scalar, or an opening or closing bracket
    comma: bool
    path: str
    mark: str  # "" | "bad" (the failing field) | "near" (holds a missing field) | "read"


def payload_lines(
    payload: Any, *, bad: set[str], near: set[str], read: set[str]
) -> tuple[list[JsonLine], bool]:
    """The payload as pretty JSON lines, each knowing its dotted path, so the page can mark the
    failing field without building HTML here. (lines, truncated)."""
    lines: list[JsonLine] = []

    def mark(path: str) -> str:
        if path in bad:
            return "bad"
        if path in near:
            return "near"
        return "read" if path in read else ""

    def walk(value: Any, depth: int, key: str, path: str, comma: bool) -> None:
        if len(lines) >= PAYLOAD_LINE_LIMIT:
            return
        label = f"{json.dumps(key, ensure_ascii=False)}: " if key else ""
        if isinstance(value, dict) and value:
            lines.append(JsonLine(depth, label, "{", False, path, mark(path)))
            items = list(value.items())
            for i, (child_key, child) in enumerate(items):
                child_path = f"{path}.{child_key}" if path else str(child_key)
                walk(child, depth + 1, str(child_key), child_path, i < len(items) - 1)
            lines.append(JsonLine(depth, "", "}", comma, path, mark(path)))
        elif isinstance(value, list) and value:
            lines.append(JsonLine(depth, label, "[", False, path, mark(path)))
            for i, child in enumerate(value):
                walk(child, depth + 1, "", f"{path}.{i}" if path else str(i), i < len(value) - 1)
            lines.append(JsonLine(depth, "", "]", comma, path, mark(path)))
        else:
            text = json.dumps(value, ensure_ascii=False)
            lines.append(JsonLine(depth, label, text, comma, path, mark(path)))

    walk(payload, 0, "", "", False)
    return lines, len(lines) >= PAYLOAD_LINE_LIMIT


@dataclass
class Story:
    """The five records of an event, and what people did about it."""

    event: Event
    decisions: list[Any]
    attempts: list[Any]
    outcomes: list[Any]
    cases: list[ExceptionCase]
    replays: list[Event]
    comments: list[Any]
    audit: list[AuditEntry]
    problems: list[FieldProblem]
    lines: list[JsonLine]
    lines_truncated: bool
    route_decision: Any = None
    owner_change: AuditEntry | None = None


def event_story(*, event: Event, case: ExceptionCase | None = None) -> Story:
    decisions = list(event.decisions.order_by("created_at", "id"))
    attempts = list(event.attempts.select_related("actor").order_by("number"))
    outcomes = list(event.outcomes.order_by("observed_at", "id"))
    cases = list(
        event.exception_cases.select_related("reason", "owner_team", "owner_user", "closed_by")
        .defer("search")
        .order_by("-opened_at", "-id")
    )
    replays = list(event.replays.only("id", "state", "received_at").order_by("id"))
    comments = []
    if case is not None:
        comments = list(case.comments.select_related("author").order_by("created_at", "id"))
    case_ids = [str(c.pk) for c in cases]
    audit = list(
        AuditEntry.objects.filter(
            Q(object_type="exceptions.exceptioncase", object_id__in=case_ids)
            | Q(object_type="workflows.event", object_id=str(event.pk))
        ).order_by("created_at", "id")
    )
    problems = validation_problems(compiled_version(event.version), event.payload)
    bad = {p.path for p in problems if p.problem != "missing"}
    # A missing field cannot be marked where it is not: mark the object that should hold it.
    near = {p.path.rpartition(".")[0] for p in problems if p.problem == "missing"} - {""}
    read = set()
    for decision in decisions:
        if not decision.ok and isinstance(decision.inputs, dict):
            read |= {
                k.removeprefix("payload.") for k in decision.inputs if k.startswith("payload.")
            }
    lines, truncated = payload_lines(event.payload, bad=bad, near=near, read=read)
    route = next((d for d in reversed(decisions) if d.step == "route"), None)
    return Story(
        event=event,
        decisions=decisions,
        attempts=attempts,
        outcomes=outcomes,
        cases=cases,
        replays=replays,
        comments=comments,
        audit=audit,
        problems=problems,
        lines=lines,
        lines_truncated=truncated,
        route_decision=route,
        owner_change=next(
            (e for e in reversed(audit) if e.action in ("case.assign", "case.claim")), None
        ),
    )


def bulk_job_for(*, pk: int, user: Any) -> BulkJob | None:
    return BulkJob.objects.filter(pk=pk, created_by=user).first()
