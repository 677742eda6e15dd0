"""The queue's owner filters keep people who left and inactive teams with work; "Unassigned"
(no person) and "No owner" (no team) are different views."""

from __future__ import annotations

import re

import pytest

from exceptions.filters import filter_choices
from exceptions.selectors import DEFAULT_VIEWS
from exceptions.services import case_assign
from tests import factories
from tests.factories import UserFactory
from workflows.services.teams import team_deactivate

pytestmark = pytest.mark.django_db


def ids(response) -> set[int]:
    return {int(i) for i in re.findall(r'data-case="(\d+)"', response.content.decode())}


def test_people_who_left_stay_in_the_owner_filter_labelled_while_they_hold_work(
    signed_in, flow, roles
) -> None:
    gone, idle = UserFactory(username="gone"), UserFactory(username="idle", is_active=False)
    case = factories.case(flow=flow)
    case_assign(case=case, actor=roles["admin"], user=gone)
    type(gone).objects.filter(pk=gone.pk).update(is_active=False)
    people = dict(filter_choices()["people"])
    assert people["gone"].endswith("(left)") and "idle" not in people
    assert ids(signed_in("manager").get("/queue/", {"owner": "gone"})) == {case.pk}
    assert idle.username not in signed_in("manager").get("/queue/").content.decode()


def test_inactive_teams_with_open_work_stay_in_the_team_filter(flow, teams, roles) -> None:
    factories.case(flow=flow)
    team_deactivate(team=teams["billing"], actor=roles["admin"], reason="merged")
    team_deactivate(team=teams["support"], actor=roles["admin"], reason="never staffed")
    choices = dict(filter_choices()["team"])
    assert choices["billing"].endswith("(inactive)") and "support" not in choices


def test_unassigned_and_no_owner_are_separate_views(signed_in, flow, teams, roles) -> None:
    team_only = factories.case(flow=flow)
    nobody = factories.case(flow=flow, reason="no_owner", owner=None, key="x")
    person_only = factories.case(flow=flow, owner=roles["operator"])
    views = dict(DEFAULT_VIEWS)
    client = signed_in("manager")
    assert ids(client.get(f"/queue/?{views['Unassigned']}")) == {team_only.pk, nobody.pk}
    assert ids(client.get(f"/queue/?{views['No owner']}")) == {nobody.pk, person_only.pk}
    page = client.get("/queue/").content.decode()
    assert 'href="?' + views["No owner"].replace("&", "&amp;") + '"' in page
