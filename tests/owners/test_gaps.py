"""The ownership-gaps radar: each gap counted, aged and linked to its fix."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from exceptions import gaps
from exceptions.approvals.models import ApprovalRequest
from exceptions.services import case_assign
from tests import factories
from tests.factories import UserFactory
from tests.support.approvals import approve
from workflows.models import Membership
from workflows.services.teams import team_deactivate

pytestmark = pytest.mark.django_db


def gap(key: str) -> gaps.Gap:
    return next(g for g in gaps.radar(now=timezone.now()) if g.key == key)


def section(body: str, key: str) -> str:
    start = body.index(f'data-testid="gap-{key}"')
    return body[start : body.index("</section>", start)]


def test_a_workflow_whose_team_is_deactivated_appears_and_goes_when_fixed_through_its_link(
    signed_in, flow, teams, roles
) -> None:
    team_deactivate(team=teams["billing"], actor=roles["admin"], reason="merged into finance")
    manager = signed_in("manager")
    found = section(manager.get("/owners/gaps/").content.decode(), "workflow-owner")
    assert "Billing disputes" in found and "owner billing is inactive" in found
    link = re.search(r'href="([^"]+)" data-testid="fix"', found).group(1)
    assert link == f"/owners/workflows/{flow.slug}/"

    admin = signed_in("admin")
    assert admin.get(link).status_code == 200
    admin.post(
        f"{link}set/", {"owner": "finance-ops", "fallback_1": "support", "reason": "billing gone"}
    )
    approve(ApprovalRequest.objects.get(workflow=flow), by=roles["manager"])
    cleared = section(admin.get("/owners/gaps/").content.decode(), "workflow-owner")
    assert "Billing disputes" not in cleared and ">none<" in cleared


def test_chains_that_are_empty_or_all_out_are_gaps(flow, teams, roles) -> None:
    assert gap("fallback-chain").count == 0
    team_deactivate(team=teams["finance-ops"], actor=roles["admin"], reason="r")
    (item,) = gap("fallback-chain").items
    assert item.detail == "every fallback is out: finance-ops"


def test_teams_with_nobody_active_on_them_are_gaps(flow, teams) -> None:
    found = gap("empty-team")
    assert [item.detail for item in found.items] == ["support"]
    Membership.objects.filter(team=teams["finance-ops"]).update(valid_to=timezone.now())
    assert {item.detail for item in gap("empty-team").items} == {"support", "finance-ops"}


def test_cases_of_people_who_left_or_are_off_the_team_are_gaps(flow, teams, roles) -> None:
    gone = UserFactory(username="gone", is_active=False)
    stranger = UserFactory(username="stranger")
    for owner in (gone, gone, stranger):
        case = factories.case(flow=flow)
        case_assign(case=case, actor=roles["admin"], user=owner)
    leavers = gap("leavers")
    assert (leavers.count, leavers.items[0].label, leavers.items[0].count) == (2, "gone (left)", 2)
    assert leavers.items[0].fix_url == "/owners/reassign/?person=gone"
    off = gap("off-team")
    assert (off.count, off.items[0].label) == (1, "stranger")
    assert off.items[0].fix_url == "/owners/reassign/?person=stranger&off_team=1"


def test_no_owner_and_late_unassigned_cases_are_gaps_with_a_prepared_reassignment(flow) -> None:
    factories.case(flow=flow, reason="no_owner", owner=None, key="billing")
    late = factories.case(flow=flow)
    late.acknowledge_due_at = timezone.now() - timedelta(minutes=5)
    late.save()
    no_owner = gap("no-owner")
    assert no_owner.count == 1 and no_owner.items[0].fix_url.endswith("owner_scope=no_owner")
    unassigned = gap("unassigned-late")
    assert unassigned.count == 1 and unassigned.since == late.opened_at


def test_someone_carrying_far_more_than_their_team_s_median_is_a_gap(flow, teams, roles) -> None:
    jonas = Membership.objects.get(user__username="jonas").user
    for _ in range(6):
        case_assign(case=factories.case(flow=flow), actor=roles["admin"], user=jonas)
    case_assign(case=factories.case(flow=flow), actor=roles["admin"], user=roles["operator"])
    (item,) = gap("overload").items
    assert (item.label, item.count) == ("jonas", 6)
    assert item.detail == "6 open against a median of 1 on billing"


@pytest.mark.parametrize(("role", "status"), [("operator", 403), ("auditor", 403),
                                              ("manager", 200), ("admin", 200)])  # fmt: skip
def test_the_radar_is_for_managers_and_admins(signed_in, flow, role, status) -> None:
    assert signed_in(role).get("/owners/gaps/").status_code == status
