"""A person leaves: deactivated, memberships ended, open cases handed on, one entry per case."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from audit.models import AuditEntry
from exceptions.handover import person_deactivate
from exceptions.models import ExceptionCase
from exceptions.services import case_assign
from tests import factories
from workflows.models import Membership
from workflows.services.teams import OwnersRefused

pytestmark = pytest.mark.django_db


def give(cases, person, actor):
    for case in cases:
        case_assign(case=case, actor=actor, user=person)


def test_a_deactivated_person_s_50_open_cases_move_with_50_audit_entries(
    flow, teams, roles
) -> None:
    jonas = Membership.objects.get(user__username="jonas").user
    cases = [factories.case(flow=flow) for _ in range(50)]
    give(cases, jonas, roles["admin"])
    before = AuditEntry.objects.count()

    handed = person_deactivate(person=jonas, actor=roles["admin"], reason="left the company")

    assert (handed.moved, handed.unowned, handed.to_teams) == (50, 0, {"billing": 50})
    moved = ExceptionCase.objects.filter(pk__in=[c.pk for c in cases])
    assert {(c.owner_team.slug, c.owner_user_id) for c in moved} == {("billing", None)}
    entries = AuditEntry.objects.filter(pk__gt=0).order_by("id")[before:]
    per_case = [e for e in entries if e.action == "case.assign"]
    assert sorted(int(e.object_id) for e in per_case) == sorted(c.pk for c in cases)
    assert {e.reason for e in per_case} == {"Handed over: jonas left (left the company)"}
    assert {e.before["owner_user"] for e in per_case} == {"jonas"}
    actions = [e.action for e in entries]
    assert actions[:2] == ["user.deactivate", "membership.end"] and len(actions) == 52
    jonas.refresh_from_db()
    assert not jonas.is_active
    assert not Membership.objects.filter(user=jonas, valid_to__isnull=True).exists()


def test_when_the_team_has_nobody_left_the_cases_go_down_the_fallback_chain(
    flow, teams, roles
) -> None:
    Membership.objects.filter(team=teams["billing"]).exclude(user__username="jonas").delete()
    jonas = Membership.objects.get(user__username="jonas").user
    give([factories.case(flow=flow) for _ in range(2)], jonas, roles["admin"])
    handed = person_deactivate(person=jonas, actor=roles["admin"], reason="left")
    assert handed.to_teams == {"finance-ops": 2}


def test_with_nobody_anywhere_the_cases_stay_with_their_team_and_are_counted(
    flow, teams, roles
) -> None:
    Membership.objects.exclude(user__username="jonas").delete()
    jonas = Membership.objects.get(user__username="jonas").user
    case = factories.case(flow=flow)
    give([case], jonas, roles["admin"])
    handed = person_deactivate(person=jonas, actor=roles["admin"], reason="left")
    assert (handed.moved, handed.unowned) == (1, 1)
    case.refresh_from_db()
    assert (case.owner_team.slug, case.owner_user) == ("billing", None)


def test_nobody_leaves_without_a_reason_or_by_their_own_hand(roles) -> None:
    with pytest.raises(OwnersRefused, match="Say why"):
        person_deactivate(person=roles["operator"], actor=roles["admin"], reason="")
    with pytest.raises(OwnersRefused, match="themselves"):
        person_deactivate(person=roles["admin"], actor=roles["admin"], reason="r")


def test_the_person_page_hands_over_through_the_same_service(signed_in, flow, teams, roles):
    jonas = Membership.objects.get(user__username="jonas").user
    give([factories.case(flow=flow)], jonas, roles["admin"])
    response = signed_in("admin").post(
        "/owners/people/jonas/leave/", {"reason": "moved abroad"}, follow=True
    )
    body = response.content.decode()
    assert (
        "jonas is deactivated; their memberships ended and 1 open cases were handed over." in body
    )
    assert "left (deactivated)" in body


def test_unticking_active_in_django_admin_hands_the_work_over_too(client, flow, teams, roles):
    admin = roles["admin"]
    admin.is_staff = True
    admin.save()
    jonas = Membership.objects.get(user__username="jonas").user
    case = factories.case(flow=flow)
    give([case], jonas, admin)
    client.force_login(admin)
    response = client.post(
        f"/admin/auth/user/{jonas.pk}/change/",
        {
            "username": "jonas",
            "first_name": jonas.first_name,
            "last_name": jonas.last_name,
            "email": "",
            "groups": [Group.objects.get(name="operator").pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "initial-date_joined_0": "2026-01-01",
            "initial-date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    case.refresh_from_db()
    assert (case.owner_team.slug, case.owner_user) == ("billing", None)
    entry = AuditEntry.objects.filter(action="case.assign").latest("id")
    assert entry.reason == "Handed over: jonas left (deactivated in the admin)"
    assert not Membership.objects.filter(user=jonas, valid_to__isnull=True).exists()
