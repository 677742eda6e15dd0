"""Owners in a real browser: a manager fixes a gap from the radar; an admin staffs a team and
the next event routes to it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from exceptions.models import ExceptionCase
from exceptions.services import case_assign
from tests import factories
from tests.factories import MembershipFactory, TeamFactory, UserFactory, event_create
from tests.support.browser import sign_in
from tests.support.engine import process_due, reload
from workflows.models import Event
from workflows.services.definitions import workflows_load

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

FLOW = """\
slug: billing-disputes
name: Billing disputes
owner: billing
routes:
  - {name: default, when: 'true', owner: billing}
action: {type: none}
"""


def test_a_manager_finds_a_gap_follows_its_link_and_fixes_it(live_server, page: Page) -> None:
    manager = UserFactory(username="marcus", roles=["manager"])
    billing, finance = TeamFactory(slug="billing"), TeamFactory(slug="finance-ops")
    MembershipFactory(team=billing, user=UserFactory(username="jonas"))
    MembershipFactory(team=finance, user=UserFactory(username="femi"))
    flow = workflows_load(sources=[("b.yaml", FLOW)], actor=None)[0].workflow
    gone = UserFactory(username="ines")
    cases = [factories.case(flow=flow) for _ in range(3)]
    for case in cases:
        case_assign(case=case, actor=manager, user=gone)
    # Deactivated before hand-over existed: her cases are stranded.
    type(gone).objects.filter(pk=gone.pk).update(is_active=False)

    sign_in(page, live_server, manager)
    page.goto(f"{live_server.url}/owners/gaps/")
    leavers = page.get_by_test_id("gap-leavers")
    expect(leavers.get_by_test_id("gap-count")).to_contain_text("3 cases")
    expect(leavers).to_contain_text("ines (left)")
    leavers.get_by_role("link", name="Reassign their cases →").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("all open cases of ines (left)")
    page.get_by_label("To team").select_option("finance-ops")
    page.get_by_label("Reason").fill("ines left in March; finance picks these up")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("move-count")).to_have_text("3")
    expect(page.get_by_test_id("reassign-preview")).to_contain_text("billing / ines (left)")
    page.get_by_role("button", name="Move 3 cases").click()

    expect(page.get_by_test_id("bulk-job")).to_contain_text("Done")
    expect(page.get_by_test_id("bulk-done")).to_have_text("3")
    page.get_by_role("link", name="Back to the gaps").click()
    expect(page.get_by_test_id("gap-leavers").get_by_test_id("gap-count")).to_have_text("none")
    owners = ExceptionCase.objects.filter(pk__in=[c.pk for c in cases])
    assert {(c.owner_team.slug, c.owner_user) for c in owners} == {("finance-ops", None)}


def test_an_admin_adds_a_person_to_a_team_and_the_next_event_routes_to_it(
    live_server, page: Page
) -> None:
    admin = UserFactory(username="ada", roles=["admin"])
    UserFactory(username="jonas", first_name="Jonas", last_name="Berg", roles=["operator"])
    TeamFactory(slug="billing")
    flow = workflows_load(sources=[("b.yaml", FLOW)], actor=None)[0].workflow
    before = event_create(flow.current_version, {"amount": 10})
    process_due()
    assert reload(before).state == "needs_attention"  # billing has nobody: no_owner

    sign_in(page, live_server, admin)
    page.goto(f"{live_server.url}/owners/teams/billing/")
    expect(page.get_by_test_id("members-now")).to_contain_text("nobody")
    form = page.get_by_test_id("add-member")
    form.get_by_label("Add a person").select_option("jonas")
    form.get_by_label("Role").select_option("lead")
    form.get_by_role("button", name="Add to billing").click()
    expect(page.locator(".message-success")).to_contain_text("jonas is on billing as lead")
    expect(page.get_by_test_id("members-now")).to_contain_text("Jonas Berg")

    after = event_create(flow.current_version, {"amount": 20})
    process_due()
    page.goto(f"{live_server.url}/events/{after.pk}/")
    expect(page.get_by_test_id("event-state")).to_have_text("Succeeded")
    expect(page.locator(".facts")).to_contain_text("billing")
    expect(page.get_by_test_id("owner-then")).to_contain_text("jonas (lead)")
    assert Event.objects.get(pk=after.pk).owner_team.slug == "billing"
