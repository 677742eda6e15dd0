"""Four-eyes: review gates that name their approver, and risky actions that wait for a second
person who holds the required role, bound to exactly what was asked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import AbstractUser
from django.utils import timezone

from audit.models import AuditEntry
from exceptions import actions, services, tasks
from exceptions.approvals.binding import Seen
from exceptions.approvals.models import ApprovalRequest
from exceptions.approvals.services import (
    ApprovalForbidden,
    ApprovalRefused,
    ApprovalStale,
    approval_approve,
    approval_reject,
    approval_request_edit,
)
from exceptions.models import CaseState, ExceptionCase
from tests import factories
from tests.support.approvals import approve, decide_form, shown
from tests.support.engine import process_due, reload
from workflows.four_eyes import ApprovalRequired
from workflows.models import Event, EventState, Workflow, WorkflowOwnership
from workflows.services.engine import event_replay

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def manager(make_user: Callable[..., AbstractUser]) -> AbstractUser:
    return make_user("manager", username="marcus")


@pytest.fixture
def admin(make_user: Callable[..., AbstractUser]) -> AbstractUser:
    return make_user("admin", username="ada")


@pytest.fixture
def refunds() -> Workflow:
    flow = factories.workflow(factories.reviewed_refund_definition())
    factories.MembershipFactory(team=factories.team("finance-ops"))  # someone to route to
    return flow


def held_refund(refunds: Workflow, amount: float = 1500) -> ExceptionCase:
    """A refund the big-refund gate held for review: its review case."""
    event = factories.event_create(refunds.current_version, {"amount": amount, "order": "A-1"})
    process_due()
    assert reload(event).state == EventState.NEEDS_ATTENTION
    return ExceptionCase.objects.get(event=event, reason_id="review_required")


def replay_edit(case: ExceptionCase, actor: Any, payload: dict[str, Any], note: str) -> str:
    """The case page's "replay with an edited payload", through the action registry."""
    action = actions.ACTIONS["replay_edit"]
    form = action.form({"version": case.version, "payload": _json(payload), "note": note})
    assert form.is_valid(), form.errors
    return actions.perform(action, case=case, actor=actor, form=form)


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


def requested_edit(refunds: Workflow, operator: Any, amount: float = 900) -> ApprovalRequest:
    case = held_refund(refunds)
    replay_edit(case, operator, {"amount": amount, "order": "A-1"}, "customer kept one item")
    return ApprovalRequest.objects.get(case=case)


# --- review gates that name their approver -------------------------------------------------------


def test_the_review_decision_records_which_role_may_approve(refunds) -> None:
    case = held_refund(refunds)
    decision = case.event.decisions.get(step="review")
    assert decision.result["approver_role"] == "manager"
    assert "only a manager may approve" in case.detail


def test_an_operator_gets_403_approving_a_manager_only_review_but_may_comment(
    client, refunds, operator, manager
) -> None:
    case = held_refund(refunds)
    client.force_login(operator)
    approve_it = {"version": case.version, "resolution": "approved", "note": "fine by me"}
    refused = client.post(f"/exceptions/{case.pk}/resolve/", approve_it)
    assert refused.status_code == 403
    refused = client.post(f"/exceptions/{case.pk}/resolve/", approve_it, **HTMX)
    assert refused.status_code == 403
    assert "Only a manager may approve this review" in refused.content.decode()
    assert ExceptionCase.objects.get(pk=case.pk).is_open
    commented = client.post(f"/exceptions/{case.pk}/comment/", {"body": "customer is a VIP"})
    assert commented.status_code == 302
    assert case.comments.get().body == "customer is a VIP"

    client.force_login(manager)
    client.post(f"/exceptions/{case.pk}/resolve/", approve_it)
    assert ExceptionCase.objects.get(pk=case.pk).resolution_code == "approved"
    entry = AuditEntry.objects.get(action="case.resolve", object_id=str(case.pk))
    assert (entry.actor_label, entry.actor_roles) == ("marcus", ["manager"])


