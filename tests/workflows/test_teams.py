"""Teams and memberships: nothing is overwritten, every change is audited, the commands call the
same services."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEntry
from tests.factories import MembershipFactory, TeamFactory
from workflows.models import Membership, Team
from workflows.services.teams import (
    OwnersRefused,
    membership_change_role,
    membership_end,
    membership_start,
    team_create,
    team_deactivate,
    team_rename,
)

pytestmark = pytest.mark.django_db


def actions() -> list[str]:
    return list(AuditEntry.objects.order_by("id").values_list("action", flat=True))


def test_renaming_a_team_keeps_its_slug_and_records_both_names(admin_user) -> None:
    team = team_create(slug="billing", name="Billing", actor=admin_user)
    team_rename(team=team, name="Billing operations", actor=admin_user, reason="scope grew")
    team.refresh_from_db()
    assert (team.slug, team.name) == ("billing", "Billing operations")
    entry = AuditEntry.objects.get(action="team.rename")
    assert (entry.before, entry.after, entry.reason) == (
        {"name": "Billing"},
        {"name": "Billing operations"},
        "scope grew",
    )


def test_a_team_slug_that_is_taken_is_refused(admin_user) -> None:
    TeamFactory(slug="billing")
    with pytest.raises(OwnersRefused, match="already exists"):
        team_create(slug="billing", name="Again", actor=admin_user)


def test_deactivating_a_team_needs_a_reason_and_records_when(admin_user) -> None:
    team = TeamFactory(slug="billing")
    with pytest.raises(OwnersRefused, match="Say why"):
        team_deactivate(team=team, actor=admin_user, reason=" ")
    team_deactivate(team=team, actor=admin_user, reason="merged into finance-ops")
    team.refresh_from_db()
    assert not team.active
    assert team.deactivated_at is not None
    assert not team.active_at(team.deactivated_at)
    with pytest.raises(OwnersRefused, match="already inactive"):
        team_deactivate(team=team, actor=admin_user, reason="again")


def test_changing_a_role_ends_the_old_membership_and_starts_a_new_one(
    admin_user, make_user
) -> None:
    person = make_user(username="ines")
    team = TeamFactory(slug="billing")
    first = membership_start(user=person, team=team, role="member", actor=admin_user)
    second = membership_change_role(
        membership=first, role="lead", actor=admin_user, reason="leads the team now"
    )
    first.refresh_from_db()
    assert first.valid_to == second.valid_from
    assert (first.role, second.role, second.valid_to) == ("member", "lead", None)
    assert actions() == ["membership.start", "membership.end", "membership.start"]


def test_nobody_joins_an_inactive_team_and_no_deactivated_person_joins(
    admin_user, make_user
) -> None:
    team = TeamFactory(slug="billing", active=False)
    with pytest.raises(OwnersRefused, match="inactive"):
        membership_start(user=make_user(), team=team, role="member", actor=admin_user)
    gone = make_user(is_active=False)
    with pytest.raises(OwnersRefused, match="deactivated"):
        membership_start(user=gone, team=TeamFactory(), role="member", actor=admin_user)


def test_ending_a_membership_twice_is_refused(admin_user) -> None:
    membership = MembershipFactory()
    membership_end(membership=membership, actor=admin_user)
    with pytest.raises(OwnersRefused, match="already ended"):
        membership_end(membership=membership, actor=admin_user)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_the_team_and_membership_commands_make_audited_changes(make_user) -> None:
    make_user(username="ines")
    run("team", "create", "billing", "Billing")
    run("team", "rename", "billing", "Billing operations", "--reason", "scope grew")
    run("membership", "start", "ines", "billing")
    run("membership", "role", "ines", "billing", "lead", "--reason", "promoted")
    assert "billing: Billing operations — ines (lead)" in run("team", "list")
    run("membership", "end", "ines", "billing", "--reason", "moved on")
    listing = run("membership", "list", "--team", "billing")
    assert [line.split("\t")[2] for line in listing.splitlines()] == ["member", "lead"]
    run("team", "deactivate", "billing", "--reason", "merged")
    assert not Team.objects.get(slug="billing").active
    assert Membership.objects.filter(team__slug="billing", valid_to__isnull=True).count() == 0
    entries = AuditEntry.objects.order_by("id")
    assert [e.action for e in entries] == [
        "team.create",
        "team.rename",
        "membership.start",
        "membership.end",
        "membership.start",
        "membership.end",
        "team.deactivate",
    ]
    assert {e.actor_label.split(":")[0] for e in entries} == {"cli"}


def test_a_command_that_cannot_be_done_says_why(make_user) -> None:
    with pytest.raises(CommandError, match="nobody called 'nobody'"):
        run("membership", "start", "nobody", "nope")
    make_user(username="ines")
    TeamFactory(slug="billing")
    with pytest.raises(CommandError, match="not on team billing"):
        run("membership", "end", "ines", "billing")
