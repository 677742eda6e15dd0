"""The case file: one document a reviewer who was not there can follow, as JSON and on paper."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audit.canonical import canonical_hash, canonical_json
from audit.models import AuditEntry
from audit.services import audit_record
from exceptions.approvals.models import ApprovalRequest
from exceptions.models import ExceptionCase
from tests import factories
from tests.support.case_files import finance_teams, refund_story, retries_pile_up
from tests.support.sinks import Sink
from workflows.models import Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(make_user: Callable[..., Any]) -> Any:
    return make_user("manager", username="mia", first_name="Mia", last_name="Lopez")


@pytest.fixture
def refund(sink: Sink, manager: Any, operator: Any) -> tuple[Event, Event]:
    finance_teams(manager)
    return refund_story(sink, manager, operator)


@pytest.fixture
def reader(client: Any, auditor: Any) -> Any:
    client.force_login(auditor)
    return client


def case_file(client: Any, event: Event, **params: Any) -> dict[str, Any]:
    response = client.get(f"/events/{event.pk}/case-file.json", params)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)


def milestone(item: dict[str, Any], original: Event, replay: Event) -> str | None:
    """The step of the refund's story a timeline line is, if it is one the story names."""
    summary, kind, event = item["summary"], item["kind"], item["event"]
    which = {original.pk: "original", replay.pk: "replay"}.get(event, "")
    if kind == "received":
        return f"{which} received"
    if kind == "decision" and summary.startswith("Review: Held for review"):
        return f"{which} held for review"
    if kind == "case_opened":
        reason = "review" if "Review required" in summary else "rejected"
        return f"case opened: {reason}"
    if kind == "entry" and "approved the review" in summary:
        return f"review approved by {item['actor']} as {','.join(item['roles'])}"
    if kind == "entry" and "asked for a second person's approval" in summary:
        return f"approval asked by {item['actor']}"
    if kind == "entry" and summary.startswith(f"{item['actor']} approved request"):
        return f"request approved by {item['actor']} as {','.join(item['roles'])}"
    if kind == "attempt":
        return f"{which} attempt: {summary.split(': ', 1)[1].split(',')[0]}"
    if kind == "entry" and "replayed the event from case" in summary:
        return f"replayed by {item['actor']}"
    if kind == "outcome":
        return f"outcome: {summary.split(' (')[0]}"
    if kind == "entry" and summary.startswith("payments outcome.report"):
        return "confirmed by payments"
    return None


# --- what the file holds, in order -------------------------------------------------------------


def test_the_case_file_of_a_reviewed_approved_replayed_and_confirmed_refund_tells_it_in_order(
    refund: tuple[Event, Event], reader: Any
) -> None:
    original, replay = refund
    document = case_file(reader, original)
    body = document["body"]

    story_told = [
        m for m in (milestone(i, original, replay) for i in body["timeline"]) if m is not None
    ]
    assert story_told == [
        "original received",
        "original held for review",
        "case opened: review",
        "review approved by mia as manager",
        "original attempt: rejected",
        "case opened: rejected",
        "approval asked by olivia",
        "request approved by mia as manager",
        "replayed by olivia",
        "replay received",
        "replay held for review",
        "case opened: review",
        "review approved by mia as manager",
        "replay attempt: failed (will retry)",
        "replay attempt: succeeded",
        "outcome: Outcome achieved",
        "confirmed by payments",
    ]
    steps = [i["summary"].split(":")[0] for i in body["timeline"] if i["kind"] == "decision"]
    assert steps[:4] == ["Validate", "Enrich", "Route", "Review"]
    times = [i["at"] for i in body["timeline"]]
    assert times == sorted(times)

    # Both events, every attempt, the outcome and all three cases are in the one file.
    assert [e["id"] for e in body["events"]] == [original.pk, replay.pk]
    assert [e["relation"] for e in body["events"]] == ["subject", "later"]
    assert body["attempts"]["total"] == 3 and body["outcomes"]["total"] == 1
    assert sorted(c["resolution_code"] for c in body["cases"]["items"]) == [
        "approved",
        "approved",
        "replayed",
    ]
    # Each decision names its rule's version and that version's hash.
    version_hash = original.version.content_hash
    assert all(d["version_hash"] == version_hash for d in body["decisions"]["items"])
    assert all(d["record"]["version"] == 1 for d in body["decisions"]["items"])


