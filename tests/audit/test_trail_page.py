"""The /audit/ page: who sees what, its filters, its pages, and how an entry reads."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import transaction

from audit.context import current_request_id
from audit.models import AuditEntry
from audit.services import audit_record, audit_seal_pending
from exceptions.services import case_assign, case_claim
from tests import factories
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def entries_on(page: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'data-entry="(\d+)"', page)]


@pytest.fixture
def history(make_user, operator):
    """An operator claims and reassigns a case; an admin changes a person; a test thing."""
    case = factories.case()
    MembershipFactory(user=operator, team=factories.team("revenue-ops"), role="lead")
    admin = make_user("admin", username="ada")
    token = current_request_id.set("req-claim-0001")
    try:
        claim = case_claim(case=case, actor=operator, note="mine")
    finally:
        current_request_id.reset(token)
    assign = case_assign(case=claim, actor=operator, team=factories.team("sales-managers"))
    with transaction.atomic():
        person = audit_record(
            actor=admin,
            action="user.change",
            target=operator,
            before={"groups": ["operator"], "is_active": True},
            after={"groups": ["manager", "operator"], "is_active": True},
            reason="promoted",
        )
    return {"case": assign, "admin": admin, "person": person}


def test_an_auditor_sees_every_entry_with_the_actor_roles_memberships_diff_and_seal(
    client, auditor, history
) -> None:
    audit_seal_pending()
    client.force_login(auditor)
    page = client.get("/audit/").content.decode()
    assert len(entries_on(page)) == AuditEntry.objects.count()
    assert "promoted" in page
    assert "revenue-ops (lead)" in page  # olivia's membership when she claimed
    assert '<span class="tag">operator</span>' in page
    # The diff names the changed path only, with before and after.
    assert '<th scope="row">groups</th>' in page
    assert "<ins>[&quot;manager&quot;, &quot;operator&quot;]</ins>" in page
    assert "is_active" not in page
    assert 'class="tag tag-ok">#1</span>' in page
    assert f'href="/exceptions/{history["case"].pk}/"' in page
    assert "req-claim-0001" in page


def test_an_unsealed_entry_shows_sealing(client, auditor, history) -> None:
    client.force_login(auditor)
    assert "sealing" in client.get("/audit/").content.decode()


def test_an_operator_sees_entries_of_cases_and_their_own_but_not_of_people(
    client, operator, history
) -> None:
    client.force_login(operator)
    shown = set(entries_on(client.get("/audit/").content.decode()))
    mine = set(AuditEntry.objects.filter(actor_id=operator.pk).values_list("pk", flat=True))
    assert mine and mine <= shown
    assert history["person"].pk not in shown  # about a person: operators cannot view people


@pytest.mark.parametrize(
    ("query", "actions"),
    [
        ("actor=ada", ["user.change"]),
        ("action=case.", ["case.assign", "case.claim"]),
        ("action=case.claim", ["case.claim"]),
        ("object_type=auth.user", ["user.change"]),
        ("workflow=lead-routing", ["case.assign", "case.claim"]),
        ("request_id=req-claim-0001", ["case.claim"]),
        ("actor=nobody", []),
    ],
)
def test_filters_narrow_the_trail(client, auditor, history, query: str, actions) -> None:
    client.force_login(auditor)
    page = client.get(f"/audit/?{query}").content.decode()
    shown = AuditEntry.objects.filter(pk__in=entries_on(page))
    assert sorted(shown.values_list("action", flat=True)) == actions


def test_the_object_filter_finds_one_case(client, auditor, history) -> None:
    client.force_login(auditor)
    case = history["case"]
    page = client.get(f"/audit/?object_type=exceptions.exceptioncase&object_id={case.pk}")
    assert {
        e.object_id for e in AuditEntry.objects.filter(pk__in=entries_on(page.content.decode()))
    } == {str(case.pk)}


def test_the_time_range_is_whole_days_in_the_consoles_zone(client, auditor) -> None:
    for day in (1, 2, 3):
        with time_machine.travel(datetime(2026, 3, day, 12, tzinfo=UTC)), transaction.atomic():
            audit_record(actor=None, action=f"test.day{day}")
    client.force_login(auditor)
    page = client.get("/audit/?since=2026-03-02&until=2026-03-02").content.decode()
    shown = AuditEntry.objects.filter(pk__in=entries_on(page))
    assert list(shown.values_list("action", flat=True)) == ["test.day2"]


def test_pages_follow_one_another_newest_first_and_a_made_up_cursor_is_a_400(
    client, auditor
) -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    with transaction.atomic():
        for n in range(120):
            with time_machine.travel(start + timedelta(minutes=n)):
                audit_record(actor=None, action="test.thing", object_id=n)
    client.force_login(auditor)
    seen: list[int] = []
    url = "/audit/?action=test.thing"
    while url:
        page = client.get(url).content.decode()
        seen += entries_on(page)
        found = re.search(r'href="(\?[^"]*after=[^"]*)"', page)
        url = "/audit/" + found.group(1).replace("&amp;", "&") if found else ""
    expected = list(
        AuditEntry.objects.filter(action="test.thing")
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)
    )
    assert seen == expected
    assert client.get("/audit/?after=bm90LWEtY3Vyc29y").status_code == 400


def test_a_htmx_request_gets_only_the_results(client, auditor, history) -> None:
    client.force_login(auditor)
    response = client.get("/audit/?actor=ada", headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="results"')
    assert "<html" not in html
    assert response["Vary"] and "HX-Request" in response["Vary"]


def test_the_auditor_reaches_the_trail_from_the_navigation(client, auditor) -> None:
    client.force_login(auditor)
    assert 'href="/audit/"' in client.get("/").content.decode()


def test_an_entry_names_the_workflow_of_what_it_is_about(operator) -> None:
    case = factories.case()
    case_claim(case=case, actor=operator)
    entry = AuditEntry.objects.get(action="case.claim")
    assert entry.workflow == "lead-routing"
