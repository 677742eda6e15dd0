"""/outcomes/ through the test client: the charts with their numbers, filters, the CSV, and the
reasons that recur week after week."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import transaction

from audit.models import AuditEntry
from console.outcomes.charts import (
    duration_scale,
    line_chart,
    log_duration_scale,
    nice_ceiling,
    stacked_bars,
)
from console.outcomes.presenters import duration
from exceptions.services import case_open_or_join
from tests import factories
from workflows.models import Outcome

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def signed_in(client, make_user):
    client.force_login(make_user("manager", username="mia"))
    return client


def achieved_event(flow, when: datetime, minutes: int = 5):
    with time_machine.travel(when, tick=False):
        event = factories.event_create(flow.current_version, factories.GOOD_LEAD, state="succeeded")
    Outcome.objects.create(
        event=event,
        status="achieved",
        source="delivery",
        observed_at=when + timedelta(minutes=minutes),
    )
    return event


def case_on(flow, when: datetime, reason: str = "delivery_failed"):
    with time_machine.travel(when, tick=False):
        event = factories.event_create(
            flow.current_version, factories.GOOD_LEAD, state="needs_attention"
        )
        with transaction.atomic():
            case, _ = case_open_or_join(
                event=event, reason_code=reason, detail=reason, owner=None, step="deliver"
            )
    return case


def test_the_page_draws_each_trend_chart_with_its_numbers(signed_in) -> None:
    flow = factories.workflow()
    for day in range(3):
        achieved_event(flow, NOW - timedelta(days=day, hours=1))
    case_on(flow, NOW - timedelta(hours=2))
    with time_machine.travel(NOW, tick=False):
        response = signed_in.get("/outcomes/?period=7")
    assert response.status_code == 200
    body = response.content.decode()
    for chart in ("events", "outcome", "cycle", "errors", "reasons", "mtt", "touches", "automatic"):
        assert f'data-testid="chart-{chart}"' in body
        assert f'data-testid="numbers-{chart}"' in body
    assert "<svg" in body and "<rect" in body and "<polyline" in body
    summary = re.search(r'<tr data-workflow="lead-routing">(.*?)</tr>', body, re.S).group(1)
    assert "<strong>75%</strong>" in summary  # 3 of 4 outcomes due were achieved
    assert "5m / 5m / 5m" in summary
    assert "style=" not in body  # the CSP allows no inline styles


def test_filters_narrow_the_figures_and_a_bad_period_falls_back(signed_in) -> None:
    flow = factories.workflow()
    other = factories.version_create(factories.open_definition("other-flow", "revenue-ops"))
    achieved_event(flow, NOW - timedelta(hours=3))
    achieved_event(other.workflow, NOW - timedelta(hours=3))
    with time_machine.travel(NOW, tick=False):
        both = signed_in.get("/outcomes/?period=7").content.decode()
        one = signed_in.get("/outcomes/?period=7&workflow=other-flow").content.decode()
        backwards = signed_in.get("/outcomes/?period=custom&start=2026-03-10&end=2026-03-01")
    assert 'data-workflow="lead-routing"' in both and 'data-workflow="other-flow"' in both
    assert 'data-workflow="lead-routing"' not in one and "Trends: Other flow" in one
    assert backwards.status_code == 200
    assert "The period ends before it starts" in backwards.content.decode()


def test_the_csv_holds_the_pages_figures_and_the_export_is_audited(signed_in) -> None:
    flow = factories.workflow()
    achieved_event(flow, datetime(2026, 3, 2, 9, tzinfo=UTC), minutes=10)
    response = signed_in.get(
        "/outcomes/export.csv?period=custom&start=2026-03-02&end=2026-03-03&bucket=day"
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    by_key = {(r["workflow"], r["bucket"]): r for r in rows}
    day = by_key[("lead-routing", "2026-03-02")]
    assert day["events"] == "1" and day["achieved"] == "1" and day["outcome_rate_pct"] == "100.0"
    assert day["cycle_p50_s"] == "600.0"
    assert by_key[("lead-routing", "2026-03-03")]["events"] == "0"
    assert by_key[("(all)", "(period)")]["events"] == "1"
    entry = AuditEntry.objects.get(action="outcomes.export")
    assert entry.after["start"] == "2026-03-02" and entry.actor_label == "mia"


def test_a_reason_with_cases_three_weeks_running_is_flagged_with_its_queue_view(
    signed_in,
) -> None:
    flow = factories.workflow()
    for weeks_ago in range(3):
        case_on(flow, NOW - timedelta(weeks=weeks_ago, hours=1))
    case_on(flow, NOW - timedelta(weeks=4), reason="no_owner")  # once, a month ago
    with time_machine.travel(NOW, tick=False):
        body = signed_in.get("/outcomes/?period=30").content.decode()
    recurring = re.search(r'<tr class="is-recurring" data-reason="lead-routing:delivery_failed">'
                          r"(.*?)</tr>", body, re.S)  # fmt: skip
    assert recurring is not None
    assert "3 wk" in recurring.group(1)
    assert "/queue/?workflow=lead-routing&amp;reason=delivery_failed" in recurring.group(1)
    assert 'class="" data-reason="lead-routing:no_owner"' in body


def test_every_role_reads_it(client, make_user) -> None:
    for role in ("operator", "manager", "admin", "auditor"):
        client.force_login(make_user(role))
        assert client.get("/outcomes/").status_code == 200


# --- the chart geometry -------------------------------------------------------------------------


def test_nice_ceilings_round_up_to_a_readable_axis() -> None:
    assert [nice_ceiling(v) for v in (0, 0.3, 7, 13, 101, 240, 251)] == [
        1, 0.5, 10, 20, 200, 250, 500,
    ]  # fmt: skip


def test_stacked_bars_stack_and_percent_bars_fill_the_plot() -> None:
    chart = stacked_bars(
        id="x", title="X", labels=["a", "b"], series=[("one", [1, 0]), ("two", [3, 2])],
        fmt=str, percent=True,
    )  # fmt: skip
    a_one, a_two, b_two = chart.bars
    assert a_one.y + a_one.height == pytest.approx(chart.baseline)
    assert a_two.y + a_two.height == pytest.approx(a_one.y)
    assert a_two.height == pytest.approx(3 * a_one.height, abs=0.2)
    assert b_two.y == pytest.approx(10) and b_two.title == "b · two: 2 (100.0%)"


def test_a_line_leaves_a_gap_where_a_bucket_has_no_value() -> None:
    chart = line_chart(
        id="x", title="X", labels=["a", "b", "c"], series=[("p50", [60, None, 120])], fmt=duration
    )
    (line,) = chart.lines
    assert [dot.title for dot in line.dots] == ["a · p50: 1m", "c · p50: 2m"]
    assert not chart.empty
    assert line_chart(id="y", title="Y", labels=["a"], series=[("p", [None])], fmt=str).empty


def test_duration_axes_step_in_readable_durations() -> None:
    assert duration_scale(50 * 60).ticks == (0, 900, 1800, 2700, 3600)  # 15-minute steps
    assert duration_scale(3 * 3600 + 1).ticks[-1] == 4 * 3600
    log = log_duration_scale(20, 5 * 3600)
    assert log.ticks == (10, 60, 600, 3600, 36000) and log.log
    assert log.fraction(10) == 0 and log.fraction(36000) == 1
    assert log.fraction(600) == pytest.approx(0.5, abs=0.1)
