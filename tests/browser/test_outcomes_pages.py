"""The outcomes page, /events/, a workflow's version diff and a readiness report in a real browser,
on a month of generated history. With HANDOFF_SCREENSHOTS set, each page is saved under docs/."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from playwright.sync_api import Page, expect

from console.outcomes.rollup import outcome_rollup_refresh
from tests.factories import UserFactory
from tests.support.browser import settled, sign_in
from workflows.models import Event, Workflow
from workflows.services.definitions import workflows_load

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

DOCS = Path(__file__).resolve().parents[2] / "docs"
DEMO = Path(settings.BASE_DIR) / "console" / "demo" / "workflows"


def keep(page: Page, name: str, *, full_page: bool = True) -> None:
    if os.environ.get("HANDOFF_SCREENSHOTS"):
        page.screenshot(path=str(DOCS / name), full_page=full_page)


@pytest.fixture
def month(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The demo organisation and its three workflows, a month of their events, rolled up."""
    monkeypatch.setattr("console.tasks.demo_triage.apply_async", lambda **kwargs: None)
    monkeypatch.setattr(settings, "DATA_DIR", tmp_path)
    call_command("seed_demo", stdout=io.StringIO())
    call_command("generate_events", count=6000, span_days=35, stdout=io.StringIO())
    outcome_rollup_refresh()
    return UserFactory(username="maria", roles=["manager", "admin"])


def test_the_outcomes_page_draws_each_trend_with_its_numbers(live_server, page: Page, month):
    sign_in(page, live_server, month)
    page.goto(f"{live_server.url}/outcomes/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Outcomes")
    for chart in ("events", "outcome", "cycle", "errors", "reasons", "mtt", "touches"):
        expect(page.get_by_test_id(f"chart-{chart}")).to_be_visible()
    # The numbers beside the charts, as the figures give them.
    expect(page.locator("body")).to_contain_text("Outcome rate")
    page.get_by_label("Workflow", exact=True).select_option("refund-approval")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"workflow=refund-approval"))
    expect(page.get_by_test_id("chart-outcome")).to_be_visible()
    keep(page, "outcomes.png")


def test_events_are_filtered_and_one_opens_on_its_page(live_server, page: Page, month):
    sign_in(page, live_server, month)
    page.goto(f"{live_server.url}/events/")
    page.get_by_label("Workflow").select_option("refund-approval")
    page.get_by_label("Failed", exact=True).check()
    page.get_by_role("button", name="Filter").click()
    failed = Event.objects.filter(workflow__slug="refund-approval", state="failed").count()
    expect(page.get_by_test_id("count")).to_contain_text(f"{failed:,}")
    keep(page, "events.png", full_page=False)
    first = page.locator("table tbody tr td.num a").first
    event_id = first.inner_text().strip().lstrip("#")
    first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"event {event_id}")
    expect(page.get_by_test_id("event-state")).to_have_text("Failed")


def test_a_workflow_page_shows_the_diff_between_two_versions(live_server, page: Page, month):
    text = (DEMO / "lead-routing.yaml").read_text()
    workflows_load(sources=[("lead.yaml", text.replace(">= 500", ">= 1000"))], actor=None)
    sign_in(page, live_server, month)
    page.goto(f"{live_server.url}/workflows/lead-routing/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("v2")
    diff = page.get_by_test_id("diff")
    expect(diff.locator(".dl-del")).to_contain_text(">= 500")
    expect(diff.locator(".dl-add")).to_contain_text(">= 1000")
    # Choosing other versions swaps the diff in place.
    page.get_by_label("Compare").select_option("2")
    expect(diff).to_contain_text("read the same")
    settled(diff)
    page.get_by_label("Compare").select_option("1")
    expect(diff.locator(".dl-add")).to_contain_text(">= 1000")
    keep(page, "workflow-diff.png")


def test_a_readiness_report_gives_each_control_with_its_evidence(live_server, page: Page, month):
    sign_in(page, live_server, month)
    flow = Workflow.objects.get(slug="refund-approval")
    page.goto(f"{live_server.url}/workflows/{flow.slug}/readiness/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Readiness audit: Refund approval")
    report = page.locator("main")
    for title in (
        "Owner and fallback chain active",
        "SLA set and met",
        "Error and cycle-time trend",
    ):
        expect(report).to_contain_text(title)
    keep(page, "readiness.png")
