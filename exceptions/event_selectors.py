"""Reads for /events/: a keyset page of events, each with its latest outcome and open cases."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast, Left

from exceptions.models import OPEN_STATES, ExceptionCase
from exceptions.pagination import SortSpec, keyset_page
from exceptions.selectors import count_matching
from workflows.models import Event, Outcome

EVENT_SORT_SPECS = {
    "newest": SortSpec(("received_at", "id"), ("dt", "int"), descending=True),
    "oldest": SortSpec(("received_at", "id"), ("dt", "int")),
}
# A row shows the start of the payload, never all of it: a page of large payloads would cost
# more than its rows.
PAYLOAD_HEAD_CHARS = 160


@dataclass(frozen=True)
class OpenCase:
    pk: int
    reason: str


@dataclass
class EventPage:
    rows: list[dict[str, Any]]  # the row fields below, as values
    outcomes: dict[int, Outcome]
    cases: dict[int, list[OpenCase]]
    next_cursor: str = ""
    prev_cursor: str = ""
    count: int = 0
    count_is_estimate: bool = False


# What a row shows, read as plain values: a page of 200 rows then costs its SQL, not the
# building of a thousand model instances.
ROW_FIELDS = (
    "id", "received_at", "state", "attempt_count", "replay_of_id", "workflow__name",
    "version__number", "owner_team__slug", "owner_user__username",
)  # fmt: skip


def events_page(
    *, queryset: QuerySet[Event], sort: str, after: str, before: str, per: int
) -> EventPage:
    """One page of events from a cursor, in received order, at the same cost on any page.

    A cursor that is not one of this sort's raises pagination.InvalidCursor.
    """
    spec = EVENT_SORT_SPECS.get(sort, EVENT_SORT_SPECS["newest"])
    rows = queryset.values(*ROW_FIELDS).annotate(
        payload_head=Left(Cast("payload", TextField()), PAYLOAD_HEAD_CHARS)
    )
    found = keyset_page(rows, spec=spec, after=after, before=before, per=per)
    count, estimate = count_matching(queryset)
    ids = [row["id"] for row in found.rows]
    return EventPage(
        rows=found.rows,
        outcomes=latest_outcomes(ids),
        cases=open_cases(ids),
        next_cursor=found.next_cursor,
        prev_cursor=found.prev_cursor,
        count=count,
        count_is_estimate=estimate,
    )


def latest_outcomes(event_ids: list[int]) -> dict[int, Outcome]:
    """The latest outcome of each event that has one (one query)."""
    if not event_ids:
        return {}
    rows = (
        Outcome.objects.filter(event_id__in=event_ids)
        .order_by("event_id", "-observed_at", "-id")
        .distinct("event_id")
    )
    return {outcome.event_id: outcome for outcome in rows}


def open_cases(event_ids: list[int]) -> dict[int, list[OpenCase]]:
    """The open cases holding each event (one query)."""
    found: dict[int, list[OpenCase]] = defaultdict(list)
    if not event_ids:
        return found
    rows = (
        ExceptionCase.objects.filter(event_id__in=event_ids, state__in=OPEN_STATES)
        .order_by("opened_at", "id")
        .values_list("event_id", "pk", "reason_id")
    )
    for event_id, pk, reason in rows:
        found[event_id].append(OpenCase(pk=pk, reason=str(reason)))
    return found


def event_has_open_case(event_id: int) -> bool:
    return ExceptionCase.objects.filter(event_id=event_id, state__in=OPEN_STATES).exists()