def test_a_bulk_approval_skips_the_reviews_the_operator_may_not_approve(refunds, operator) -> None:
    case = held_refund(refunds)
    job = services.bulk_job_create(
        actor=operator,
        action="resolve",
        params={"resolution": "approved"},
        note="all fine",
        cases=ExceptionCase.objects.filter(pk=case.pk),
        scope="selected",
    )
    job = services.bulk_job_run_inline(job=job)
    assert (job.succeeded, job.skipped) == (0, 1)
    assert job.items.get().message.startswith("Only a manager may approve")


def test_a_gate_naming_a_role_that_does_not_exist_is_refused_at_load(admin) -> None:
    from workflows.definitions import DefinitionError
    from workflows.services.definitions import workflows_load

    factories.team("finance-ops")
    text = """slug: refunds
name: Refunds
owner: finance-ops
routes: [{name: all, when: 'true', owner: finance-ops}]
review:
  - {name: big, when: 'payload.amount > 1000', reason: Big, approver_role: boss}
"""
    with pytest.raises(DefinitionError, match="approver_role: unknown role 'boss'"):
        workflows_load(sources=[("refunds.yaml", text)], actor=admin)
    loaded = workflows_load(
        sources=[("refunds.yaml", text.replace("boss", "manager"))], actor=admin
    )
    assert loaded[0].version.definition["review"][0]["approver_role"] == "manager"


# --- risky actions become requests ---------------------------------------------------------------


def test_an_edited_replay_that_lowers_a_refund_below_the_threshold_still_needs_approval(
    refunds, operator
) -> None:
    case = held_refund(refunds)
    with pytest.raises(ApprovalRequired):  # the engine itself, whatever the new amount
        event_replay(
            event=case.event, actor=operator, payload_override={"amount": 900}, note="lower"
        )
    said = replay_edit(case, operator, {"amount": 900, "order": "A-1"}, "customer kept one item")
    approval = ApprovalRequest.objects.get(case=case)
    assert f"Approval request #{approval.pk} now waits for a manager" in said
    assert (approval.kind, approval.state, approval.event_id) == (
        "edited_replay",
        "pending",
        case.event_id,
    )
    assert approval.workflow_version_id == refunds.current_version_id
    assert not Event.objects.filter(replay_of=case.event_id).exists()
    assert ExceptionCase.objects.get(pk=case.pk).is_open


def test_an_approved_edited_replay_runs_and_every_entry_carries_the_approval_id(
    refunds, operator, manager
) -> None:
    approval = requested_edit(refunds, operator)
    done = approve(approval, by=manager, comment="partial refund agreed")
    assert done.state == "executed"
    assert (done.decided_by, done.decider_roles) == (manager, ["manager"])
    replay = Event.objects.get(pk=done.result["replay_event"])
    assert replay.payload == {"amount": 900, "order": "A-1"}
    assert ExceptionCase.objects.get(pk=approval.case_id).resolution_code == "replayed"
    process_due()
    assert reload(replay).state == EventState.SUCCEEDED  # 900 is under the gate: no review

    about = AuditEntry.objects.filter(object_type="approval_request", object_id=str(approval.pk))
    assert list(about.order_by("id").values_list("action", flat=True)) == [
        "approval.request",
        "approval.approve",
        "approval.execute",
    ]
    assert {(e.approval_id, e.workflow) for e in about} == {(approval.pk, "refunds")}
    assert about.get(action="approval.approve").actor_roles == ["manager"]
    ran = AuditEntry.objects.filter(action__in=["case.replay", "event.replay"])
    assert [e.approval_id for e in ran] == [approval.pk, approval.pk]
    assert ran.get(action="event.replay").actor_label == "olivia"  # the requester's action


def test_nobody_approves_their_own_request_not_even_an_admin(refunds, admin, client) -> None:
    approval = requested_edit(refunds, admin)
    with pytest.raises(ApprovalForbidden, match="You asked for this"):
        approve(approval, by=admin)
    client.force_login(admin)
    response = client.post(f"/approvals/{approval.pk}/approve/", decide_form(approval), **HTMX)
    assert response.status_code == 403
    assert "You asked for this: someone else must decide it." in response.content.decode()
    assert ApprovalRequest.objects.get(pk=approval.pk).state == "pending"
    with pytest.raises(ApprovalForbidden):
        approval_reject(approval=approval, actor=admin, version=1, comment="never mind")


