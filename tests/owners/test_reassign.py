"""Reassigning: a preview of what moves, a reason, one audit entry per case; operators move only
what is theirs."""

from __future__ import annotations

import re

import pytest

from audit.models import AuditEntry
from exceptions import services
from exceptions.models import BulkJob, ExceptionCase
from exceptions.services import case_assign
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def jonas_cases(flow, teams, roles):
    jonas = teams["billing"].memberships.get(user__username="jonas").user
    cases = [factories.case(flow=flow) for _ in range(3)]
    for case in cases:
        case_assign(case=case, actor=roles["admin"], user=jonas)
    return cases


def test_the_preview_lists_what_would_move_and_moves_nothing(signed_in, jonas_cases) -> None:
    client = signed_in("manager")
    page = client.get("/owners/reassign/", {"person": "jonas"}).content.decode()
    assert "Reassign all open cases of jonas" in page and "Preview" in page
    preview = client.get(
        "/owners/reassign/", {"person": "jonas", "to_team": "finance-ops", "reason": "holiday"}
    ).content.decode()
    assert '<strong class="num" data-testid="move-count">3</strong>' in preview
    assert (
        preview.count("billing / jonas") == 3 and preview.count("<strong>finance-ops</strong>") == 3
    )
    assert "Move 3 cases" in preview
    assert not ExceptionCase.objects.filter(owner_team__slug="finance-ops").exists()


def test_a_confirmed_move_reassigns_each_case_with_its_own_audit_entry(
    signed_in, jonas_cases
) -> None:
    response = signed_in("manager").post(
        "/owners/reassign/",
        {"person": "jonas", "to_team": "finance-ops", "reason": "jonas is on holiday",
         "confirm": "1"},
    )  # fmt: skip
    assert response.status_code == 302 and "/owners/reassign/job/?" in response["Location"]
    moved = ExceptionCase.objects.filter(pk__in=[c.pk for c in jonas_cases])
    assert {(c.owner_team.slug, c.owner_user) for c in moved} == {("finance-ops", None)}
    entries = AuditEntry.objects.filter(action="case.assign", reason="jonas is on holiday")
    assert sorted(int(e.object_id) for e in entries) == sorted(c.pk for c in jonas_cases)
    job = BulkJob.objects.get()
    assert (job.action, job.note, job.succeeded) == ("assign", "jonas is on holiday", 3)
    progress = signed_in("manager").get(response["Location"]).content.decode()
    assert 'data-testid="bulk-job"' in progress and "3 succeeded" in progress


def test_a_move_needs_a_reason_and_a_target(signed_in, jonas_cases) -> None:
    client = signed_in("manager")
    no_reason = client.post(
        "/owners/reassign/", {"person": "jonas", "to_team": "finance-ops", "confirm": "1"}
    )
    assert no_reason.status_code == 422 and "a reason is required" in no_reason.content.decode()
    nowhere = client.post("/owners/reassign/", {"person": "jonas", "reason": "r", "confirm": "1"})
    assert nowhere.status_code == 422 and "Choose a team or a person" in nowhere.content.decode()
    assert not BulkJob.objects.exists()


def test_a_move_to_a_person_keeps_each_case_s_team(signed_in, flow, roles) -> None:
    cases = [factories.case(flow=flow) for _ in range(2)]
    signed_in("manager").post(
        "/owners/reassign/",
        {"case": [c.pk for c in cases], "to_person": "ines", "reason": "r", "confirm": "1"},
    )
    moved = ExceptionCase.objects.filter(pk__in=[c.pk for c in cases])
    assert {(c.owner_team.slug, c.owner_user.username) for c in moved} == {("billing", "ines")}


def test_an_operator_gets_403_on_reassigning_someone_else_s_case(
    signed_in, jonas_cases, roles
) -> None:
    client = signed_in("operator")
    case = jonas_cases[0]
    page = client.get(f"/exceptions/{case.pk}/").content.decode()
    assert f"/exceptions/{case.pk}/assign/" not in page
    assert f"/exceptions/{case.pk}/claim/" not in page
    for action, data in (("assign", {"team": "support"}), ("claim", {})):
        response = client.post(
            f"/exceptions/{case.pk}/{action}/", {"version": case.version, **data}
        )
        assert response.status_code == 403
    assert ExceptionCase.objects.get(pk=case.pk).owner_user.username == "jonas"


def test_an_operator_reassigns_their_own_case(signed_in, flow, roles) -> None:
    case = factories.case(flow=flow, owner_user=roles["operator"])
    response = signed_in("operator").post(
        f"/exceptions/{case.pk}/assign/", {"version": case.version, "team": "finance-ops"}
    )
    assert response.status_code == 302
    assert ExceptionCase.objects.get(pk=case.pk).owner_team.slug == "finance-ops"


def test_an_operator_s_bulk_move_leaves_other_people_s_cases(signed_in, jonas_cases, roles) -> None:
    own = factories.case(flow=jonas_cases[0].workflow, owner_user=roles["operator"])
    client = signed_in("operator")
    preview = client.get(
        "/owners/reassign/", {"team": "billing", "to_team": "finance-ops", "reason": "r"}
    ).content.decode()
    assert "(only those that are yours or unassigned)" in preview
    assert 'data-testid="move-count">1<' in preview
    client.post(
        "/owners/reassign/",
        {"team": "billing", "to_team": "finance-ops", "reason": "r", "confirm": "1"},
    )
    assert ExceptionCase.objects.get(pk=own.pk).owner_team.slug == "finance-ops"
    assert all(
        c.owner_user.username == "jonas"
        for c in ExceptionCase.objects.filter(pk__in=[c.pk for c in jonas_cases])
    )


def test_team_edits_are_403_for_an_operator(signed_in, teams) -> None:
    client = signed_in("operator")
    assert client.post("/owners/teams/billing/rename/", {"name": "X"}).status_code == 403
    assert client.post("/owners/teams/new/", {"slug": "x", "name": "X"}).status_code == 403


def test_a_bulk_assign_by_an_operator_skips_cases_other_people_own(jonas_cases, roles) -> None:
    job = services.bulk_job_create(
        actor=roles["operator"], action="assign", params={"team": "support", "user": None},
        note="", cases=ExceptionCase.objects.filter(pk=jonas_cases[0].pk), scope="test",
    )  # fmt: skip
    job = services.bulk_job_run_inline(job=job)
    assert (job.succeeded, job.skipped) == (0, 1)
    assert "only a manager or an admin moves it" in job.items.get().message


def test_the_queue_links_to_a_previewed_reassignment_of_everything_matching(
    signed_in, flow, jonas_cases
) -> None:
    client = signed_in("manager")
    queue = client.get("/queue/", {"owner": "jonas"}).content.decode()
    link = re.search(r'href="([^"]+)" data-testid="reassign-matching"', queue).group(1)
    preview = client.get(
        link.replace("&amp;", "&") + "&to_team=finance-ops&reason=r"
    ).content.decode()
    assert 'data-testid="move-count">3<' in preview


def test_an_auditor_cannot_reassign_at_all(signed_in, jonas_cases) -> None:
    client = signed_in("auditor")
    assert client.get("/owners/reassign/", {"person": "jonas"}).status_code == 403
    posted = client.post(
        "/owners/reassign/",
        {"person": "jonas", "to_team": "support", "reason": "r", "confirm": "1"},
    )
    assert posted.status_code == 403 and not BulkJob.objects.exists()
