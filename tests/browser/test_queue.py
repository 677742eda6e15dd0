"""The exception queue in a real browser: htmx swaps, the case page, keyboard triage, a bulk
replay run by a real Celery worker, and what an auditor sees."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import Page, expect

from exceptions.approvals.models import ApprovalRequest
from exceptions.models import BulkJob, CaseState, ExceptionCase
from exceptions.selectors import DEFAULT_VIEWS
from tests import factories
from tests.factories import UserFactory
from tests.support.approvals import approve
from tests.support.browser import sign_in
from tests.support.workers import CeleryWorker, purge_queue
from workflows.models import Attempt, Event, Outcome

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

ROOT = Path(__file__).resolve().parents[2]
MY_OPEN = dict(DEFAULT_VIEWS)["My open"]


def rows(page: Page):
    return page.locator("#results tr[data-row]")


def test_filter_and_page_through_the_queue_with_htmx_swaps(live_server, page: Page) -> None:
    operator = UserFactory(username="olivia", roles=["operator"])
    for i in range(30):
        factories.case(
            reason="delivery_failed" if i % 3 == 0 else "validation_failed",
            detail="Every retry failed: ReadTimeout" if i % 3 == 0 else "Missing field email",
            key="ReadTimeout" if i % 3 == 0 else "email",
            step="deliver" if i % 3 == 0 else "validate",
        )
    sign_in(page, live_server, operator)
    page.goto(f"{live_server.url}/queue/?per=25")
    expect(page.get_by_test_id("count")).to_contain_text("30 cases")
    expect(rows(page)).to_have_count(25)
    page.evaluate("window.__sameDocument = true")

    page.get_by_label("Reason", exact=True).select_option("delivery_failed")
    expect(page.get_by_test_id("count")).to_contain_text("10 cases")
    expect(rows(page)).to_have_count(10)
    expect(page).to_have_url(f"{live_server.url}/queue/?" + page.url.split("?", 1)[1])
    assert "reason=delivery_failed" in page.url

    page.get_by_label("Reason", exact=True).select_option("")
    expect(page.get_by_test_id("count")).to_contain_text("30 cases")
    first_page = rows(page).evaluate_all("rs => rs.map(r => r.dataset.case)")
    page.get_by_role("link", name="Next →").click()
    expect(rows(page)).to_have_count(5)
    second_page = rows(page).evaluate_all("rs => rs.map(r => r.dataset.case)")
    assert not set(first_page) & set(second_page)
    assert "after=" in page.url
    page.get_by_role("link", name="← Previous").click()
    expect(rows(page)).to_have_count(25)
    assert rows(page).evaluate_all("rs => rs.map(r => r.dataset.case)") == first_page
    assert page.evaluate("window.__sameDocument") is True  # swapped, never reloaded

    page.get_by_label("Search detail and payload").fill("ReadTimeout")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("count")).to_contain_text("10 cases")
    assert page.evaluate("window.__sameDocument") is True


def test_open_a_case_and_see_payload_decisions_attempts_and_outcome(
    live_server, page: Page
) -> None:
    operator = UserFactory(username="olivia", roles=["operator"])
    case = factories.case(
        reason="delivery_rejected",
        detail="Destination refused the delivery: HTTP 422",
        key="HTTP 422",
        step="deliver",
        payload={"email": "dana@example.com", "company": {"name": "Example", "size": "820"}},
    )
    event = case.event
    factories.decision_add(
        event,
        step="route",
        rule="default",
        result={
            "route": "default",
            "matched_owner": "revenue-ops",
            "owner": "revenue-ops",
            "fallback": 0,
        },
        explanation="Route default matched first: owned by revenue-ops.",
    )
    now = timezone.now()
    Attempt.objects.create(
        event=event, number=1, trigger="auto", started_at=now, finished_at=now,
        status="rejected", http_status=422, error_class="HTTPStatus422",
        error_message="unknown field company.size", duration_ms=212,
    )  # fmt: skip
    Outcome.objects.create(
        event=event, status="failed", source="callback", evidence={"crm": "rejected"}
    )
    sign_in(page, live_server, operator)
    page.goto(f"{live_server.url}/queue/")
    page.get_by_role("link", name=f"#{case.pk}").click()
    expect(page).to_have_url(f"{live_server.url}/exceptions/{case.pk}/")
    payload = page.get_by_test_id("payload")
    expect(payload).to_contain_text('"email": "dana@example.com"')
    expect(payload.locator(".jl-bad")).to_contain_text('"size": "820"')  # the failing field
    expect(page.get_by_test_id("problems")).to_contain_text("company.size")
    expect(page.get_by_test_id("decisions")).to_contain_text("Route default matched first")
    attempts = page.get_by_test_id("attempts")
    expect(attempts).to_contain_text("HTTPStatus422")
    expect(attempts).to_contain_text("422")
    expect(attempts).to_contain_text("212 ms")
    expect(page.get_by_test_id("outcomes")).to_contain_text("Failed")
    expect(page.get_by_test_id("case-owner")).to_contain_text("revenue-ops")
    expect(page.get_by_test_id("preview")).to_contain_text("Version 1")


def test_resolve_with_a_reason_code_and_it_leaves_my_open(live_server, page: Page) -> None:
    operator = UserFactory(username="olivia", roles=["operator"])
    mine = factories.case(owner=operator)
    kept = factories.case(owner=operator)
    sign_in(page, live_server, operator)
    page.goto(f"{live_server.url}/queue/?{MY_OPEN}")
    expect(rows(page)).to_have_count(2)
    page.get_by_role("link", name=f"#{mine.pk}").click()

    page.get_by_role("button", name="Resolve").click()  # no code chosen: refused, nothing changes
    assert ExceptionCase.objects.get(pk=mine.pk).state == CaseState.OPEN
    page.get_by_label("Resolution").select_option("fixed_data")
    page.locator("#resolve-id_note").fill("Customer re-sent the form")
    page.get_by_role("button", name="Resolve").click()
    expect(page.get_by_test_id("flash")).to_have_text(f"Case {mine.pk} resolved.")
    expect(page.get_by_test_id("case-state")).to_have_text("Resolved")
    expect(page.get_by_test_id("audit")).to_contain_text("Customer re-sent the form")

    page.get_by_role("link", name="Queue", exact=True).first.click()
    page.get_by_role("link", name="My open").click()
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_have_attribute("data-case", str(kept.pk))
    resolved = ExceptionCase.objects.get(pk=mine.pk)
    assert (resolved.state, resolved.resolution_code) == (CaseState.RESOLVED, "fixed_data")


def test_keyboard_only_triage_of_three_cases(live_server, page: Page) -> None:
    operator = UserFactory(username="olivia", roles=["operator"])
    cases = [factories.case() for _ in range(3)]
    now = timezone.now()
    for i, case in enumerate(cases):  # oldest first in "age" order: cases[0], [1], [2]
        ExceptionCase.objects.filter(pk=case.pk).update(opened_at=now - timedelta(minutes=10 - i))
    sign_in(page, live_server, operator)
    page.goto(f"{live_server.url}/queue/?sort=age")
    expect(rows(page)).to_have_count(3)
    keys = page.keyboard

    keys.press("?")
    expect(page.locator("#help")).to_be_visible()
    keys.press("Escape")
    expect(page.locator("#help")).to_be_hidden()

    keys.press("j")  # first case: assign to me, then acknowledge
    expect(rows(page).nth(0)).to_have_class(re.compile(r"\bis-focused\b"))
    keys.press("a")
    expect(rows(page).nth(0).locator(".person")).to_have_text("olivia")
    keys.press("e")
    expect(rows(page).nth(0).locator(".state")).to_have_text("Acknowledged")

    keys.press("j")  # second case: select it and acknowledge
    keys.press("x")
    expect(rows(page).nth(1).locator("input[type=checkbox]")).to_be_checked()
    expect(page.locator("[data-selected-count]")).to_have_text("1 selected")
    keys.press("e")
    expect(rows(page).nth(1).locator(".state")).to_have_text("Acknowledged")

    keys.press("j")  # third case: resolve with a code, all from the keyboard
    keys.press("r")
    dialog = page.locator("#resolve-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("select")).to_be_focused()
    keys.type("Not")  # jumps to "Not a problem"
    keys.press("Tab")
    keys.type("Known noise")
    keys.press("Enter")
    expect(dialog).to_be_hidden()
    expect(page.get_by_test_id("flash")).to_have_text(f"Case {cases[2].pk} resolved.")
    expect(rows(page)).to_have_count(2)  # it left the open queue

    keys.press("k")
    keys.press("/")
    expect(page.get_by_label("Search detail and payload")).to_be_focused()

    states = {c.pk: c for c in ExceptionCase.objects.filter(pk__in=[c.pk for c in cases])}
    assert states[cases[0].pk].state == CaseState.ACKNOWLEDGED
    assert states[cases[0].pk].owner_user == operator
    assert states[cases[1].pk].state == CaseState.ACKNOWLEDGED
    assert (states[cases[2].pk].state, states[cases[2].pk].resolution_code) == (
        CaseState.RESOLVED,
        "not_a_problem",
    )
    assert states[cases[2].pk].resolution_note == "Known noise"


def test_a_key_on_a_group_row_acts_on_every_case_of_the_group(live_server, page: Page) -> None:
    operator = UserFactory(username="olivia", roles=["operator"])
    group = [factories.case(key="email") for _ in range(3)]
    other = factories.case(key="company.size")
    sign_in(page, live_server, operator)
    page.goto(f"{live_server.url}/queue/?group=1&sort=age")
    expect(rows(page)).to_have_count(2)
    focused = 0 if rows(page).nth(0).get_attribute("data-case") == str(group[0].pk) else 1
    for _ in range(focused + 1):
        page.keyboard.press("j")
    page.keyboard.press("a")  # the registry's key for "claim": through the bulk action here
    expect(page.get_by_test_id("flash")).to_have_text("Bulk claim: 3 of 3 done.")
    owners = {c.pk: c.owner_user for c in ExceptionCase.objects.all()}
    assert all(owners[c.pk] == operator for c in group) and owners[other.pk] is None


@pytest.fixture
def celery_worker(tmp_path: Path) -> Iterator[CeleryWorker]:
    """A real worker on the default queue, against the test database."""
    worker = CeleryWorker(tmp_path / "worker.log", queues="bulk", DJANGO_ALLOW_ASYNC_UNSAFE="")
    yield worker.start()
    # Each replay also woke the engine's workers (queue "events"); none run here, so the
    # wake-ups are dropped rather than left for whichever worker starts next on this broker.
    purge_queue("events")
    worker.stop()


def test_a_bulk_replay_of_1000_cases_runs_to_completion_once_approved(
    live_server, page: Page, celery_worker
) -> None:
    operator = UserFactory(username="olivia", roles=["operator"])
    manager = UserFactory(username="marcus", roles=["manager"])
    flow = factories.workflow()
    call_command("generate_cases", count=1000, no_history=True, stdout=io.StringIO())
    # Every generated case open, on an event waiting for it.
    ExceptionCase.objects.update(
        state=CaseState.OPEN, resolved_at=None, resolution_code="", snoozed_until=None
    )
    Event.objects.update(state="needs_attention")
    assert ExceptionCase.objects.filter(workflow=flow).count() == 1000

    sign_in(page, live_server, operator)
    page.goto(f"{live_server.url}/queue/?workflow=lead-routing")
    expect(page.get_by_test_id("count")).to_contain_text("1000 cases")
    page.get_by_label("Everything matching the filter").check()
    page.get_by_label("Action").select_option("replay")
    page.get_by_label("Replay under").select_option("original")
    page.locator("#bulk-id_note").fill("destination fixed, replaying the backlog")
    page.get_by_role("button", name="Apply").click()

    # A thousand replays wait for a second person; once approved they run as the bulk job.
    expect(page.get_by_test_id("flash")).to_contain_text("waits for a manager")
    approval = ApprovalRequest.objects.get()
    assert (approval.kind, len(approval.params["cases"])) == ("bulk_replay", 1000)
    assert not BulkJob.objects.exists()
    approve(approval, by=manager, comment="backlog replay agreed")
    job = BulkJob.objects.get()
    page.goto(f"{live_server.url}/queue/?workflow=lead-routing&job={job.pk}")

    job_bar = page.get_by_test_id("bulk-job")
    expect(job_bar).to_be_visible()
    assert job.total == 1000 and job.approval_id == approval.pk
    # Progress moves while the page polls, and survives a reload.
    expect(page.get_by_test_id("bulk-done")).not_to_have_text("0", timeout=20_000)
    page.reload()
    expect(page.get_by_test_id("bulk-job")).to_be_visible()
    expect(job_bar).to_contain_text("Done", timeout=60_000)
    expect(page.get_by_test_id("bulk-done")).to_have_text("1000")
    expect(job_bar.locator("progress")).to_have_attribute("value", "1000")
    job.refresh_from_db()
    assert (job.state, job.succeeded, job.failed, job.skipped) == ("done", 1000, 0, 0)
    assert ExceptionCase.objects.filter(resolution_code="replayed").count() == 1000
    assert Event.objects.filter(replay_of__isnull=False).count() == 1000
    expect(page.get_by_test_id("count")).to_contain_text("0 cases")  # the queue refreshed
    assert celery_worker.alive


def test_an_auditor_sees_no_action_buttons(live_server, page: Page) -> None:
    auditor = UserFactory(username="avery", roles=["auditor"])
    case = factories.case()
    sign_in(page, live_server, auditor)
    page.goto(f"{live_server.url}/queue/")
    expect(rows(page)).to_have_count(1)
    expect(page.locator("#results input[type=checkbox]")).to_have_count(0)
    expect(page.locator("#bulk")).to_have_count(0)
    page.keyboard.press("j")
    page.keyboard.press("e")  # triage keys do nothing for an auditor
    page.get_by_role("link", name=f"#{case.pk}").click()
    expect(page.get_by_role("heading", name="Read only")).to_be_visible()
    expect(page.locator("main button")).to_have_count(0)
    expect(page.locator("main form[method=post]")).to_have_count(0)
    expect(page.get_by_test_id("payload")).to_be_visible()
    assert ExceptionCase.objects.get(pk=case.pk).version == case.version
