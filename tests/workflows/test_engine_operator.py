"""An operator's retry (rerun the step that stopped) and replay (a new event from the start)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from audit.models import AuditEntry
from exceptions.models import ExceptionCase
from tests.factories import APPROVAL, ENTERPRISE_EMEA_LEAD, event_create, version_create
from tests.factories import definition as lead_definition
from tests.support.engine import process_due, reload
from tests.support.sinks import Reply, Sink
from workflows.four_eyes import ApprovalRequired
from workflows.models import AttemptTrigger, EventState, Step, Workflow, WorkflowVersion
from workflows.services.engine import (
    EventNotRetryable,
    ReplayNotPossible,
    event_replay,
    event_retry,
)

pytestmark = pytest.mark.django_db

MakeVersion = Callable[..., WorkflowVersion]
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def woken(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(
        "workflows.services.engine.operator.wake_workers", lambda: calls.append(1) or True
    )
    return calls


def test_retry_reruns_the_failed_step_and_records_who_asked(
    lead_version: MakeVersion,
    sink: Sink,
    operator,
    woken: list[int],
    django_capture_on_commit_callbacks,
) -> None:
    event = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    sink.script("/crm/leads", Reply(400), Reply(200))
    process_due()
    assert reload(event).state == EventState.NEEDS_ATTENTION

    with django_capture_on_commit_callbacks(execute=True):
        retried = event_retry(event=event, actor=operator, note="CRM list fixed")
    assert woken == [1]
    assert retried.state == EventState.RECEIVED
    assert retried.step == Step.DELIVER
    assert retried.pending_trigger == AttemptTrigger.RETRY
    entry = AuditEntry.objects.get(action="event.retry")
    assert entry.actor_label == operator.username
    assert entry.object_id == str(event.pk)
    assert entry.reason == "CRM list fixed"
    assert entry.before == {"state": "needs_attention", "step": "deliver", "review_cleared": False}
    assert entry.after == {"state": "received", "step": "deliver", "review_cleared": False}

    process_due()
    event = reload(event)
    assert event.state == EventState.SUCCEEDED
    # Only the failed step ran again: validate, enrich, route and review are not repeated.
    assert event.decisions.filter(step=Step.VALIDATE).count() == 1
    second = event.attempts.get(number=2)
    assert (second.trigger, second.actor, second.actor_label) == ("retry", operator, "olivia")
    assert event.pending_trigger == AttemptTrigger.AUTO
    assert event.pending_actor is None
    requests = sink.requests("/crm/leads")
    assert [r.headers["webhook-id"] for r in requests] == [str(event.pk)] * 2


def test_retry_after_exhaustion_starts_the_schedule_again(
    lead_version: MakeVersion, sink: Sink, operator, woken: list[int], time_machine
) -> None:
    time_machine.move_to(START, tick=False)
    event = event_create(lead_version(retry={"schedule": [5]}), ENTERPRISE_EMEA_LEAD)
    sink.script("/crm/leads", *[Reply(503)] * 4)
    process_due()
    time_machine.shift(timedelta(seconds=5))
    process_due()
    assert reload(event).state == EventState.NEEDS_ATTENTION

    event_retry(event=event, actor=operator)
    process_due()
    event = reload(event)
    assert event.state == EventState.RETRY_SCHEDULED
    attempt = event.attempts.get(number=3)
    assert (attempt.trigger, attempt.status) == ("retry", "failed")
    assert "retry 1 of 1 in 5 seconds" in event.decisions.last().explanation
    time_machine.shift(timedelta(seconds=5))
    process_due()
    attempt = reload(event).attempts.get(number=4)
    assert (attempt.trigger, attempt.status, attempt.actor) == ("auto", "exhausted", None)


def test_retry_of_a_review_hold_with_clear_review_runs_the_action(
    lead_version: MakeVersion, sink: Sink, operator, woken: list[int]
) -> None:
    event = event_create(lead_version(), {**ENTERPRISE_EMEA_LEAD, "amount": 5000})
    process_due()
    event_retry(event=event, actor=operator)
    process_due()
    assert reload(event).step == Step.REVIEW
    assert sink.requests() == []

    event_retry(event=event, actor=operator, clear_review=True)
    process_due()
    event = reload(event)
    assert event.state == EventState.SUCCEEDED
    assert event.review_cleared
    assert len(sink.requests()) == 1


def test_retry_of_a_missing_outcome_delivers_again(
    lead_version: MakeVersion, sink: Sink, operator, woken: list[int], time_machine
) -> None:
    from workflows.services.engine import outcomes_expire_due

    time_machine.move_to(START, tick=False)
    event = event_create(lead_version(outcome={"confirm_within": 60}), ENTERPRISE_EMEA_LEAD)
    process_due()
    outcomes_expire_due(now=START + timedelta(minutes=2))
    retried = event_retry(event=event, actor=operator)
    assert retried.step == Step.DELIVER
    process_due()
    event = reload(event)
    assert event.state == EventState.DELIVERED
    assert event.attempts.count() == 2


@pytest.mark.parametrize("state", [EventState.SUCCEEDED, EventState.PROCESSING, "received"])
def test_only_stopped_events_can_be_retried(
    lead_version: MakeVersion, operator, state: str
) -> None:
    event = event_create(lead_version(), ENTERPRISE_EMEA_LEAD, state=state)
    with pytest.raises(EventNotRetryable):
        event_retry(event=event, actor=operator)
    assert not AuditEntry.objects.filter(action="event.retry").exists()


def test_replay_under_the_original_version_is_a_new_event(
    lead_version: MakeVersion, sink: Sink, operator, woken: list[int]
) -> None:
    original = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    sink.script("/crm/leads", Reply(400))
    process_due()
    lead_version(fallback_owners=["revenue-ops"])  # v2 becomes current

    replay = event_replay(event=original, actor=operator, note="customer asked")
    assert replay.pk != original.pk
    assert replay.replay_of == original
    assert replay.version.number == 1
    assert replay.payload == original.payload
    assert replay.source == "replay"
    assert replay.idempotency_key is None
    assert replay.headers["x-handoff-replay-of"] == str(original.pk)
    assert replay.step == Step.VALIDATE
    entry = AuditEntry.objects.get(action="event.replay")
    assert entry.object_id == str(original.pk)
    assert entry.after["replay_id"] == replay.pk
    assert entry.reason == "customer asked"

    process_due()
    replay = reload(replay)
    assert replay.state == EventState.SUCCEEDED
    assert replay.decisions.filter(step=Step.VALIDATE).count() == 1
    attempt = replay.attempts.get()
    assert (attempt.trigger, attempt.actor) == ("replay", operator)
    assert sink.requests()[-1].headers["webhook-id"] == str(replay.pk)
    original = reload(original)
    assert original.state == EventState.NEEDS_ATTENTION
    assert ExceptionCase.objects.filter(event=original).count() == 1


def test_replay_under_the_current_version(
    lead_version: MakeVersion, sink: Sink, operator, woken: list[int]
) -> None:
    original = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    process_due()
    lead_version(
        routes=[{"name": "all", "when": "true", "owner": "inbound-sdr"}]
    )  # v2: routes elsewhere
    replay = event_replay(
        event=original,
        actor=operator,
        version="current",
        note="run the new routing on it",
        approval_id=APPROVAL,  # it was delivered: sending it again is approved
    )
    assert replay.version.number == 2
    process_due()
    replay = reload(replay)
    assert replay.owner_team.slug == "inbound-sdr"
    assert replay.decisions.get(step=Step.ROUTE).version_number == 2


def test_replay_with_an_edited_payload(
    lead_version: MakeVersion, sink: Sink, operator, woken: list[int]
) -> None:
    original = event_create(lead_version(), {"email": "ada@example.com", "company": {}})
    process_due()
    assert reload(original).state == EventState.NEEDS_ATTENTION

    fixed = {"email": "ada@example.com", "company": {"size": 40}, "territory": "EMEA"}
    with pytest.raises(ApprovalRequired):
        event_replay(event=original, actor=operator, payload_override=fixed)
    replay = event_replay(
        event=original, actor=operator, payload_override=fixed, approval_id=APPROVAL
    )
    assert replay.payload == fixed
    assert replay.payload_hash != original.payload_hash
    assert replay.headers["x-handoff-payload-edited"] == "true"
    entry = AuditEntry.objects.get(action="event.replay")
    assert entry.before["payload"] == original.payload
    assert entry.after["payload"] == fixed
    assert entry.approval_id == APPROVAL
    process_due()
    assert reload(replay).state == EventState.SUCCEEDED
    assert reload(original).payload == {"email": "ada@example.com", "company": {}}


def test_replay_refuses_what_it_cannot_run(lead_version: MakeVersion, operator) -> None:
    version = version_create(lead_definition(slug="no-current"))
    event = event_create(version, ENTERPRISE_EMEA_LEAD)
    # Events come in under a current version; this workflow has had none since.
    Workflow.objects.filter(pk=version.workflow_id).update(current_version=None)
    with pytest.raises(ReplayNotPossible):
        event_replay(event=event, actor=operator, version="current")
    with pytest.raises(ReplayNotPossible):
        event_replay(event=event, actor=operator, version="latest")
    with pytest.raises(ReplayNotPossible):
        event_replay(event=event, actor=operator, payload_override=["not", "an", "object"])


def test_replaying_an_event_already_delivered_needs_a_reason_and_an_approval(
    lead_version: MakeVersion, sink: Sink, operator
) -> None:
    original = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    process_due()
    assert reload(original).state == EventState.SUCCEEDED

    with pytest.raises(ReplayNotPossible, match="already delivered .*HTTP 200.* say why"):
        event_replay(event=original, actor=operator, note="  ")
    with pytest.raises(ApprovalRequired, match="already delivered .*second person") as required:
        event_replay(event=original, actor=operator, note="the CRM restored a backup")
    assert required.value.kind == "delivered_replay"
    replay = event_replay(
        event=original, actor=operator, note="the CRM restored a backup", approval_id=APPROVAL
    )
    assert replay.replay_of_id == original.pk
    entry = AuditEntry.objects.get(action="event.replay")
    assert entry.reason == "the CRM restored a backup"


def test_replaying_an_event_never_delivered_needs_no_reason(
    lead_version: MakeVersion, sink: Sink, operator
) -> None:
    sink.script("/crm/leads", Reply(400))
    original = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    process_due()
    assert event_replay(event=original, actor=operator).replay_of_id == original.pk
