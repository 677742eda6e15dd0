"""Workflow ownership over time: console changes, definition loads, and which of them wins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from audit.models import AuditEntry
from tests.factories import APPROVAL, MembershipFactory, TeamFactory, event_create
from tests.support.engine import process_due, reload
from workflows.four_eyes import ApprovalRequired
from workflows.models import Decision, OwnershipSource, Step, Workflow, WorkflowOwnership
from workflows.ownership import workflow_owner_at
from workflows.services.definitions import workflows_load
from workflows.services.engine import payload_dry_run
from workflows.services.ownership import workflow_ownership_set
from workflows.services.teams import OwnersRefused, team_deactivate

pytestmark = pytest.mark.django_db

TEAMS = ("team-a", "team-b", "team-c", "team-d")


def flow_yaml(owner: str = "team-a", fallbacks: str = "[team-b]", rule: str = "has(payload.vip)"):
    return f"""\
slug: owned
name: Owned
owner: {owner}
fallback_owners: {fallbacks}
routes:
  - {{name: vip, when: '{rule}', owner: team-c}}
action: {{type: none}}
"""


@pytest.fixture
def teams(make_user):
    made = {}
    for slug in TEAMS:
        made[slug] = TeamFactory(slug=slug)
        MembershipFactory(team=made[slug], user=make_user(username=f"{slug}-person"))
    return made


def load(text: str, name: str = "owned.yaml"):
    return workflows_load(sources=[(name, text)], actor=None)[0]


def open_ownership(workflow: Workflow) -> WorkflowOwnership:
    return WorkflowOwnership.objects.get(workflow=workflow, valid_to__isnull=True)


def test_a_load_starts_ownership_from_the_definition(teams) -> None:
    result = load(flow_yaml())
    record = open_ownership(result.workflow)
    assert record.lines == ("team-a", ("team-b",))
    assert record.source == OwnershipSource.DEFINITION
    assert record.version == result.version


def test_a_console_change_routes_the_next_event_and_its_dry_run(teams, admin_user) -> None:
    workflow = load(flow_yaml()).workflow
    workflow_ownership_set(
        workflow=workflow,
        owner="team-d",
        fallback_owners=["team-a"],
        actor=admin_user,
        approval_id=APPROVAL,
        reason="team-d took over lead routing",
    )
    event = event_create(workflow.current_version, {"email": "x@example.com"})
    process_due()
    assert reload(event).owner_team == teams["team-d"]
    route = Decision.objects.get(event=event, step=Step.ROUTE)
    assert route.explanation == (
        "No route matched; routed to the workflow owner team-d (v1) (owner lines set in the "
        "console by admin: “team-d took over lead routing”)"
    )
    assert route.result["ownership"] == open_ownership(workflow).pk
    dry = payload_dry_run(version=workflow.current_version, payload={"email": "y@example.com"})
    assert dry.owner == "team-d"


def test_the_console_fallback_chain_is_walked_when_the_owner_has_nobody(teams, admin_user) -> None:
    workflow = load(flow_yaml()).workflow
    workflow_ownership_set(
        workflow=workflow,
        owner="team-a",
        fallback_owners=["team-d", "team-b"],
        actor=admin_user,
        approval_id=APPROVAL,
        reason="team-d backs team-a up now",
    )
    team_deactivate(team=teams["team-a"], actor=admin_user, reason="merged")
    event = event_create(workflow.current_version, {})
    process_due()
    assert reload(event).owner_team == teams["team-d"]


def test_a_load_that_changes_only_rules_keeps_the_console_change(teams, admin_user) -> None:
    workflow = load(flow_yaml()).workflow
    console = workflow_ownership_set(
        workflow=workflow,
        owner="team-d",
        fallback_owners=[],
        actor=admin_user,
        reason="r",
        approval_id=APPROVAL,
    )
    result = load(flow_yaml(rule="has(payload.vip) && payload.vip == true"))
    assert result.status == "new_version"
    assert open_ownership(workflow) == console
    assert "ownership kept as set in the console by admin" in result.describe()
    kept = AuditEntry.objects.get(action="workflow.ownership_kept")
    assert kept.after == {"file_owner": "team-a", "file_fallback_owners": ["team-b"]}


def test_reloading_an_old_file_does_not_undo_a_console_change(teams, admin_user) -> None:
    old = flow_yaml()
    workflow = load(old).workflow
    load(flow_yaml(rule="has(payload.vip) && payload.vip == true"))
    console = workflow_ownership_set(
        workflow=workflow,
        owner="team-d",
        fallback_owners=[],
        actor=admin_user,
        reason="r",
        approval_id=APPROVAL,
    )
    result = load(old)
    assert result.status == "reactivated"
    assert open_ownership(workflow) == console
    assert load(old).status == "unchanged"
    assert open_ownership(workflow) == console


def test_a_load_that_changes_the_owner_lines_replaces_the_console_change(teams, admin_user) -> None:
    workflow = load(flow_yaml()).workflow
    console = workflow_ownership_set(
        workflow=workflow,
        owner="team-d",
        fallback_owners=[],
        actor=admin_user,
        reason="r",
        approval_id=APPROVAL,
    )
    result = load(flow_yaml(owner="team-c", fallbacks="[team-a, team-b]"))
    record = open_ownership(workflow)
    assert record.lines == ("team-c", ("team-a", "team-b"))
    assert record.source == OwnershipSource.DEFINITION
    console.refresh_from_db()
    assert console.valid_to == record.valid_from
    assert "replace the ownership set in the console by admin" in result.describe()


def test_without_a_console_change_ownership_follows_each_load(teams) -> None:
    first = load(flow_yaml())
    load(flow_yaml(owner="team-c"))
    load(flow_yaml())  # the old file again: no console change to protect
    records = list(WorkflowOwnership.objects.filter(workflow=first.workflow).order_by("id"))
    assert [r.owner for r in records] == ["team-a", "team-c", "team-a"]
    assert [r.valid_to is None for r in records] == [False, False, True]


def test_who_owned_the_workflow_at_each_moment_is_a_query(teams, admin_user) -> None:
    day1, day2, day3 = (datetime(2030, 1, d, 12, tzinfo=UTC) for d in (1, 2, 3))
    with time_machine.travel(day1 - timedelta(hours=6), tick=False):
        workflow = load(flow_yaml()).workflow
    with time_machine.travel(day2, tick=False):
        workflow_ownership_set(
            workflow=workflow,
            owner="team-d",
            fallback_owners=["team-c"],
            actor=admin_user,
            approval_id=APPROVAL,
            reason="reorganisation",
        )
    then = workflow_owner_at(workflow=workflow, at=day1)
    assert (then.owner, [t.slug for t in then.fallbacks]) == ("team-a", ["team-b"])
    assert then.rule["source"] == "definition"
    later = workflow_owner_at(workflow=workflow, at=day3)
    assert (later.owner, [t.slug for t in later.fallbacks]) == ("team-d", ["team-c"])
    assert later.rule["reason"] == "reorganisation"
    assert [m.username for m in later.team.members] == ["team-d-person"]


@pytest.mark.parametrize(
    ("owner", "fallbacks", "reason", "says"),
    [
        ("team-d", [], "  ", "a reason is required"),
        ("nobody", [], "r", "There is no team 'nobody'"),
        ("team-d", ["team-d"], "r", "cannot be its own fallback"),
        ("team-d", ["team-a", "team-a"], "r", "appears twice"),
        ("team-a", ["team-b"], "r", "already has exactly this owner"),
    ],
)
def test_a_console_change_that_cannot_be_made_is_refused(
    teams, admin_user, owner, fallbacks, reason, says
) -> None:
    workflow = load(flow_yaml()).workflow
    with pytest.raises(OwnersRefused, match=says):
        workflow_ownership_set(
            workflow=workflow,
            owner=owner,
            fallback_owners=fallbacks,
            actor=admin_user,
            approval_id=APPROVAL,
            reason=reason,
        )
    assert WorkflowOwnership.objects.filter(workflow=workflow).count() == 1


def test_an_inactive_team_cannot_be_made_owner(teams, admin_user) -> None:
    workflow = load(flow_yaml()).workflow
    team_deactivate(team=teams["team-d"], actor=admin_user, reason="gone")
    with pytest.raises(OwnersRefused, match="inactive"):
        workflow_ownership_set(
            workflow=workflow, owner="team-d", fallback_owners=[], actor=admin_user, reason="r"
        )


def test_a_console_change_is_audited_with_its_reason_and_both_sides(teams, admin_user) -> None:
    workflow = load(flow_yaml()).workflow
    record = workflow_ownership_set(
        workflow=workflow,
        owner="team-d",
        fallback_owners=["team-a"],
        actor=admin_user,
        approval_id=APPROVAL,
        reason="coverage",
    )
    entry = AuditEntry.objects.filter(action="workflow.ownership_set").latest("id")
    assert entry.actor_label == "admin"
    assert entry.reason == "coverage"
    assert entry.before == {
        "owner": "team-a",
        "fallback_owners": ["team-b"],
        "source": "definition",
    }
    assert entry.after == {
        "owner": "team-d",
        "fallback_owners": ["team-a"],
        "source": "console",
        "record": record.pk,
    }


def test_a_console_change_runs_only_under_an_approval(teams, admin_user) -> None:
    workflow = load(flow_yaml()).workflow
    before = open_ownership(workflow)
    with pytest.raises(ApprovalRequired) as owner_change:
        workflow_ownership_set(
            workflow=workflow, owner="team-d", fallback_owners=[], actor=admin_user, reason="r"
        )
    assert owner_change.value.kind == "workflow_ownership_change"
    with pytest.raises(ApprovalRequired) as chain_change:
        workflow_ownership_set(
            workflow=workflow,
            owner="team-a",
            fallback_owners=["team-c"],
            actor=admin_user,
            reason="r",
        )
    assert chain_change.value.kind == "workflow_routing_change"
    assert open_ownership(workflow) == before
