"""Emails to owners: on assignment, on an SLA breach, and escalation to leads then the first
fallback team, each step once; a person can turn them off."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from audit.models import AuditEntry
from exceptions import tasks
from exceptions.models import Notice
from exceptions.notices import cases_escalate, notices_send, notification_email_set
from exceptions.services import case_acknowledge, case_assign
from tests import factories
from workflows.models import Membership

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailboxes(teams, roles):
    """Everyone gets an address: <username>@example.com."""
    for membership in Membership.objects.select_related("user"):
        membership.user.email = f"{membership.user.username}@example.com"
        membership.user.save()
    return {m.user.username: m.user for m in Membership.objects.select_related("user")}


def sent_to() -> list[list[str]]:
    return [message.to for message in mail.outbox]


def test_an_assignment_emails_the_new_owner_with_a_link(flow, mailboxes, roles) -> None:
    case = factories.case(flow=flow)
    case_assign(case=case, actor=roles["admin"], user=mailboxes["ines"], note="yours")
    assert notices_send() == 1
    (message,) = mail.outbox
    assert message.to == ["ines@example.com"]
    assert message.subject == f"[Handoff] Case {case.pk} (Validation failed) is now yours"
    assert f"http://127.0.0.1:8000/exceptions/{case.pk}/" in message.body
    entry = AuditEntry.objects.get(action="notify.assigned")
    assert (entry.actor_kind, entry.after["to"]) == ("system", ["ines"])
    assert notices_send() == 0  # sent once


def test_a_move_to_a_team_emails_its_people_but_not_who_moved_it(flow, teams, mailboxes) -> None:
    case = factories.case(flow=flow, owner=teams["finance-ops"])
    case_assign(case=case, actor=mailboxes["jonas"], team=teams["billing"])
    notices_send()
    assert sorted(sent_to()) == [["ines@example.com"], ["olivia@example.com"]]


def test_many_notices_for_one_person_are_one_email(flow, mailboxes, roles) -> None:
    for _ in range(30):
        case_assign(case=factories.case(flow=flow), actor=roles["admin"], user=mailboxes["ines"])
    assert notices_send() == 1
    assert mail.outbox[0].subject == "[Handoff] 30 cases need you"
    assert mail.outbox[0].body.count("/exceptions/") == 30


def test_a_person_who_turned_emails_off_gets_none(flow, mailboxes, roles) -> None:
    notification_email_set(user=mailboxes["ines"], email=False)
    case_assign(case=factories.case(flow=flow), actor=roles["admin"], user=mailboxes["ines"])
    assert notices_send() == 0 and not Notice.objects.exists()


def test_a_breach_sends_one_email_and_escalates_once_not_on_every_sweep(
    flow, mailboxes, roles
) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        case = factories.case(flow=flow)
        case_assign(case=case, actor=roles["admin"], user=mailboxes["ines"])
        notices_send()
        mail.outbox.clear()

    with time_machine.travel(start + timedelta(minutes=31), tick=False):
        for _ in range(3):  # beat sweeps every minute; three sweeps at once do no more
            tasks.escalate()
        tasks.send_notices()
    assert sorted(sent_to()) == [["ines@example.com"], ["jonas@example.com"]]
    breach = next(m for m in mail.outbox if m.to == ["ines@example.com"])
    assert breach.subject.startswith(f"[Handoff] Case {case.pk} (Validation failed) breached")
    lead = next(m for m in mail.outbox if m.to == ["jonas@example.com"])
    assert "escalated to the leads of billing" in lead.subject

    mail.outbox.clear()
    for minutes in (32, 40, 50):  # the leads have their turn: no more, however often it sweeps
        with time_machine.travel(start + timedelta(minutes=minutes), tick=False):
            tasks.escalate()
            tasks.send_notices()
    assert mail.outbox == []

    with time_machine.travel(start + timedelta(minutes=62), tick=False):
        tasks.escalate()
        tasks.escalate()
        tasks.send_notices()
    assert sent_to() == [["femi@example.com"]]
    assert "finance-ops, the first fallback team" in mail.outbox[0].subject

    mail.outbox.clear()
    with time_machine.travel(start + timedelta(hours=3), tick=False):
        assert cases_escalate() == 0
        tasks.send_notices()
    assert mail.outbox == []
    steps = AuditEntry.objects.filter(action__in=["notify.breach", "case.escalate"])
    assert [(e.action, e.after.get("level"), e.actor_kind) for e in steps.order_by("id")] == [
        ("notify.breach", None, "system"),
        ("case.escalate", "leads", "system"),
        ("case.escalate", "fallback", "system"),
    ]


def test_an_acknowledged_breach_is_not_escalated(flow, mailboxes, roles) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        case = factories.case(flow=flow)
        case = case_assign(case=case, actor=roles["admin"], user=mailboxes["ines"])
        case_acknowledge(case=case, actor=mailboxes["ines"])
        Notice.objects.update(sent_at=start)
    with time_machine.travel(start + timedelta(hours=5), tick=False):  # resolve clock breached
        cases_escalate()
        cases_escalate()
        notices_send()
    assert sent_to() == [["ines@example.com"]]
    assert not AuditEntry.objects.filter(action="case.escalate").exists()


def test_a_team_without_leads_escalates_straight_to_the_fallback(flow, mailboxes, roles) -> None:
    Membership.objects.filter(role="lead").update(role="member")
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        factories.case(flow=flow)
    with time_machine.travel(start + timedelta(minutes=31), tick=False):
        cases_escalate()
        notices_send()
    people = sorted(to for (to,) in sent_to())
    # The breach to the team's people, and the escalation to finance-ops at once.
    assert people == ["femi@example.com", "ines@example.com", "jonas@example.com",
                      "olivia@example.com"]  # fmt: skip


def test_only_the_person_turns_their_own_emails_off(signed_in, roles, teams) -> None:
    client = signed_in("operator")
    page = client.get("/owners/people/olivia/").content.decode()
    assert "Turn my emails off" in page
    client.post("/owners/people/olivia/emails/", {"email": "off"})
    assert "Turn my emails on" in client.get("/owners/people/olivia/").content.decode()
    assert client.post("/owners/people/ines/emails/", {"email": "off"}).status_code == 403