def test_an_operator_cannot_decide_and_an_auditor_sees_no_forms(
    refunds, operator, auditor, make_user, client
) -> None:
    approval = requested_edit(refunds, operator)
    other_operator = make_user("operator", username="otto")
    client.force_login(other_operator)
    assert (
        client.post(f"/approvals/{approval.pk}/approve/", decide_form(approval)).status_code == 403
    )
    with pytest.raises(ApprovalForbidden, match="cannot approve"):
        approve(approval, by=other_operator)
    client.force_login(auditor)
    page = client.get("/approvals/").content.decode()
    assert f'data-approval="{approval.pk}"' in page and 'data-testid="approve"' not in page


def test_an_approval_of_an_edited_request_is_refused_and_says_what_changed(
    refunds, operator, manager
) -> None:
    approval = requested_edit(refunds, operator)
    seen_before = shown(approval)
    approval_request_edit(
        approval=approval,
        actor=operator,
        version=1,
        reason="customer kept two items",
        payload={"amount": 700, "order": "A-1"},
    )
    with pytest.raises(ApprovalStale) as stale:
        approval_approve(approval=approval, actor=manager, seen=seen_before, comment="ok")
    message = str(stale.value)
    assert "you saw version 1, it is now at version 2" in message
    assert f"payload hash changed from {seen_before.payload_hash[:12]}" in message
    # Only the approver's view was old: the request waits, and the attempt is on the trail.
    assert ApprovalRequest.objects.get(pk=approval.pk).state == "pending"
    assert AuditEntry.objects.filter(action="approval.refuse", approval_id=approval.pk).exists()
    assert approve(approval, by=manager).state == "executed"
    assert Event.objects.get(replay_of=approval.event_id).payload["amount"] == 700


def test_an_approval_after_the_workflow_changed_version_is_refused_and_never_runs(
    refunds, operator, manager
) -> None:
    approval = requested_edit(refunds, operator)
    seen = shown(approval)
    factories.version_create(factories.reviewed_refund_definition(name="Refunds, stricter"))
    with pytest.raises(ApprovalStale, match="refunds is now at version 2, the request was made"):
        approval_approve(approval=approval, actor=manager, seen=seen)
    refused = ApprovalRequest.objects.get(pk=approval.pk)
    assert refused.state == "refused"
    assert "now at version 2" in refused.result["refused"][0]
    assert not Event.objects.filter(replay_of=approval.event_id).exists()


def test_an_approval_of_another_payload_is_refused_on_the_page(
    refunds, operator, manager, client
) -> None:
    approval = requested_edit(refunds, operator)
    client.force_login(manager)
    form = {**decide_form(approval), "payload_hash": "0" * 64}
    response = client.post(f"/approvals/{approval.pk}/approve/", form, **HTMX)
    assert response.status_code == 409
    body = response.content.decode()
    assert "The payload hash changed from 000000000000" in body
    assert ApprovalRequest.objects.get(pk=approval.pk).state == "pending"


def test_an_approval_whose_case_was_closed_meanwhile_is_refused_and_runs_nothing(
    refunds, operator, manager
) -> None:
    approval = requested_edit(refunds, operator)
    case = ExceptionCase.objects.get(pk=approval.case_id)
    services.case_dismiss(case=case, actor=manager, reason="duplicate_event", note="dup")
    with pytest.raises(ApprovalRefused, match="Approved, but it could not run: .*dismissed"):
        approve(approval, by=manager)
    refused = ApprovalRequest.objects.get(pk=approval.pk)
    assert refused.state == "refused"
    assert not Event.objects.filter(replay_of=approval.event_id).exists()
    trail = AuditEntry.objects.filter(approval_id=approval.pk).order_by("id")
    assert list(trail.values_list("action", flat=True)) == [
        "approval.request",
        "approval.approve",
        "approval.refuse",
    ]


