"""Four-eyes in a real browser: an operator asks for an edited replay of a held refund, cannot
approve it, and a manager approves it on /approvals/, after which the replay runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from exceptions.approvals.models import ApprovalRequest
from exceptions.models import ExceptionCase
from tests import factories
from tests.factories import MembershipFactory, UserFactory
from tests.support.browser import sign_in
from tests.support.engine import process_due
from workflows.models import Event

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "approvals.png"


def test_an_operator_asks_a_manager_approves_and_the_operator_cannot(
    live_server, page: Page
) -> None:
    operator = UserFactory(username="olivia", roles=["operator"])
    manager = UserFactory(username="marcus", roles=["manager"])
    flow = factories.workflow(factories.reviewed_refund_definition())
    MembershipFactory(team=factories.team("finance-ops"), user=UserFactory(username="femi"))
    event = factories.event_create(flow.current_version, {"amount": 1500, "order": "A-1"})
    process_due()
    case = ExceptionCase.objects.get(event=event, reason_id="review_required")

    # The operator asks for a replay with a lower amount: it waits for a manager.
    sign_in(page, live_server, operator)
    page.goto(f"{live_server.url}/exceptions/{case.pk}/")
    page.get_by_text("Replay with an edited payload").click()
    edited = json.dumps({"amount": 900, "order": "A-1"}, indent=2)
    page.locator("#edit-id_payload").fill(edited)
    page.locator("#edit-id_note").fill("the customer kept one of the two items")
    page.get_by_role("button", name="Ask to replay edited").click()
    expect(page.get_by_test_id("flash")).to_contain_text("now waits for a manager")
    approval = ApprovalRequest.objects.get(case=case)
    expect(page.get_by_test_id("case-approval")).to_contain_text(f"#{approval.pk}")
    assert not Event.objects.filter(replay_of=event).exists()

    # On /approvals/ the operator sees the request but no way to approve their own.
    page.get_by_role("link", name="Approvals").first.click()
    card = page.locator(f'[data-approval="{approval.pk}"]')
    expect(card.get_by_test_id("approval-state")).to_have_text("Pending")
    expect(card.get_by_test_id("cannot-decide")).to_contain_text("You asked for this")
    expect(card.get_by_test_id("approve")).to_have_count(0)

    # The manager reads what it will do (the payload diff) and approves it.
    sign_in(page, live_server, manager)
    page.goto(f"{live_server.url}/approvals/")
    card = page.locator(f'[data-approval="{approval.pk}"]')
    diff = card.get_by_test_id("payload-diff")
    expect(diff.locator("del")).to_have_text("1500")
    expect(diff.locator("ins")).to_have_text("900")
    expect(card).to_contain_text("the customer kept one of the two items")
    card.get_by_label("Comment").fill("partial refund agreed with the customer")
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    card.get_by_test_id("approve").click()
    card = page.locator(f'[data-approval="{approval.pk}"]')
    expect(card.get_by_test_id("flash")).to_contain_text("approved and run")
    expect(card.get_by_test_id("approval-state")).to_have_text("Approved and run")
    expect(card).to_contain_text("marcus")

    replay = Event.objects.get(replay_of=event)
    assert replay.payload == {"amount": 900, "order": "A-1"}
    assert ApprovalRequest.objects.get(pk=approval.pk).decider_roles == ["manager"]
