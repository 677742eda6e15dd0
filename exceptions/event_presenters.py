"""How a page of /events/ reads: each row's words worked out once, so the template only places
them (a page of 200 rows costs about its SQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.urls import reverse
from django.utils import timezone

from exceptions.event_selectors import EventPage, OpenCase
from exceptions.presenters import short_duration
from workflows.models import EventState, OutcomeSource, OutcomeStatus

_STATE_LABELS = dict(EventState.choices)
_OUTCOME_LABELS = dict(OutcomeStatus.choices)


@dataclass(frozen=True)
class EventRow:
    pk: int
    url: str
    received_iso: str
    received_title: str
    received_text: str
    age: str
    workflow: str
    version: int
    state: str
    state_label: str
    owner: str
    owner_kind: str  # "person", "team" or "" (not routed)
    outcome: str  # the latest outcome's status, or ""
    outcome_label: str
    outcome_by_hand: bool
    attempts: int
    replay_of: int | None
    cases: list[tuple[OpenCase, str]]  # each open case with its URL
    payload_head: str


def event_rows(page: EventPage, *, now: datetime) -> list[EventRow]:
    event_url = reverse("event", args=[0]).removesuffix("0/")
    case_url = reverse("case", args=[0]).removesuffix("0/")
    rows = []
    for row in page.rows:
        pk = row["id"]
        received = timezone.localtime(row["received_at"])
        outcome = page.outcomes.get(pk)
        person, team = row["owner_user__username"], row["owner_team__slug"]
        rows.append(
            EventRow(
                pk=pk,
                url=f"{event_url}{pk}/",
                received_iso=received.isoformat(),
                received_title=f"{received:%Y-%m-%d %H:%M:%S %Z}",
                received_text=f"{received:%m-%d %H:%M}",
                age=short_duration(now - received),
                workflow=row["workflow__name"],
                version=row["version__number"],
                state=row["state"],
                state_label=_STATE_LABELS.get(row["state"], row["state"]),
                owner=person or team or "",
                owner_kind="person" if person else "team" if team else "",
                outcome=outcome.status if outcome is not None else "",
                outcome_label=_OUTCOME_LABELS.get(outcome.status, "") if outcome else "",
                outcome_by_hand=outcome is not None and outcome.source == OutcomeSource.MANUAL,
                attempts=row["attempt_count"],
                replay_of=row["replay_of_id"],
                cases=[(case, f"{case_url}{case.pk}/") for case in page.cases.get(pk, [])],
                payload_head=row["payload_head"] or "",
            )
        )
    return rows
