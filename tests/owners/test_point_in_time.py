"""Who owned a workflow, an event or a case at a moment, answered from history alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from audit.actors import Actor
from exceptions.ownership import owner_at
from exceptions.services import case_assign
from tests import factories
from tests.factories import (
    APPROVAL,
    MembershipFactory,
    TeamFactory,
    UserFactory,
    event_create,
)
from tests.support.api import Api, error_code
from tests.support.engine import process_due
from workflows.services.definitions import workflows_load
from workflows.services.ownership import workflow_ownership_set
from workflows.services.teams import membership_end, membership_start
from workflows.services.tokens import api_token_create

pytestmark = pytest.mark.django_db

DAY1, DAY2, DAY3 = (datetime(2030, 3, d, 12, tzinfo=UTC) for d in (1, 2, 3))
FLOW = """\
slug: billing-disputes
name: Billing disputes
owner: billing
fallback_owners: [finance-ops]
routes:
  - {name: big, when: 'has(payload.amount) && payload.amount > 1000', owner: finance-ops}
action: {type: none}
"""


@pytest.fixture
def org(admin_user):
    """billing: ines until day 2, then jonas (as lead); finance-ops: femi all along."""
    billing, finance = TeamFactory(slug="billing"), TeamFactory(slug="finance-ops")
    ines, jonas = UserFactory(username="ines"), UserFactory(username="jonas")
    start = DAY1 - timedelta(days=10)
    MembershipFactory(team=finance, user=UserFactory(username="femi"), valid_from=start)
    first = MembershipFactory(team=billing, user=ines, valid_from=start)
    with time_machine.travel(start, tick=False):
        workflow = workflows_load(sources=[("b.yaml", FLOW)], actor=None)[0].workflow
    with time_machine.travel(DAY2, tick=False):
        membership_end(membership=first, actor=admin_user, reason="moved to support")
        membership_start(user=jonas, team=billing, role="lead", actor=admin_user)
    return workflow


def usernames(team) -> list[tuple[str, str]]:
    return [(m.username, m.role) for m in team.members]


def test_a_membership_changed_on_day_2_answers_for_day_1_and_day_3(org) -> None:
    day1 = owner_at(workflow=org, at=DAY1)
    assert day1.owner == "billing"
    assert usernames(day1.team) == [("ines", "member")]
    assert [usernames(t) for t in day1.fallbacks] == [[("femi", "member")]]
    day3 = owner_at(workflow=org, at=DAY3)
    assert usernames(day3.team) == [("jonas", "lead")]
    assert day3.through == "the workflow's owner, from its definition"


def test_the_api_answers_for_day_1_and_day_3(org, client) -> None:
    _, token = api_token_create(
        name="ledger", workflow_slugs=[org.slug], all_workflows=False, actor=Actor("system", "t")
    )
    api = Api(client, token)
    day1 = api.get(f"/workflows/{org.slug}/owner", data={"at": "2030-03-01T12:00:00Z"})
    assert day1.status_code == 200, day1.content
    body = day1.json()
    assert body["owner"]["team"] == "billing"
    assert [m["username"] for m in body["owner"]["members"]] == ["ines"]
    assert body["fallback_owners"][0]["team"] == "finance-ops"
    assert body["source"] == "definition"
    day3 = api.get(f"/workflows/{org.slug}/owner", data={"at": "2030-03-03T12:00:00+00:00"})
    members = day3.json()["owner"]["members"]
    assert [(m["username"], m["role"]) for m in members] == [("jonas", "lead")]


@pytest.mark.parametrize("at", ["yesterday", "2030-13-01", "12:00", "2030-03-01T25:00Z"])
def test_a_malformed_moment_is_a_400_with_its_code(org, client, at) -> None:
    _, token = api_token_create(
        name="ledger", workflow_slugs=[org.slug], all_workflows=False, actor=Actor("system", "t")
    )
    response = Api(client, token).get(f"/workflows/{org.slug}/owner", data={"at": at})
    assert response.status_code == 400
    assert error_code(response) == "invalid_at"


def test_the_owner_api_is_scoped_to_the_token_s_workflows(org, client) -> None:
    other = factories.version_create(factories.open_definition("other", "billing")).workflow
    _, token = api_token_create(
        name="other", workflow_slugs=[other.slug], all_workflows=False, actor=Actor("system", "t")
    )
    api = Api(client, token)
    assert error_code(api.get(f"/workflows/{org.slug}/owner")) == "forbidden"
    assert error_code(api.get("/workflows/nope/owner")) == "unknown_workflow"
    assert api.as_token(None).get(f"/workflows/{org.slug}/owner").status_code == 401


def test_a_console_change_shows_with_who_set_it_and_why(org, admin_user) -> None:
    with time_machine.travel(DAY2 + timedelta(hours=1), tick=False):
        workflow_ownership_set(
            workflow=org,
            owner="finance-ops",
            fallback_owners=[],
            actor=admin_user,
            approval_id=APPROVAL,
            reason="billing is short-staffed",
        )
    assert owner_at(workflow=org, at=DAY1).owner == "billing"
    day3 = owner_at(workflow=org, at=DAY3)
    assert (day3.owner, day3.fallbacks) == ("finance-ops", [])
    assert day3.rule["set_by"] == "admin"
    assert day3.through.endswith("“billing is short-staffed”")


def test_an_event_is_owned_by_its_workflow_until_routed_then_by_the_route(org) -> None:
    with time_machine.travel(DAY3, tick=False):
        event = event_create(org.current_version, {"amount": 5000})
    with time_machine.travel(DAY3 + timedelta(minutes=5), tick=False):
        process_due()
    before = owner_at(event=event, at=DAY3 + timedelta(minutes=1))
    assert before.owner == "billing"
    assert before.through.startswith("not routed yet")
    after = owner_at(event=event, at=DAY3 + timedelta(minutes=10))
    assert after.owner == "finance-ops"
    assert after.rule["route"] == "big"
    assert usernames(after.team) == [("femi", "member")]


def test_a_case_is_owned_as_it_opened_until_a_person_changes_it(org, admin_user) -> None:
    with time_machine.travel(DAY1, tick=False):
        case = factories.case(flow=org)
    jonas = UserFactory(username="jonas")
    with time_machine.travel(DAY2 + timedelta(hours=2), tick=False):
        case_assign(case=case, actor=admin_user, user=jonas, note="jonas runs billing now")
    first = owner_at(case=case, at=DAY1 + timedelta(hours=1))
    assert (first.owner, first.person) == ("billing", "")
    assert first.rule["kind"] == "opened"
    assert usernames(first.team) == [("ines", "member")]
    later = owner_at(case=case, at=DAY3)
    assert (later.owner, later.person) == ("billing", "jonas")
    assert later.through.startswith("assign by admin on 2030-03-02 14:00 UTC")
    assert later.through.endswith("“jonas runs billing now”")
    assert owner_at(case=case, at=DAY1 - timedelta(days=1)).nobody


def test_owner_at_answers_for_exactly_one_thing(org) -> None:
    with pytest.raises(TypeError):
        owner_at(at=DAY1)
    with pytest.raises(TypeError):
        owner_at(at=DAY1, workflow=org, event=event_create(org.current_version, {}))


def test_the_case_page_shows_the_owner_at_each_decision_beside_today_s(
    org, admin_user, client
) -> None:
    with time_machine.travel(DAY1, tick=False):
        case = factories.case(flow=org)
    with time_machine.travel(DAY2 + timedelta(hours=2), tick=False):
        case_assign(case=case, actor=admin_user, team=None, note="taken off billing")
    client.force_login(admin_user)
    body = client.get(f"/exceptions/{case.pk}/").content.decode()
    panel = body[body.index('data-testid="owner-then"') :]
    panel = panel[: panel.index("</section>")]
    row = panel[panel.index('data-testid="owner-then-row"') :]
    # Validated on day 1: billing owned it, and ines was on billing then (jonas is now).
    assert '<span class="team">billing</span>' in row and "ines" in row and "jonas" not in row
    assert "now no owner" not in row and "no owner now" in row
    opened = panel[panel.index('data-testid="case-owner-opened"') :]
    assert opened.startswith('data-testid="case-owner-opened"><span class="team">billing</span>')
    event_page = client.get(f"/events/{case.event_id}/").content.decode()
    assert 'data-testid="owner-then-row"' in event_page