def test_the_approval_keeps_the_role_the_approver_held_then_after_it_is_taken_away(
    refund: tuple[Event, Event], reader: Any, manager: Any
) -> None:
    original, _ = refund
    before = case_file(reader, original)["body"]["approvals"]
    assert [(a["kind"], a["by"], a["roles_then"], a["roles_today"]) for a in before] == [
        ("review", "mia", ["manager"], ["manager"]),
        ("request", "mia", ["manager"], ["manager"]),
        ("review", "mia", ["manager"], ["manager"]),
    ]
    assert before[0]["memberships_then"] == [{"team": "finance-managers", "role": "lead"}]
    assert before[0]["rule"] == "big-refund" and before[0]["note"] == "Order checked"
    assert [(a["approver_role"], a["role_held_then"]) for a in before] == [("manager", True)] * 3

    manager.groups.remove(Group.objects.get(name="manager"))

    after = case_file(reader, original)["body"]
    assert [(a["roles_then"], a["roles_today"]) for a in after["approvals"]] == [
        (["manager"], []),
    ] * 3
    (request,) = after["approval_requests"]["items"]
    assert (request["decided_by"], request["decider_roles"]) == ("mia", ["manager"])
    mia = next(p for p in after["people"] if p["label"] == "mia")
    assert [stood["roles"] for stood in mia["then"]] == [["manager"]]
    assert mia["today"]["roles"] == []
    page = reader.get(f"/events/{original.pk}/case-file/").content.decode()
    assert page.count('<td data-testid="approval-roles-then"><strong>manager</strong>') == 3


def test_the_approval_request_is_in_the_file_with_what_it_was_bound_to(
    refund: tuple[Event, Event], reader: Any
) -> None:
    original, replay = refund
    body = case_file(reader, original)["body"]
    (request,) = body["approval_requests"]["items"]
    approval = ApprovalRequest.objects.get()
    assert (request["id"], request["kind"], request["state"]) == (
        approval.pk,
        "edited_replay",
        "executed",
    )
    assert request["requested_by"] == "olivia" and request["required_role"] == "manager"
    assert request["payload_hash"] == canonical_hash(replay.payload)
    assert request["result"]["replay_event"] == replay.pk
    carried = AuditEntry.objects.filter(approval_id=approval.pk).order_by("created_at", "id")
    assert request["entries"] == [e.pk for e in carried]
    assert {e.action for e in carried} >= {
        "approval.request",
        "approval.approve",
        "approval.execute",
        "case.replay",
        "event.replay",
    }
    html = reader.get(f"/events/{original.pk}/case-file/").content.decode()
    assert f'data-testid="approval-request-{approval.pk}"' in html


def test_the_owners_at_each_decision_and_today_are_in_the_file(
    refund: tuple[Event, Event], reader: Any
) -> None:
    original, replay = refund
    body = case_file(reader, original)["body"]
    decisions = body["decisions"]["items"]
    validate = next(d for d in decisions if d["record"]["step"] == "validate")
    # Before routing, a refund belongs to the workflow's owner; after, to the route's.
    assert validate["owner_then"]["owner"] == "finance-ops"
    assert validate["owner_then"]["through"].startswith("not routed yet")
    deliver = [d for d in decisions if d["record"]["step"] == "deliver"]
    assert {d["owner_then"]["owner"] for d in deliver} == {"finance-ops"}
    assert [m["username"] for m in deliver[0]["owner_then"]["team"]["members"]] == ["finn"]
    assert all(d["owner_then"]["same_as_today"] for d in decisions)
    routed = [p for p in body["owners"]["events"] if p["decision"] is not None]
    assert [(p["event"], p["owner"]) for p in routed] == [
        (original.pk, "finance-ops"),
        (replay.pk, "finance-ops"),
    ]
    assert [t["owner"] for t in body["owners"]["today"]] == ["finance-ops", "finance-ops"]
    assert [c["opened"]["owner"] for c in body["owners"]["cases"]] == ["finance-ops"] * 3


def test_every_audit_entry_about_the_events_and_their_cases_is_in_with_its_seal(
    refund: tuple[Event, Event], reader: Any
) -> None:
    original, replay = refund
    body = case_file(reader, original)["body"]
    cases = [str(pk) for pk in ExceptionCase.objects.values_list("pk", flat=True)]
    about = (
        AuditEntry.objects.filter(
            object_type="workflows.event", object_id__in=[str(original.pk), str(replay.pk)]
        )
        | AuditEntry.objects.filter(object_type="exceptions.exceptioncase", object_id__in=cases)
        | AuditEntry.objects.filter(approval_id__in=ApprovalRequest.objects.values("pk"))
    )
    expected = list(about.exclude(action="case_file.generate").order_by("created_at", "id"))
    items = body["audit_entries"]["items"]
    assert [i["fields"]["id"] for i in items] == [e.pk for e in expected]
    assert {
        "case.resolve",
        "case.replay",
        "event.replay",
        "event.retry",
        "outcome.report",
        "approval.approve",
    } <= {i["fields"]["action"] for i in items}
    for item, entry in zip(items, expected, strict=True):
        assert item["sealed"] and item["fields"]["seq"] == entry.seq
        assert item["hash"] == entry.hash and item["prev_hash"] == entry.prev_hash
        assert item["hash_matches"] is True