def test_a_rejected_request_never_runs_and_stays_on_the_trail(refunds, operator, manager) -> None:
    approval = requested_edit(refunds, operator)
    with pytest.raises(ApprovalRefused, match="comment is required"):
        approval_reject(approval=approval, actor=manager, version=1, comment=" ")
    approval_reject(approval=approval, actor=manager, version=1, comment="refund in full")
    rejected = ApprovalRequest.objects.get(pk=approval.pk)
    assert (rejected.state, rejected.comment) == ("rejected", "refund in full")
    with pytest.raises(ApprovalRefused, match="already rejected"):
        approve(approval, by=manager)
    assert not Event.objects.filter(replay_of=approval.event_id).exists()
    assert AuditEntry.objects.get(action="approval.reject").approval_id == approval.pk


def test_expired_requests_stay_on_the_trail_and_cannot_be_approved(
    refunds, operator, manager, settings
) -> None:
    settings.HANDOFF_APPROVAL_TTL_HOURS = 2
    approval = requested_edit(refunds, operator)
    with time_machine.travel(timezone.now() + timedelta(hours=3)):
        with pytest.raises(ApprovalRefused, match="expired"):
            approve(approval, by=manager)
        assert tasks.escalate() >= 1  # the beat sweep
    expired = ApprovalRequest.objects.get(pk=approval.pk)
    assert expired.state == "expired"
    entry = AuditEntry.objects.get(action="approval.expire")
    assert (entry.object_type, entry.object_id, entry.approval_id, entry.actor_kind) == (
        "approval_request",
        str(approval.pk),
        approval.pk,
        "system",
    )
    assert not Event.objects.filter(replay_of=approval.event_id).exists()


# --- bulk and ownership -----------------------------------------------------------------------------


def _open_cases(count: int) -> list[ExceptionCase]:
    return [factories.case() for _ in range(count)]


@pytest.mark.parametrize("action", ["dismiss", "replay"])
def test_a_bulk_action_over_the_threshold_becomes_a_request_and_below_it_runs(
    client, operator, manager, settings, action
) -> None:
    settings.HANDOFF_APPROVAL_BULK_THRESHOLD = 2
    cases = _open_cases(3)
    client.force_login(operator)
    form = {"action": action, "scope": "selected", "case": [c.pk for c in cases], "note": "spam"}
    form.update({"reason": "spam"} if action == "dismiss" else {"run_version": "original"})
    client.post("/queue/bulk/", form)
    approval = ApprovalRequest.objects.get()
    assert approval.kind == f"bulk_{action}"
    assert approval.params["cases"] == sorted(c.pk for c in cases)
    assert ExceptionCase.objects.filter(state__in=["open"]).count() == 3  # nothing ran

    client.post("/queue/bulk/", {**form, "case": [cases[0].pk]})
    assert ExceptionCase.objects.get(pk=cases[0].pk).state != CaseState.OPEN  # below: it ran
    assert ApprovalRequest.objects.count() == 1

    done = approve(approval, by=manager)
    job = services.bulk_job_run_inline(job=done.bulk_jobs.get())
    assert (job.total, job.succeeded, job.skipped) == (3, 2, 1)  # one was closed meanwhile
    closing = AuditEntry.objects.filter(action=f"case.{action}", approval_id=approval.pk)
    assert closing.count() == 2
    assert AuditEntry.objects.get(action="bulk.start", approval_id=approval.pk)


def test_a_bulk_request_needs_a_note(client, operator, settings) -> None:
    settings.HANDOFF_APPROVAL_BULK_THRESHOLD = 1
    cases = _open_cases(2)
    client.force_login(operator)
    form = {"action": "dismiss", "scope": "selected", "case": [c.pk for c in cases]}
    response = client.post("/queue/bulk/", {**form, "reason": "spam"}, **HTMX)
    assert response.status_code == 422
    assert "Say why in the note" in response.content.decode()
    assert not ApprovalRequest.objects.exists()


