"""The owners pages: everyone with a role reads them, only admins change anything."""

from __future__ import annotations

import pytest

from audit.models import AuditEntry
from exceptions.approvals.models import ApprovalRequest
from tests import factories
from tests.support.approvals import decide_form
from workflows.models import Membership, Team, WorkflowOwnership

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", ["operator", "manager", "auditor", "admin"])
def test_everyone_with_a_role_reads_the_owners_pages(signed_in, flow, role) -> None:
    client = signed_in(role)
    factories.case(flow=flow)
    pages = {
        "/owners/": "Create team",
        "/owners/teams/billing/": "Add to billing",
        "/owners/people/ines/": "Deactivate and hand over",
        f"/owners/workflows/{flow.slug}/": "Set the ownership",
    }
    for url, admin_form in pages.items():
        response = client.get(url)
        assert response.status_code == 200, url
        assert (admin_form in response.content.decode()) == (role == "admin"), url


def test_the_index_lists_teams_people_and_who_owns_each_workflow(signed_in, flow) -> None:
    body = signed_in("auditor").get("/owners/").content.decode()
    assert "Read only: admins change teams" in body
    assert 'href="/owners/teams/billing/"' in body and 'href="/owners/people/jonas/"' in body
    assert "nobody on it" in body  # support
    assert 'href="/owners/workflows/billing-disputes/"' in body


def test_the_team_page_shows_people_now_and_over_time_workflows_and_open_work(
    signed_in, flow, teams
) -> None:
    ines = Membership.objects.get(user__username="ines")
    ines.valid_to = ines.valid_from.replace(year=2001)
    ines.save()
    case = factories.case(flow=flow)
    body = signed_in("operator").get("/owners/teams/billing/").content.decode()
    now_table = body[body.index('data-testid="members-now"') : body.index("</table>")]
    assert "jonas" in now_table and "ines" not in now_table
    history = body[body.index('data-testid="members-history"') :]
    assert "ines" in history[: history.index("</table>")]
    assert f'href="/exceptions/{case.pk}/"' in body
    owns = body[body.index('data-testid="owns"') :]
    assert "Billing disputes" in owns[: owns.index("</ul>")]
    finance = signed_in("operator").get("/owners/teams/finance-ops/").content.decode()
    backs = finance[finance.index('data-testid="backs-up"') :]
    assert "fallback 1, after billing" in backs[: backs.index("</ul>")]


def test_an_admin_makes_a_team_and_puts_people_on_it(signed_in, roles) -> None:
    client = signed_in("admin")
    response = client.post("/owners/teams/new/", {"slug": "refunds", "name": "Refunds"})
    assert response.status_code == 302 and response["Location"] == "/owners/teams/refunds/"
    team = Team.objects.get(slug="refunds")
    client.post("/owners/teams/refunds/members/", {"person": "olivia", "role": "member"})
    membership = Membership.objects.get(team=team, user=roles["operator"])
    client.post(f"/owners/memberships/{membership.pk}/role/", {"role": "lead", "reason": "r"})
    rows = Membership.objects.filter(team=team).order_by("id")
    assert [(m.role, m.valid_to is None) for m in rows] == [("member", False), ("lead", True)]
    client.post(f"/owners/memberships/{rows[1].pk}/end/", {})
    client.post("/owners/teams/refunds/rename/", {"name": "Refunds desk"})
    client.post("/owners/teams/refunds/deactivate/", {"reason": "merged"})
    team.refresh_from_db()
    assert (team.name, team.active) == ("Refunds desk", False)
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == [
        "team.create",
        "membership.start",
        "membership.end",
        "membership.start",
        "membership.end",
        "team.rename",
        "team.deactivate",
    ]


def test_a_change_that_cannot_be_made_says_why(signed_in, teams) -> None:
    client = signed_in("admin")
    response = client.post("/owners/teams/support/deactivate/", {"reason": ""}, follow=True)
    assert "Not changed: Say why: a reason is required." in response.content.decode()
    assert Team.objects.get(slug="support").active
    response = client.post("/owners/teams/new/", {"slug": "billing", "name": "x"}, follow=True)
    assert "Not created" in response.content.decode()


def test_the_ownership_panel_sets_owner_and_chain_in_order_with_a_reason_once_approved(
    signed_in, flow
) -> None:
    client = signed_in("admin")
    panel = client.get(f"/owners/workflows/{flow.slug}/").content.decode()
    assert "A change made in the console stays in force until a load" in panel
    refused = client.post(
        f"/owners/workflows/{flow.slug}/set/",
        {"owner": "support", "fallback_1": "finance-ops", "reason": ""},
    )
    assert refused.status_code == 422
    assert WorkflowOwnership.objects.filter(workflow=flow).count() == 1
    client.post(
        f"/owners/workflows/{flow.slug}/set/",
        {
            "owner": "finance-ops",
            "fallback_1": "",
            "fallback_2": "support",
            "fallback_3": "billing",
            "reason": "billing is short this month",
        },
    )
    # Nothing changes until a second person approves the change.
    assert WorkflowOwnership.objects.filter(workflow=flow).count() == 1
    approval = ApprovalRequest.objects.get(workflow=flow, state="pending")
    assert approval.kind == "workflow_ownership_change"
    manager = signed_in("manager")
    approved = manager.post(f"/approvals/{approval.pk}/approve/", decide_form(approval))
    assert approved.status_code == 302
    client = signed_in("admin")
    record = WorkflowOwnership.objects.get(workflow=flow, valid_to__isnull=True)
    assert record.lines == ("finance-ops", ("support", "billing"))
    assert (record.source, record.set_by) == ("console", "ada")
    panel = client.get(f"/owners/workflows/{flow.slug}/").content.decode()
    history = panel[panel.index('data-testid="ownership-history"') :]
    assert "billing is short this month" in history and "Definition load" in history


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/owners/teams/new/", {"slug": "x", "name": "X"}),
        ("/owners/teams/billing/rename/", {"name": "X"}),
        ("/owners/teams/billing/deactivate/", {"reason": "r"}),
        ("/owners/teams/billing/members/", {"person": "ines", "role": "lead"}),
        ("/owners/people/ines/join/", {"team": "support", "role": "member"}),
        ("/owners/people/ines/leave/", {"reason": "r"}),
        ("/owners/workflows/billing-disputes/set/", {"owner": "support", "reason": "r"}),
    ],
)
@pytest.mark.parametrize("role", ["operator", "manager", "auditor"])
def test_only_admins_change_teams_memberships_and_ownership(
    signed_in, flow, url, data, role
) -> None:
    before = AuditEntry.objects.count()
    assert signed_in(role).post(url, data).status_code == 403
    assert AuditEntry.objects.count() == before


def test_membership_changes_are_admin_only_too(signed_in, flow) -> None:
    membership = Membership.objects.get(user__username="ines")
    for role in ("operator", "manager", "auditor"):
        client = signed_in(role)
        assert (
            client.post(f"/owners/memberships/{membership.pk}/role/", {"role": "lead"}).status_code
            == 403
        )
        assert client.post(f"/owners/memberships/{membership.pk}/end/", {}).status_code == 403
    assert Membership.objects.get(pk=membership.pk).valid_to is None