def test_entries_of_an_approval_that_an_included_entry_carries_out_come_with_it(
    refund: tuple[Event, Event], reader: Any, manager: Any
) -> None:
    original, _ = refund
    with transaction.atomic():
        request = audit_record(
            actor=manager,
            action="approval.request",
            object_type="approval_request",
            object_id="41",
            approval_id=41,
        )
        carried = audit_record(actor=manager, action="event.note", target=original, approval_id=41)
        unrelated = audit_record(
            actor=manager,
            action="approval.request",
            object_type="approval_request",
            object_id="42",
            approval_id=42,
        )
    ids = [i["fields"]["id"] for i in case_file(reader, original)["body"]["audit_entries"]["items"]]
    assert request.pk in ids and carried.pk in ids
    assert unrelated.pk not in ids


# --- the document's integrity ------------------------------------------------------------------


def test_the_json_says_its_format_who_made_it_and_its_hash_verifies(
    refund: tuple[Event, Event], reader: Any, auditor: Any
) -> None:
    original, _ = refund
    document = case_file(reader, original)
    assert document["format"] == "handoff.case-file/1"
    assert document["generated_by"] == {"username": "avery", "roles": ["auditor"]}
    assert document["body_sha256"] == canonical_hash(document["body"])
    last = AuditEntry.objects.filter(seq__isnull=False).order_by("-seq").first()
    assert (document["chain_head"]["seq"], document["chain_head"]["hash"]) == (
        last.seq,
        last.hash,
    )
    for item in document["body"]["audit_entries"]["items"]:
        digest = hashlib.sha256(
            item["prev_hash"].encode() + canonical_json(item["fields"])
        ).hexdigest()
        assert digest == item["hash"]
    for name in ("decisions", "attempts", "outcomes"):
        for item in document["body"][name]["items"]:
            assert canonical_hash(item["record"]) == item["record_sha256"]
    for event in document["body"]["events"]:
        assert canonical_hash(event["payload"]) == event["payload_hash"]
        assert event["payload_hash_matches"] is True


def test_an_edited_body_no_longer_matches_its_hash(
    refund: tuple[Event, Event], reader: Any
) -> None:
    document = case_file(reader, refund[0])
    document["body"]["approvals"][0]["roles_then"] = ["operator"]
    assert canonical_hash(document["body"]) != document["body_sha256"]


def test_the_json_and_the_printable_page_hold_the_same_document(
    refund: tuple[Event, Event], reader: Any
) -> None:
    original, _ = refund
    page = reader.get(f"/events/{original.pk}/case-file/")
    assert page.status_code == 200
    html = page.content.decode()
    document = case_file(reader, original)
    # Nothing changed in between: the same body, to the byte.
    assert f'data-testid="body-sha256">{document["body_sha256"]}<' in html
    body = document["body"]
    for item in body["audit_entries"]["items"]:
        assert item["hash"] in html
        assert f'data-entry="{item["fields"]["id"]}"' in html
    for item in body["decisions"]["items"] + body["attempts"]["items"]:
        assert item["record_sha256"] in html
    assert html.count('data-kind="') == len(body["timeline"])
    for heading in (
        "What came in",
        "What was decided and why",
        "Who owned it",
        "Who approved",
        "What was sent",
        "What happened",
    ):
        assert f">{heading}</h2>" in html


def test_generating_a_case_file_is_audited_once(
    refund: tuple[Event, Event], reader: Any, auditor: Any
) -> None:
    original, _ = refund
    document = case_file(reader, original)
    (entry,) = AuditEntry.objects.filter(action="case_file.generate")
    assert (entry.actor_id, entry.object_type, entry.object_id) == (
        auditor.pk,
        "workflows.event",
        str(original.pk),
    )
    assert entry.actor_roles == ["auditor"]
    assert entry.after["body_sha256"] == document["body_sha256"]
    assert entry.after["as"] == "json" and entry.after["case"] is None
    reader.get(f"/events/{original.pk}/case-file/")
    assert AuditEntry.objects.filter(action="case_file.generate").count() == 2


# --- reaching it -------------------------------------------------------------------------------


def test_a_case_leads_to_its_events_file_marked_as_asked_from_the_case(
    refund: tuple[Event, Event], reader: Any
) -> None:
    original, _ = refund
    case = ExceptionCase.objects.get(event=original, reason_id="delivery_rejected")
    for suffix in ("case-file/", "case-file.json"):
        response = reader.get(f"/exceptions/{case.pk}/{suffix}")
        assert response.status_code == 302
        assert response["Location"] == f"/events/{original.pk}/{suffix}?case={case.pk}"
    document = case_file(reader, original, case=case.pk)
    assert document["body"]["subject"]["case"] == case.pk
    html = reader.get(f"/events/{original.pk}/case-file/", {"case": case.pk}).content.decode()
    assert "(this file's case)" in html


