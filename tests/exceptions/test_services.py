"""The operators' actions on a case: each changes the case once, audited with its note."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from exceptions import services
from exceptions.models import CaseState, Comment, ExceptionCase
from exceptions.services import CaseActionRefused, CaseConflict
from tests import factories
from workflows.four_eyes import ApprovalRequired
from workflows.models import Event

pytestmark = pytest.mark.django_db


def entries(case: ExceptionCase, action: str) -> list[AuditEntry]:
    return list(
        AuditEntry.objects.filter(
            object_type="exceptions.exceptioncase", object_id=str(case.pk), action=action
        )
    )


def test_a_new_case_runs_the_acknowledge_clock_first_and_is_searchable() -> None:
    case = factories.case(payload={"email": "zora@acme.test", "company": {"name": "Acme"}})
    assert case.sla_due_at == case.acknowledge_due_at
    assert case.resolve_due_at - case.opened_at == timedelta(hours=4)
    found = ExceptionCase.objects.extra(  # noqa: S610 (a fixed test query)
        where=["search @@ plainto_tsquery('simple', 'zora@acme.test')"]
    )
    assert list(found) == [case]


def test_claim_makes_the_actor_the_owner_and_keeps_the_team(operator) -> None:
    case = factories.case()
    claimed = services.case_claim(case=case, actor=operator, version=case.version, note="mine")
    assert claimed.owner_user == operator
    assert claimed.owner_team.slug == "revenue-ops"
    assert claimed.version == case.version + 1
    (entry,) = entries(case, "case.claim")
    assert entry.reason == "mine"
    assert entry.actor_label == operator.username
    assert entry.before["owner_user"] is None and entry.after["owner_user"] == operator.username


def test_acknowledging_stops_the_acknowledge_clock(operator) -> None:
    case = factories.case()
    acknowledged = services.case_acknowledge(case=case, actor=operator, version=case.version)
    assert acknowledged.state == CaseState.ACKNOWLEDGED
    assert acknowledged.acknowledged_at is not None
    assert acknowledged.sla_due_at == case.resolve_due_at
    later = case.acknowledge_due_at + timedelta(minutes=5)
    assert acknowledged.sla_state(later) == "due"


def test_assign_to_a_team_and_to_nobody(operator, make_user) -> None:
    case = factories.case(owner=operator)
    finance = factories.team("finance-ops")
    assigned = services.case_assign(
        case=case, actor=operator, team=finance, user=None, version=case.version, note="theirs"
    )
    assert (assigned.owner_team, assigned.owner_user) == (finance, None)
    with pytest.raises(CaseActionRefused):
        services.case_assign(case=assigned, actor=operator, version=assigned.version)


def test_snooze_needs_a_future_time_and_ends_by_itself(operator) -> None:
    case = factories.case()
    with pytest.raises(CaseActionRefused):
        services.case_snooze(case=case, actor=operator, until=timezone.now(), version=1)
    until = timezone.now() + timedelta(hours=1)
    snoozed = services.case_snooze(case=case, actor=operator, until=until, version=case.version)
    assert (snoozed.state, snoozed.snoozed_until) == (CaseState.SNOOZED, until)
    assert services.cases_wake_snoozed(now=until - timedelta(minutes=1)) == 0
    assert services.cases_wake_snoozed(now=until + timedelta(minutes=1)) == 1
    woken = ExceptionCase.objects.get(pk=case.pk)
    assert (woken.state, woken.snoozed_until) == (CaseState.OPEN, None)
    assert entries(case, "case.wake")[0].actor_label == "system"


def test_resolve_closes_the_case_and_the_event_it_held(operator) -> None:
    case = factories.case()
    resolved = services.case_resolve(
        case=case, actor=operator, resolution="fixed_data", version=case.version, note="typo"
    )
    assert resolved.state == CaseState.RESOLVED
    assert (resolved.resolution_code, resolved.resolution_note) == ("fixed_data", "typo")
    assert resolved.closed_by == operator and resolved.sla_due_at is None
    assert Event.objects.get(pk=case.event_id).state == "failed"
    assert entries(case, "case.resolve")[0].reason == "typo"
    with pytest.raises(CaseActionRefused, match="already resolved"):
        services.case_resolve(case=resolved, actor=operator, resolution="duplicate")


def test_an_event_with_another_open_case_stays_needs_attention(operator) -> None:
    first = factories.case()
    services.case_open_or_join(
        event=first.event, reason_code="rule_error", detail="x", owner=None, step="route"
    )
    services.case_resolve(case=first, actor=operator, resolution="handled_manually")
    assert Event.objects.get(pk=first.event_id).state == "needs_attention"


def test_review_cases_need_a_note_and_only_they_can_be_approved(operator) -> None:
    ordinary = factories.case()
    with pytest.raises(CaseActionRefused, match="review cases only"):
        services.case_resolve(case=ordinary, actor=operator, resolution="approved")
    review = factories.case(reason="review_required", detail="Huge deal", key="huge-deal")
    with pytest.raises(CaseActionRefused, match="note is required"):
        services.case_resolve(case=review, actor=operator, resolution="approved")


def test_approving_a_review_clears_the_gate_and_reruns_the_step(operator) -> None:
    review = factories.case(
        reason="review_required", detail="Huge deal", key="huge-deal", step="review"
    )
    services.case_resolve(
        case=review, actor=operator, resolution="approved", note="checked the contract"
    )
    event = Event.objects.get(pk=review.event_id)
    assert event.review_cleared is True
    assert (event.state, event.pending_trigger) == ("received", "retry")
    assert AuditEntry.objects.filter(action="event.retry", object_id=str(event.pk)).exists()


def test_rejecting_a_review_fails_the_event(operator) -> None:
    review = factories.case(reason="review_required", detail="Huge deal", key="huge-deal")
    services.case_resolve(case=review, actor=operator, resolution="rejected", note="no")
    assert Event.objects.get(pk=review.event_id).state == "failed"


def test_dismiss_cancels_the_event(operator) -> None:
    case = factories.case()
    with pytest.raises(CaseActionRefused):
        services.case_dismiss(case=case, actor=operator, reason="not-a-reason")
    dismissed = services.case_dismiss(
        case=case, actor=operator, reason="test_data", version=case.version, note="qa form"
    )
    assert (dismissed.state, dismissed.resolution_code) == (CaseState.DISMISSED, "test_data")
    assert Event.objects.get(pk=case.event_id).state == "cancelled"


def test_a_stale_version_changes_nothing(operator) -> None:
    case = factories.case()
    services.case_acknowledge(case=case, actor=operator, version=case.version)
    with pytest.raises(CaseConflict) as caught:
        services.case_resolve(
            case=case, actor=operator, resolution="duplicate", version=case.version
        )
    assert caught.value.case.state == CaseState.ACKNOWLEDGED
    assert "changed by someone else" in str(caught.value)
    assert ExceptionCase.objects.get(pk=case.pk).state == CaseState.ACKNOWLEDGED
    assert not entries(case, "case.resolve")


def test_comments_are_kept_and_audited(operator) -> None:
    case = factories.case()
    services.case_comment(case=case, actor=operator, body="  Called the customer.  ")
    assert Comment.objects.get().body == "Called the customer."
    assert entries(case, "case.comment")[0].reason == "Called the customer."
    with pytest.raises(CaseActionRefused):
        services.case_comment(case=case, actor=operator, body="   ")


def test_retry_closes_the_case_and_hands_the_event_back_to_the_engine(operator) -> None:
    case = factories.case()
    retried = services.case_retry(case=case, actor=operator, version=case.version, note="fixed")
    assert (retried.state, retried.resolution_code) == (CaseState.RESOLVED, "retried")
    event = Event.objects.get(pk=case.event_id)
    assert (event.state, event.pending_trigger, event.pending_actor) == (
        "received",
        "retry",
        operator,
    )


def test_retry_of_an_event_the_engine_cannot_rerun_changes_nothing(operator) -> None:
    case = factories.case()
    Event.objects.filter(pk=case.event_id).update(state="processing")
    with pytest.raises(CaseActionRefused, match="processing"):
        services.case_retry(case=case, actor=operator)
    assert ExceptionCase.objects.get(pk=case.pk).state == CaseState.OPEN


def test_replay_makes_a_new_event_and_closes_the_original(operator) -> None:
    case = factories.case()
    replayed, replay = services.case_replay(
        case=case, actor=operator, run_version="current", version=case.version
    )
    assert replay.replay_of_id == case.event_id and replay.pk != case.event_id
    assert replayed.resolution_code == "replayed"
    assert Event.objects.get(pk=case.event_id).state == "failed"
    assert entries(case, "case.replay")[0].after["run_version"] == "current"


def test_an_edited_replay_needs_a_reason_and_then_an_approval(operator) -> None:
    case = factories.case()
    edited = {"email": "dana@example.com", "company": {"size": 10}}
    with pytest.raises(CaseActionRefused, match="note is required"):
        services.case_replay(case=case, actor=operator, payload=edited)
    with pytest.raises(ApprovalRequired, match="edited payload runs only once a second person"):
        services.case_replay(
            case=case, actor=operator, payload=edited, run_version="current", note="size was text"
        )
    assert ExceptionCase.objects.get(pk=case.pk).is_open
    assert not Event.objects.filter(replay_of=case.event_id).exists()
