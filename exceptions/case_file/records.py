"""What a case file holds, read in a number of queries that does not grow with its rows.

An event's records are its own and those of its replay family: the event it replays (up to the
first), and every replay made from any of them, since the execution and the outcome a reviewer
looks for may be on a replay. Long sections keep their first and last rows and say how many
were left out between them: an event retried thousands of times still makes a file of a few
thousand rows at most.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from django.db.models import Model, Q, QuerySet

from audit.models import AuditEntry
from exceptions.approvals.models import ApprovalRequest
from exceptions.models import ExceptionCase
from workflows.models import Attempt, Decision, Event, Outcome, SampleReviewItem, WorkflowVersion

# A family of replays larger than this is cut (the subject's own line is always kept).
FAMILY_LIMIT = 20
# Rows kept at each end of a long section.
KEEP = {
    "decisions": 250,
    "attempts": 250,
    "outcomes": 50,
    "cases": 50,
    "approvals": 50,
    "audit": 500,
}
# Whose owner when the case opened is worked out in full (each costs a few queries).
CASE_OWNER_LIMIT = 20
ROUTE_LIMIT = 200
# What generating a case file records: reading is not part of the story the file tells.
GENERATED_ACTION = "case_file.generate"

EVENT_TYPE = "workflows.event"
CASE_TYPE = "exceptions.exceptioncase"
SAMPLE_ITEM_TYPE = "workflows.samplereviewitem"

Row = TypeVar("Row", bound=Model)


@dataclass
class Section(Generic[Row]):
    """A section's rows in order; when it was too long, the first and last `keep` of them."""

    rows: list[Row]
    total: int
    # How many rows were left out after the first `gap_at` rows (0: none).
    omitted: int = 0
    gap_at: int = 0

    @property
    def head(self) -> list[Row]:
        return self.rows[: self.gap_at] if self.omitted else self.rows

    @property
    def tail(self) -> list[Row]:
        return self.rows[self.gap_at :] if self.omitted else []


def bounded(queryset: QuerySet[Row], *, order: tuple[str, ...], keep: int) -> Section[Row]:
    """The rows in `order`, or the first and last `keep` of them: at most three queries."""
    first = list(queryset.order_by(*order)[: 2 * keep + 1].iterator(chunk_size=500))
    if len(first) <= 2 * keep:
        return Section(rows=first, total=len(first))
    total = queryset.count()
    backwards = tuple(f[1:] if f.startswith("-") else f"-{f}" for f in order)
    last = list(queryset.order_by(*backwards)[:keep].iterator(chunk_size=500))
    last.reverse()
    return Section(rows=first[:keep] + last, total=total, omitted=total - 2 * keep, gap_at=keep)


@dataclass
class CaseFileRecords:
    """Everything a case file shows, as rows: section 1 of the design and the trail about it."""

    subject: Event
    case: ExceptionCase | None
    events: list[Event]
    # Some of the replay family were left out (more than FAMILY_LIMIT).
    family_cut: bool
    decisions: Section[Decision]
    attempts: Section[Attempt]
    outcomes: Section[Outcome]
    cases: Section[ExceptionCase]
    approvals: Section[ApprovalRequest]
    audit: Section[AuditEntry]
    # Every route decision of the family (the owners at each decision are read from them).
    routes: list[Decision]
    # (workflow id, version number) -> the version's content hash.
    version_hashes: dict[tuple[int, int], str]


def replay_family(event: Event) -> tuple[list[int], bool]:
    """Ids of the event's replay family: its first original and every replay down from it, at
    most FAMILY_LIMIT of them with the event's own line of originals always in; and whether
    some were left out."""
    line = [event.pk]
    current = event.replay_of_id
    while current is not None and len(line) < FAMILY_LIMIT:
        line.append(current)
        current = Event.objects.filter(pk=current).values_list("replay_of_id", flat=True).get()
    seen = set(line)
    cut = current is not None
    frontier = [line[-1]]
    while frontier and not cut:
        children = Event.objects.filter(replay_of_id__in=frontier).order_by("id")
        added = []
        for pk in children.values_list("id", flat=True)[: FAMILY_LIMIT + 1]:
            if pk in seen:
                continue
            if len(seen) >= FAMILY_LIMIT:
                cut = True
                break
            seen.add(pk)
            added.append(pk)
        frontier = added
    return sorted(seen), cut