def test_the_event_and_case_pages_link_to_the_case_file(
    refund: tuple[Event, Event], reader: Any
) -> None:
    original, _ = refund
    case = ExceptionCase.objects.filter(event=original).first()
    event_page = reader.get(f"/events/{original.pk}/").content.decode()
    assert f'href="/events/{original.pk}/case-file/"' in event_page
    assert f'href="/events/{original.pk}/case-file.json"' in event_page
    case_page = reader.get(f"/exceptions/{case.pk}/").content.decode()
    assert f'href="/exceptions/{case.pk}/case-file/"' in case_page


@pytest.mark.parametrize("role", ["operator", "manager", "admin", "auditor"])
def test_whoever_may_see_the_event_may_read_its_case_file(
    client: Any, make_user: Callable[..., Any], role: str
) -> None:
    case = factories.case()
    client.force_login(make_user(role, username=f"someone-{role}"))
    assert client.get(f"/events/{case.event_id}/case-file/").status_code == 200
    assert client.get(f"/events/{case.event_id}/case-file.json").status_code == 200


def test_someone_without_a_role_is_refused_and_nothing_is_recorded(
    client: Any, make_user: Callable[..., Any]
) -> None:
    case = factories.case()
    client.force_login(make_user(username="nobody"))
    for url in (
        f"/events/{case.event_id}/case-file/",
        f"/events/{case.event_id}/case-file.json",
        f"/exceptions/{case.pk}/case-file/",
    ):
        assert client.get(url).status_code == 403
    assert not AuditEntry.objects.filter(action="case_file.generate").exists()


def test_a_visitor_who_is_not_signed_in_is_sent_to_sign_in(client: Any) -> None:
    case = factories.case()
    response = client.get(f"/events/{case.event_id}/case-file.json")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_unknown_events_and_cases_are_not_found(reader: Any) -> None:
    case = factories.case()
    other = factories.case()
    assert reader.get("/events/999999/case-file/").status_code == 404
    assert reader.get("/events/999999/case-file.json").status_code == 404
    assert reader.get("/exceptions/999999/case-file/").status_code == 404
    # A case of another event is not this event's.
    response = reader.get(f"/events/{case.event_id}/case-file.json", {"case": other.pk})
    assert response.status_code == 404


def test_a_case_that_is_not_a_number_is_a_clear_error(reader: Any) -> None:
    case = factories.case()
    response = reader.get(f"/events/{case.event_id}/case-file.json", {"case": "seven"})
    assert response.status_code == 400
    assert json.loads(response.content)["error"]["code"] == "invalid_case"
    page = reader.get(f"/events/{case.event_id}/case-file/", {"case": "seven"})
    assert page.status_code == 400 and "case must be a case number" in page.content.decode()


def test_only_get_reads_a_case_file(reader: Any) -> None:
    case = factories.case()
    assert reader.post(f"/events/{case.event_id}/case-file/").status_code == 405


# --- large events ------------------------------------------------------------------------------


def queries_for_case_file(client: Any, event: Event) -> tuple[int, dict[str, Any]]:
    with CaptureQueriesContext(connection) as queries:
        document = case_file(client, event)
    return len(queries), document


def test_a_large_event_keeps_both_ends_of_each_section_and_says_what_it_left_out(
    reader: Any,
) -> None:
    case = factories.case()
    event = Event.objects.get(pk=case.event_id)
    retries_pile_up(event, 1200)
    body = case_file(reader, event)["body"]
    attempts = body["attempts"]
    assert (attempts["total"], attempts["omitted"], attempts["omitted_after"]) == (1200, 700, 250)
    numbers = [a["record"]["number"] for a in attempts["items"]]
    assert numbers == list(range(1, 251)) + list(range(951, 1201))
    assert body["decisions"]["total"] == 1201 and len(body["decisions"]["items"]) == 500
    assert body["audit_entries"]["total"] == 1200 and body["audit_entries"]["omitted"] == 200
    gaps = [i for i in body["timeline"] if i["kind"] == "gap"]
    assert {g["ref"]["section"] for g in gaps} == {"decisions", "attempts", "audit_entries"}


def test_the_queries_for_a_case_file_do_not_grow_with_its_rows(
    reader: Any, django_assert_max_num_queries: Any
) -> None:
    case = factories.case()
    event = Event.objects.get(pk=case.event_id)
    # Past 1,000 rows every long section is already cut to its two ends.
    retries_pile_up(event, 1100)
    at_1100, _ = queries_for_case_file(reader, event)
    retries_pile_up(event, 3900)
    with django_assert_max_num_queries(at_1100):
        document = case_file(reader, event)
    assert document["body"]["attempts"]["total"] == 5000
    assert at_1100 <= 45
