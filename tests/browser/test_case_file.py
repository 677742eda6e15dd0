"""An auditor finds a refund on the trail, opens its case file from the event page and prints it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.factories import UserFactory
from tests.support.browser import sign_in
from tests.support.case_files import finance_teams, refund_story
from tests.support.sinks import Sink

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "case-file.png"
# A4 at the 96 dpi a browser lays pages out at: 210 mm wide.
A4_WIDTH = 794


def test_an_auditor_filters_the_trail_opens_a_case_file_and_prints_it(
    live_server, page: Page, sink: Sink
) -> None:
    manager = UserFactory(username="mia", first_name="Mia", last_name="Lopez", roles=["manager"])
    operator = UserFactory(username="olivia", roles=["operator"])
    auditor = UserFactory(username="avery", roles=["auditor"])
    finance_teams(manager)
    original, replay = refund_story(sink, manager, operator)

    sign_in(page, live_server, auditor)
    page.goto(f"{live_server.url}/audit/")
    page.get_by_label("Action").fill("event.replay")
    page.get_by_role("button", name="Filter").click()
    trail = page.get_by_test_id("trail")
    expect(trail.locator("tr[data-entry]")).to_have_count(1)
    expect(trail).to_contain_text("the customer gave a new one")
    trail.get_by_role("link", name=f"workflows.event #{original.pk}").click()

    expect(page).to_have_url(re.compile(rf"/events/{original.pk}/$"))
    page.get_by_test_id("case-file-links").get_by_role("link", name="Case file").click()

    expect(page).to_have_url(re.compile(rf"/events/{original.pk}/case-file/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Refund approval: event {original.pk}"
    )
    approvals = page.get_by_test_id("approval")
    expect(approvals).to_have_count(3)
    expect(approvals.first.get_by_test_id("approval-roles-then")).to_contain_text("manager")
    expect(page.get_by_test_id("timeline")).to_contain_text(f"event {replay.pk}")
    expect(page.get_by_test_id("outcomes")).to_contain_text("achieved")

    pdf = page.pdf(format="A4", print_background=True)
    assert pdf.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page\b", pdf))
    # A cover and the story, then one section per page at least: more than a handful.
    assert pages >= 8, pages

    # On paper: no navigation, and every hash within the page's width.
    page.emulate_media(media="print")
    expect(page.locator(".cf-toolbar")).to_be_hidden()
    page_width = page.evaluate("document.documentElement.clientWidth")
    widest = page.evaluate(
        "Math.max(...[...document.querySelectorAll('code.hash')]"
        ".map(e => e.getBoundingClientRect().right))"
    )
    assert widest <= page_width
    page.set_viewport_size({"width": A4_WIDTH, "height": 1123})
    page.screenshot(path=str(SCREENSHOT), full_page=True)