def test_an_ownership_change_runs_only_after_approval(client, admin, manager) -> None:
    flow = factories.workflow(factories.open_definition("billing", "finance-ops"))
    factories.team("support")
    WorkflowOwnership.objects.filter(workflow=flow).delete()
    client.force_login(admin)
    client.post(
        f"/owners/workflows/{flow.slug}/set/",
        {"owner": "support", "fallback_1": "finance-ops", "reason": "support takes billing"},
    )
    assert not WorkflowOwnership.objects.filter(workflow=flow).exists()
    approval = ApprovalRequest.objects.get(workflow=flow)
    assert approval.kind == "workflow_ownership_change"
    assert approval.params["after"] == {"owner": "support", "fallback_owners": ["finance-ops"]}

    client.force_login(manager)
    page = client.get("/approvals/?kind=workflow_ownership_change").content.decode()
    assert 'data-testid="ownership-diff"' in page and "support takes billing" in page
    response = client.post(f"/approvals/{approval.pk}/approve/", decide_form(approval), **HTMX)
    assert response.status_code == 200
    record = WorkflowOwnership.objects.get(workflow=flow)
    assert record.lines == ("support", ("finance-ops",))
    entry = AuditEntry.objects.get(action="workflow.ownership_set")
    assert (entry.actor_label, entry.approval_id) == ("ada", approval.pk)


def test_an_ownership_approval_is_refused_when_the_owners_changed_meanwhile(
    admin, manager, make_user
) -> None:
    from exceptions.approvals.services import approval_for_ownership
    from workflows.services.ownership import workflow_ownership_set

    flow = factories.workflow(factories.open_definition("billing", "finance-ops"))
    factories.team("support")
    factories.team("legal")
    asked = {}
    for owner in ("support", "legal"):
        try:
            workflow_ownership_set(
                workflow=flow, owner=owner, fallback_owners=[], actor=admin, reason=owner
            )
        except ApprovalRequired as required:
            asked[owner] = approval_for_ownership(
                required=required,
                workflow=flow,
                actor=admin,
                owner=owner,
                fallback_owners=[],
                reason=owner,
            )
    approve(asked["support"], by=manager)
    with pytest.raises(ApprovalStale, match="no longer what was asked"):
        approve(asked["legal"], by=manager)
    assert ApprovalRequest.objects.get(pk=asked["legal"].pk).state == "refused"


# --- the page -----------------------------------------------------------------------------------


def test_the_page_lists_pending_first_with_the_payload_diff_and_filters(
    client, refunds, operator, manager
) -> None:
    first = requested_edit(refunds, operator, amount=900)
    approval_reject(approval=first, actor=manager, version=1, comment="no")
    second = requested_edit(refunds, operator, amount=800)
    client.force_login(manager)
    page = client.get("/approvals/").content.decode()
    assert page.index(f'data-approval="{second.pk}"') < page.index(f'data-approval="{first.pk}"')
    diff = page[page.index('data-testid="payload-diff"') :]
    assert "<del>1500</del>" in diff and "<ins>800</ins>" in diff
    assert f'href="/exceptions/{second.case_id}/"' in page
    fragment = client.get("/approvals/?state=rejected", **HTMX).content.decode()
    assert fragment.startswith('\n<section id="results"') or fragment.lstrip().startswith(
        '<section id="results"'
    )
    assert f'data-approval="{first.pk}"' in fragment
    assert f'data-approval="{second.pk}"' not in fragment
    assert client.get(f"/approvals/{second.pk}/").status_code == 200
    assert client.get("/approvals/999999/").status_code == 404


def test_the_nav_links_approvals_for_roles_that_read_them(client, operator) -> None:
    client.force_login(operator)
    assert 'href="/approvals/"' in client.get("/").content.decode()


def test_the_requester_edits_a_pending_request_on_the_page(
    client, refunds, operator, manager
) -> None:
    approval = requested_edit(refunds, operator)
    client.force_login(operator)
    edit = {"version": 1, "payload": '{"amount": 500, "order": "A-1"}', "reason": "two items"}
    response = client.post(f"/approvals/{approval.pk}/edit/", edit, **HTMX)
    assert response.status_code == 200
    edited = ApprovalRequest.objects.get(pk=approval.pk)
    assert (edited.version, edited.params["params"]["payload"]["amount"]) == (2, 500)
    bad = client.post(f"/approvals/{approval.pk}/edit/", {**edit, "payload": "[1]"}, **HTMX)
    assert bad.status_code == 422
    client.force_login(manager)
    assert client.post(f"/approvals/{approval.pk}/edit/", edit, **HTMX).status_code == 403
    assert Seen(2, edited.payload_hash, edited.workflow_version_id) == shown(approval)
