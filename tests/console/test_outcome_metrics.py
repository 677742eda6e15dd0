"""Each outcome figure computed on a hand-built history whose answer is known.

One day of lead routing, twelve events received a minute apart from 09:00:
- e1..e6 achieved by delivery 1..6 minutes after receipt; e3's first attempt failed.
- e7: a delivery_failed case opened 1 minute in, acknowledged 2 minutes later, handled by hand:
  achieved, recorded 7 minutes after receipt.
- e8: a review case opened 1 minute in, nobody acknowledged it; handled by hand 8 minutes in.
- e9: the destination reported the outcome failed 9 minutes in.
- e10: a validation case opened at receipt, acknowledged 4 minutes later, still open.
- e11 still on its way; e12 dismissed.
Plus one event of another workflow, achieved an hour after receipt, and a system entry on the
trail (not a person's touch).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.db import transaction

from audit.services import audit_record
from console.outcomes.metrics import OutcomeFigures, live_outcome_figures
from console.outcomes.rollup import outcome_figures, outcome_rollup_refresh
from console.outcomes.scope import Scope
from exceptions.services import case_acknowledge, case_open_or_join, case_record_outcome
from tests import factories
from workflows.models import Attempt, Event, Outcome, Workflow

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 3, 2, tzinfo=UTC)
NINE = DAY + timedelta(hours=9)
MINUTE = timedelta(minutes=1)


def received(flow: Workflow, n: int, state: str) -> Event:
    with time_machine.travel(NINE + n * MINUTE, tick=False):
        return factories.event_create(
            flow.current_version,
            {"email": f"e{n}@example.com", "company": {"size": n}},
            state=state,
        )


def at(moment: datetime):
    return time_machine.travel(moment, tick=False)


def outcome(event: Event, status: str, source: str, after: int) -> None:
    Outcome.objects.create(
        event=event, status=status, source=source, observed_at=event.received_at + after * MINUTE
    )


def opened(event: Event, reason: str, step: str, after: int):
    with at(event.received_at + after * MINUTE), transaction.atomic():
        case, _ = case_open_or_join(
            event=event, reason_code=reason, detail=reason, owner=None, step=step
        )
    return case


@pytest.fixture
def history(operator) -> Workflow:
    flow = factories.workflow()
    events = {n: received(flow, n, "succeeded") for n in range(1, 7)}
    for n in range(1, 7):
        outcome(events[n], "achieved", "delivery", n)
    Attempt.objects.create(
        event=events[3],
        number=1,
        trigger="auto",
        started_at=events[3].received_at,
        finished_at=events[3].received_at,
        status="failed",
        http_status=503,
        duration_ms=10,
    )
    with at(NINE), transaction.atomic():
        audit_record(actor=None, action="event.note", target=events[1])  # the system: no touch

    e7 = received(flow, 7, "needs_attention")
    c7 = opened(e7, "delivery_failed", "deliver", 1)
    with at(e7.received_at + 3 * MINUTE):
        c7 = case_acknowledge(case=c7, actor=operator)
    with at(e7.received_at + 7 * MINUTE):
        case_record_outcome(case=c7, actor=operator, status="achieved", evidence={"crm": "L-7"})

    e8 = received(flow, 8, "needs_attention")
    c8 = opened(e8, "review_required", "review", 1)
    with at(e8.received_at + 8 * MINUTE):
        case_record_outcome(case=c8, actor=operator, status="achieved", evidence={"ok": True})

    e9 = received(flow, 9, "failed")
    outcome(e9, "failed", "callback", 9)

    e10 = received(flow, 10, "needs_attention")
    c10 = opened(e10, "validation_failed", "validate", 0)
    with at(e10.received_at + 4 * MINUTE):
        case_acknowledge(case=c10, actor=operator)

    received(flow, 11, "received")
    received(flow, 12, "cancelled")

    other = factories.version_create(factories.open_definition("other-flow", "revenue-ops"))
    with at(NINE):
        elsewhere = factories.event_create(other, {"ticket": "T-1"}, state="succeeded")
    outcome(elsewhere, "achieved", "callback", 60)
    return flow


Figures = Callable[[Scope], OutcomeFigures]


@pytest.fixture(params=["records", "rollup"])
def figures_of(request) -> Figures:
    """The figures computed from the records, or read from the daily rollup after a refresh:
    every answer below must be the same either way."""
    if request.param == "records":
        return live_outcome_figures

    def rolled_up(scope: Scope) -> OutcomeFigures:
        outcome_rollup_refresh()
        return outcome_figures(scope)

    return rolled_up


def day_scope(**filters) -> Scope:
    return Scope(start=DAY, end=DAY + timedelta(days=1), unit="day", **filters)


def test_outcome_rate_counts_manual_outcomes_apart(history: Workflow, figures_of: Figures) -> None:
    lead = figures_of(day_scope()).at(history.pk, None)
    assert (lead.events, lead.events_in) == (12, 12)
    assert (lead.achieved, lead.manual, lead.failed, lead.missing) == (6, 2, 1, 1)
    assert (lead.pending, lead.cancelled, lead.manual_achieved) == (1, 1, 2)
    assert lead.rated == 10
    assert lead.outcome_rate == 60.0
    assert lead.manual_rate == 20.0
    assert lead.failed_rate == 10.0
    assert lead.missing_rate == 10.0


def test_cycle_time_percentiles_from_receipt_to_outcome(
    history: Workflow, figures_of: Figures
) -> None:
    lead = figures_of(day_scope()).at(history.pk, None)
    # Nine outcomes 1..9 minutes after receipt (the manual ones included).
    assert lead.with_outcome == 9
    assert lead.cycle_p50 == pytest.approx(300)
    assert lead.cycle_p90 == pytest.approx(8.2 * 60)
    assert lead.cycle_p99 == pytest.approx(8.92 * 60)


def test_mtta_and_mttr_over_the_cases_opened(history: Workflow, figures_of: Figures) -> None:
    lead = figures_of(day_scope()).at(history.pk, None)
    assert lead.cases == 3
    assert lead.by_reason == {"delivery_failed": 1, "review_required": 1, "validation_failed": 1}
    # Acknowledged after 2 and 4 minutes; the review case's first human act was closing it (7).
    assert lead.acknowledged == 3
    assert lead.mtta == pytest.approx((2 + 7 + 4) * 60 / 3)
    # Closed after 6 and 7 minutes; the validation case is still open.
    assert lead.resolved == 2
    assert lead.mttr == pytest.approx(6.5 * 60)


def test_manual_touches_are_the_peoples_entries_on_the_trail(
    history: Workflow, figures_of: Figures
) -> None:
    lead = figures_of(day_scope()).at(history.pk, None)
    # e7: acknowledge, the case's record_outcome and the event's; e8: both; e10: acknowledge.
    assert lead.touches == 6
    assert lead.touches_per_event == 0.5


def test_error_rate_and_the_automatic_share(history: Workflow, figures_of: Figures) -> None:
    lead = figures_of(day_scope()).at(history.pk, None)
    assert lead.errored == 2  # e3's failed attempt, e7's delivery_failed case
    assert lead.error_rate == pytest.approx(16.7)
    assert lead.closed == 9  # e1..e9
    assert lead.automatic == 7  # e1..e6 and e9: no case, no manual outcome
    assert lead.automatic_share == pytest.approx(77.8)
    assert lead.human_share == pytest.approx(22.2)


def test_totals_buckets_and_filters_add_up(history: Workflow, figures_of: Figures) -> None:
    figures = figures_of(day_scope())
    assert figures.buckets == [date(2026, 3, 2)]
    assert figures.at(None, None).events == 13
    assert figures.at(None, date(2026, 3, 2)).events == 13
    assert figures.at(history.pk, date(2026, 3, 2)).achieved == 6
    assert [slug for _, slug, _ in figures.workflows] == ["lead-routing", "other-flow"]
    # Percentiles do not add up: the total's come from all ten outcomes.
    assert figures.at(None, None).with_outcome == 10
    only_lead = figures_of(day_scope(workflow=history))
    assert only_lead.at(None, None).events == 12
    nothing_the_day_before = figures_of(Scope(start=DAY - timedelta(days=1), end=DAY, unit="day"))
    assert nothing_the_day_before.at(None, None).events == 0


def test_team_and_version_filters(history: Workflow, figures_of: Figures) -> None:
    team = factories.team("inbound-sdr")
    first = Event.objects.filter(workflow=history).order_by("received_at").first()
    Event.objects.filter(pk=first.pk).update(owner_team=team)
    owned = figures_of(day_scope(team=team)).at(None, None)
    assert (owned.events, owned.achieved, owned.cases) == (1, 1, 0)
    assert figures_of(day_scope(version=1)).at(history.pk, None).cases == 3
    assert figures_of(day_scope(version=2)).at(None, None).events == 0
