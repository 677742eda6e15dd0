"""The daily outcome rollup: the same figures as the records give, kept up to date by a refresh."""

from __future__ import annotations

import io
import random
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db import connections
from django.utils import timezone

from console.outcomes.histogram import PRECISION, histogram_of, percentiles
from console.outcomes.metrics import EVENT_COLUMNS, Figures, OutcomeFigures, live_outcome_figures
from console.outcomes.rollup import SETTLE, outcome_figures, outcome_rollup_refresh
from console.outcomes.scope import Scope, midnight
from console.tasks import outcomes_roll_up
from exceptions.models import ExceptionCase
from exceptions.services import case_acknowledge
from tests import factories
from workflows.models import Event, Outcome, OutcomeDay, OutcomeRollup, Team, Workflow

pytestmark = pytest.mark.django_db

COUNTED = [name for name in EVENT_COLUMNS if name != "cycles"] + [
    "touches", "cases", "acknowledged", "resolved", "by_reason",
]  # fmt: skip


def exact_percentile(values: list[float], fraction: float) -> float:
    """percentile_cont, as PostgreSQL computes it."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = int(position), min(int(position) + 1, len(ordered) - 1)
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


def assert_same_figures(rolled: OutcomeFigures, live: OutcomeFigures) -> None:
    assert rolled.buckets == live.buckets
    assert rolled.workflows == live.workflows
    assert set(rolled.cells) == set(live.cells)
    for key, exact in live.cells.items():
        read: Figures = rolled.cells[key]
        for name in COUNTED:
            assert getattr(read, name) == getattr(exact, name), (key, name)
        assert read.ack_seconds == pytest.approx(exact.ack_seconds), key
        assert read.resolve_seconds == pytest.approx(exact.resolve_seconds), key
        for name in ("cycle_p50", "cycle_p90", "cycle_p99"):
            want, got = getattr(exact, name), getattr(read, name)
            if want is None:
                assert got is None, (key, name)
            else:
                assert abs(got - want) <= PRECISION * (1 + want) + 1e-9, (key, name, got, want)


@pytest.fixture
def generated(make_user) -> Workflow:
    """A month of three workflows' events in every state, people's touches on a few cases."""
    operator = make_user("operator", username="olivia")
    lead = factories.workflow()
    for slug in ("support-triage", "refund-approval"):
        factories.version_create(factories.open_definition(slug, "revenue-ops"))
    call_command("generate_events", count=3000, span_days=30, stdout=io.StringIO())
    # Spread owner teams, so the team filter has something to tell apart.
    other = factories.team("inbound-sdr")
    ids = list(Event.objects.order_by("id").values_list("id", flat=True))
    Event.objects.filter(id__in=ids[::5]).update(owner_team=other)
    for case in ExceptionCase.objects.filter(state="open").order_by("id")[:5]:
        case_acknowledge(case=case, actor=operator)
    return lead


def scopes(lead: Workflow) -> list[Scope]:
    today = timezone.localdate()
    start, end = midnight(today - timedelta(days=34)), midnight(today + timedelta(days=1))
    team = Team.objects.get(slug="inbound-sdr")
    return [
        Scope(start=start, end=end, unit="day"),
        Scope(start=start, end=end, unit="week"),
        Scope(start=start, end=end, unit="day", workflow=lead),
        Scope(start=start, end=end, unit="week", team=team),
        Scope(start=start, end=end, unit="day", version=1),
        Scope(start=midnight(today - timedelta(days=6)), end=end, unit="day"),
    ]


def test_the_rollup_gives_the_records_figures_on_a_generated_history(generated: Workflow) -> None:
    result = outcome_rollup_refresh()
    assert result is not None and result.days >= 30 and result.rows > 0
    assert OutcomeDay.objects.exists()
    for scope in scopes(generated):
        assert_same_figures(outcome_figures(scope), live_outcome_figures(scope))


def test_without_a_refresh_every_day_is_read_from_the_records(generated: Workflow) -> None:
    assert not OutcomeDay.objects.exists()
    scope = scopes(generated)[0]
    assert_same_figures(outcome_figures(scope), live_outcome_figures(scope))


def test_a_past_day_that_changes_is_rolled_up_again_at_the_next_refresh(
    generated: Workflow, operator
) -> None:
    outcome_rollup_refresh()
    scope = scopes(generated)[0]
    case = (
        ExceptionCase.objects.filter(
            state="open", opened_at__lt=midnight(timezone.localdate() - timedelta(days=3))
        )
        .select_related("event")
        .order_by("opened_at")
        .first()
    )
    with time_machine.travel(timezone.now() + timedelta(minutes=10)):
        # Nothing changed since the last refresh but what came just before it (its slack).
        outcome_rollup_refresh()
        before = outcome_figures(scope)
        case_acknowledge(case=case, actor=operator)
        # Until the next refresh the past day reads as it was rolled up.
        assert outcome_figures(scope).at(None, None).acknowledged == (
            before.at(None, None).acknowledged
        )
        result = outcome_rollup_refresh()
    assert result is not None
    # Only the days the change touched (the case's opening, its event's receipt) and today's.
    touched = {timezone.localdate(case.opened_at), timezone.localdate(case.event.received_at)}
    assert result.days == len(touched | {timezone.localdate()})
    after = outcome_figures(scope)
    assert after.at(None, None).acknowledged == before.at(None, None).acknowledged + 1
    assert after.at(None, None).touches == before.at(None, None).touches + 1
    assert_same_figures(after, live_outcome_figures(scope))


def test_events_received_since_the_refresh_are_counted_from_the_records(history_today) -> None:
    outcome_rollup_refresh(now=timezone.now() + SETTLE)
    today = timezone.localdate()
    scope = Scope(start=midnight(today), end=midnight(today + timedelta(days=1)), unit="day")
    assert OutcomeDay.objects.get(day=today).achieved == 1
    assert outcome_figures(scope).at(None, None).achieved == 1
    event = factories.event_create(history_today.current_version, {"n": 2}, state="succeeded")
    Outcome.objects.create(event=event, status="achieved", source="delivery")
    assert outcome_figures(scope).at(None, None).achieved == 2
    assert OutcomeDay.objects.get(day=today).achieved == 1


@pytest.fixture
def history_today() -> Workflow:
    flow = factories.workflow()
    event = factories.event_create(flow.current_version, {"n": 1}, state="succeeded")
    Outcome.objects.create(event=event, status="achieved", source="delivery")
    return flow


def test_a_day_is_rolled_up_as_it_goes_and_completed_after_midnight(
    history_today: Workflow,
) -> None:
    today = timezone.localdate()
    outcome_rollup_refresh(now=timezone.now() + SETTLE)
    scope = Scope(start=midnight(today), end=midnight(today + timedelta(days=2)), unit="day")
    late = midnight(today + timedelta(days=1)) - timedelta(minutes=1)
    with time_machine.travel(late, tick=False):
        # Received after the refresh: counted from the records until the next one.
        event = factories.event_create(history_today.current_version, {"n": 2}, state="failed")
    with time_machine.travel(late + timedelta(hours=1), tick=False):
        assert outcome_figures(scope).at(None, today).failed == 1
        assert OutcomeDay.objects.get(day=today).failed == 0
        outcomes_roll_up()
        assert OutcomeRollup.objects.get().until == late + timedelta(hours=1) - SETTLE
        assert OutcomeDay.objects.get(day=today).failed == 1
        assert outcome_figures(scope).at(None, today).failed == 1
        assert outcome_figures(scope).at(None, today).events == 2
    assert event.pk


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_second_refresh_at_the_same_time_leaves_the_rollup_to_the_first(
    history_today: Workflow,
) -> None:
    outcome_rollup_refresh()
    # Another connection holds the rollup's row, as a refresh in progress does.
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT 1 FROM workflows_outcomerollup WHERE id = 1 FOR UPDATE")
            assert outcome_rollup_refresh() is None
            cursor.execute("ROLLBACK")
    finally:
        other.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_percentiles_from_the_histogram_are_within_its_stated_precision(seed: int) -> None:
    rng = random.Random(seed)
    values = [rng.lognormvariate(5, 2) for _ in range(rng.randint(1, 3000))]
    read = percentiles(histogram_of(values), (0.5, 0.9, 0.99))
    for fraction, got in zip((0.5, 0.9, 0.99), read, strict=True):
        want = exact_percentile(values, fraction)
        assert got is not None
        assert abs(got - want) <= PRECISION * (1 + want) + 1e-9


def test_percentiles_are_exact_when_equal_values_share_their_buckets() -> None:
    values = [60.0, 60.0, 120.0, 180.0, 3600.0]
    read = percentiles(histogram_of(values), (0.5, 0.9, 0.99))
    assert read == [pytest.approx(exact_percentile(values, f)) for f in (0.5, 0.9, 0.99)]
    assert percentiles({}, (0.5,)) == [None]