def case_file_records(*, event: Event, case: ExceptionCase | None = None) -> CaseFileRecords:
    """Read everything the case file of `event` (asked for from `case`, if given) shows."""
    family, family_cut = replay_family(event)
    events = list(
        Event.objects.filter(pk__in=family)
        .select_related("workflow", "version", "owner_team", "owner_user")
        .order_by("received_at", "id")
    )
    decisions = bounded(
        Decision.objects.filter(event_id__in=family),
        order=("created_at", "id"),
        keep=KEEP["decisions"],
    )
    attempts = bounded(
        Attempt.objects.filter(event_id__in=family),
        order=("started_at", "id"),
        keep=KEEP["attempts"],
    )
    outcomes = bounded(
        Outcome.objects.filter(event_id__in=family),
        order=("observed_at", "id"),
        keep=KEEP["outcomes"],
    )
    cases = bounded(
        ExceptionCase.objects.filter(event_id__in=family)
        .select_related("reason", "owner_team", "owner_user", "closed_by")
        .defer("search"),
        order=("opened_at", "id"),
        keep=KEEP["cases"],
    )
    approvals = bounded(
        ApprovalRequest.objects.filter(Q(event_id__in=family) | Q(case__event_id__in=family))
        .select_related("requested_by", "decided_by", "workflow_version")
        .distinct(),
        order=("requested_at", "id"),
        keep=KEEP["approvals"],
    )
    routes = list(
        Decision.objects.filter(event_id__in=family, step="route").order_by("created_at", "id")[
            :ROUTE_LIMIT
        ]
    )
    # The versions the events ran under and the decisions name (a decision keeps its number).
    used = {(e.workflow_id, e.version.number) for e in events}
    workflow_of = {e.pk: e.workflow_id for e in events}
    used |= {(workflow_of[d.event_id], d.version_number) for d in decisions.rows}
    named = Q(pk__in=[])
    for workflow_id, number in sorted(used):
        named |= Q(workflow_id=workflow_id, number=number)
    versions = WorkflowVersion.objects.filter(named).only("workflow_id", "number", "content_hash")
    return CaseFileRecords(
        subject=next(e for e in events if e.pk == event.pk),
        case=case,
        events=events,
        family_cut=family_cut,
        decisions=decisions,
        attempts=attempts,
        outcomes=outcomes,
        cases=cases,
        approvals=approvals,
        audit=audit_about(events=events, cases=cases.rows, approvals=approvals.rows),
        routes=routes,
        version_hashes={(v.workflow_id, v.number): v.content_hash for v in versions},
    )


def audit_about(
    *, events: list[Event], cases: list[ExceptionCase], approvals: list[ApprovalRequest]
) -> Section[AuditEntry]:
    """Every entry about the events, their cases, their approval requests and their
    sample-review marks, and every entry of an approval one of those entries carries out."""
    event_ids = [str(e.pk) for e in events]
    items = SampleReviewItem.objects.filter(event_id__in=[e.pk for e in events]).values_list(
        "pk", flat=True
    )
    about = (
        Q(object_type=EVENT_TYPE, object_id__in=event_ids)
        | Q(object_type=CASE_TYPE, object_id__in=[str(c.pk) for c in cases])
        | Q(object_type=SAMPLE_ITEM_TYPE, object_id__in=[str(pk) for pk in items])
    )
    entries = AuditEntry.objects.exclude(action=GENERATED_ACTION)
    carried = set(
        entries.filter(about, approval_id__isnull=False).values_list("approval_id", flat=True)
    )
    carried |= {a.pk for a in approvals}
    if carried:
        about |= Q(approval_id__in=sorted(carried))
    return bounded(entries.filter(about), order=("created_at", "id"), keep=KEEP["audit"])
