"""One event's trouble stays its own: failed runs are counted and end with a person, attempts are
on the record as soon as they return, a batch keeps inside its time, addresses are redacted."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from exceptions.models import ExceptionCase
from tests.factories import APPROVAL, ENTERPRISE_EMEA_LEAD, event_create, version_create
from tests.support.engine import process_due, reload
from tests.support.sinks import Reply, Sink
from workflows.delivery import REPLAY_OF_HEADER
from workflows.models import Attempt, Decision, Event, EventState, WorkflowVersion
from workflows.services.engine import (
    batch,
    event_replay,
    events_claim_due,
    events_process_claimed,
    events_release_stale,
)

pytestmark = pytest.mark.django_db

MakeVersion = Callable[..., WorkflowVersion]
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def broken_version(good: WorkflowVersion) -> WorkflowVersion:
    """A version stored by an older loader that the engine can no longer compile."""
    definition = dict(good.definition)
    del definition["retry"]
    return version_create({**definition, "slug": "broken", "name": "Broken"})


def test_an_event_whose_runs_keep_failing_stops_for_a_person_once(
    lead_version: MakeVersion, settings, time_machine
) -> None:
    settings.HANDOFF_PROCESSING_ATTEMPTS = 3
    time_machine.move_to(START, tick=False)
    event = event_create(broken_version(lead_version()), ENTERPRISE_EMEA_LEAD)

    now = START
    for run in (1, 2):
        result = process_due()
        assert (result.claimed, result.crashed, result.written) == (1, 1, 0)
        event = reload(event)
        assert (event.state, event.processing_failures) == (EventState.RETRY_SCHEDULED, run)
        # Tried again after 10 s times the failed runs so far.
        assert event.next_attempt_at == now + timedelta(seconds=10 * run)
        assert not Decision.objects.filter(event=event).exists(), "no decision per failed run"
        now += timedelta(seconds=10 * run)
        time_machine.move_to(now, tick=False)

    process_due()
    event = reload(event)
    assert (event.state, event.processing_failures) == (EventState.NEEDS_ATTENTION, 3)
    (decision,) = Decision.objects.filter(event=event)
    assert decision.rule == "processing"
    assert decision.result == {
        "error_class": "DefinitionCompileError",
        "error": "the definition: missing 'retry'",
    }
    assert decision.explanation == (
        "Processing failed 3 times in a row at step validate; last: DefinitionCompileError: the definition: missing 'retry'. "
        "Not retried again until a person acts."
    )
    case = ExceptionCase.objects.get(event=event)
    assert case.reason_id == "processing_error"
    assert (
        case.detail
        == "DefinitionCompileError: the definition: missing 'retry' (3 failed runs at step validate)"
    )
    time_machine.shift(timedelta(hours=1))
    assert process_due().claimed == 0, "it is not retried again"


def test_a_worker_dying_on_the_same_event_again_and_again_stops_it(
    lead_version: MakeVersion, settings, time_machine
) -> None:
    settings.HANDOFF_PROCESSING_ATTEMPTS = 2
    time_machine.move_to(START, tick=False)
    event = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    for _ in range(2):
        events_claim_due(limit=10, worker="dies")
        time_machine.shift(timedelta(minutes=7))
        assert events_release_stale(older_than=timedelta(minutes=6)) == 1
        time_machine.shift(timedelta(minutes=1))
    event = reload(event)
    assert event.state == EventState.NEEDS_ATTENTION
    case = ExceptionCase.objects.get(event=event)
    assert case.reason_id == "processing_error"
    assert case.detail.startswith("WorkerLost: Worker dies:")
    rules = list(Decision.objects.filter(event=event).values_list("rule", "ok"))
    assert rules == [("processing", False), ("processing", False)]


def test_an_error_while_recording_one_delivery_leaves_the_others_alone(
    lead_version: MakeVersion, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = lead_version()
    events = [event_create(version, ENTERPRISE_EMEA_LEAD) for _ in range(3)]
    real = batch.record_delivery

    def record(run, result, position, *, token):
        if run.event.pk == events[1].pk:
            raise RuntimeError("disk on fire")
        return real(run, result, position, token=token)

    monkeypatch.setattr(batch, "record_delivery", record)
    result = process_due()
    assert (result.written, result.crashed) == (2, 1)
    assert [reload(e).state for e in events] == [
        EventState.SUCCEEDED,
        EventState.RETRY_SCHEDULED,
        EventState.SUCCEEDED,
    ]
    assert len(sink.requests()) == 3


def test_a_claim_lost_mid_delivery_still_records_the_post_as_superseded(
    lead_version: MakeVersion, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    real = batch.webhooks_deliver

    def deliver_then_lose_the_claim(requests, **kwargs):
        for index, result in real(requests, **kwargs):
            Event.objects.filter(pk=event.pk).update(claimed_by="another-worker:1")
            yield index, result

    monkeypatch.setattr(batch, "webhooks_deliver", deliver_then_lose_the_claim)
    result = process_due()
    assert (result.written, result.crashed) == (0, 0)
    attempt = Attempt.objects.get(event=event)
    assert (attempt.number, attempt.status, attempt.superseded) == (1, "succeeded", True)
    assert not Decision.objects.filter(event=event, step="deliver").exists()


def test_attempts_are_on_the_record_before_the_batch_is_written(
    lead_version: MakeVersion, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)

    def die(*args, **kwargs):
        raise SystemExit("the worker is going down")

    monkeypatch.setattr(batch, "_write_batch_atomic", die)
    with pytest.raises(SystemExit):
        process_due()
    attempt = Attempt.objects.get(event=event)
    assert (attempt.status, attempt.superseded) == ("succeeded", False)


def test_what_a_batch_has_no_time_for_is_not_sent(lead_version: MakeVersion) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
    try:
        version = lead_version(action={"type": "webhook", "url": url, "timeout_seconds": 1})
        events = [event_create(version, ENTERPRISE_EMEA_LEAD) for _ in range(6)]
        claimed = events_claim_due(limit=10, worker="w")
        started = time.monotonic()
        result = events_process_claimed(events=claimed, deliver_until=started + 1.5)
        took = time.monotonic() - started
    finally:
        silent.close()
    assert took < 1.5 + 1.0
    assert result.written == 6
    attempts = Attempt.objects.filter(event__in=events).count()
    assert attempts == 4, "one wave of four went out; the rest had no time"
    deferred = Decision.objects.filter(event__in=events, result__verdict="deferred")
    assert deferred.count() == 2
    assert deferred.first().explanation.startswith(f"Not sent to {url}: not sent: fewer than")
    for event in events:
        assert reload(event).state == EventState.RETRY_SCHEDULED


def test_a_destination_url_is_written_down_redacted(lead_version: MakeVersion, sink: Sink) -> None:
    url = sink.url("/crm/leads").replace("http://", "http://bot:hunter2@") + "?token=s3cret"
    sink.script("/crm/leads?token=s3cret", Reply(503, body=b"busy"))
    event = event_create(lead_version(url=url), ENTERPRISE_EMEA_LEAD)
    process_due()
    (request,) = sink.requests()
    assert request.path == "/crm/leads?token=s3cret", "the real URL is used to deliver"
    written = json.dumps(
        [
            list(Decision.objects.filter(event=event).values("inputs", "result", "explanation")),
            list(Attempt.objects.filter(event=event).values("error_class", "error_message")),
        ]
    )
    assert "s3cret" not in written and "hunter2" not in written
    shown = f"http://redacted@127.0.0.1:{sink.server.server_address[1]}/crm/leads?redacted"
    assert shown in written


def test_a_replay_names_the_event_it_replays(
    lead_version: MakeVersion, sink: Sink, operator
) -> None:
    version = lead_version()
    original = event_create(version, ENTERPRISE_EMEA_LEAD)
    process_due()
    # It was delivered: sending it again runs under an approval.
    replay = event_replay(
        event=original, actor=operator, note="the CRM lost it", approval_id=APPROVAL
    )
    process_due()
    first, second = sink.requests()
    assert REPLAY_OF_HEADER not in first.headers
    assert "replay_of" not in first.json()
    assert second.headers[REPLAY_OF_HEADER] == str(original.pk)
    body = second.verified(version.workflow.signing_secret)
    assert (body["event_id"], body["replay_of"]) == (replay.pk, original.pk)
