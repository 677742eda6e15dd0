"""The Celery tasks, called as functions: drain, sweep, expire."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.factories import ENTERPRISE_EMEA_LEAD, event_create
from tests.support.engine import reload
from workflows import tasks
from workflows.models import EventState, WorkflowVersion
from workflows.services.engine import events_claim_due

pytestmark = pytest.mark.django_db

MakeVersion = Callable[..., WorkflowVersion]
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The process_due messages the tasks send."""
    messages: list[dict[str, Any]] = []
    monkeypatch.setattr(
        tasks.process_due, "apply_async", lambda *args, **options: messages.append(options)
    )
    return messages


def test_process_due_drains_everything_due(
    lead_version: MakeVersion, sent: list[dict[str, Any]], settings
) -> None:
    settings.HANDOFF_CLAIM_BATCH_SIZE = 2
    version = lead_version()
    events = [event_create(version, ENTERPRISE_EMEA_LEAD) for _ in range(5)]
    assert tasks.process_due() == 5
    assert all(reload(e).state == EventState.SUCCEEDED for e in events)
    assert sent == []
    # The same message delivered again finds nothing to do.
    assert tasks.process_due() == 0


def test_process_due_hands_leftovers_to_a_new_message_when_its_time_is_up(
    lead_version: MakeVersion, sent: list[dict[str, Any]], settings
) -> None:
    settings.HANDOFF_CLAIM_BATCH_SIZE = 2
    settings.HANDOFF_PROCESS_BUDGET_SECONDS = 0
    version = lead_version()
    for _ in range(5):
        event_create(version, ENTERPRISE_EMEA_LEAD)
    assert tasks.process_due() == 2
    assert len(sent) == 1
    assert sent[0]["queue"] == "events"
    assert sent[0]["expires"] == tasks.WAKE_EXPIRES_SECONDS


def test_sweep_wakes_a_few_workers_for_what_is_due(
    lead_version: MakeVersion, sent: list[dict[str, Any]], settings
) -> None:
    settings.HANDOFF_CLAIM_BATCH_SIZE = 2
    settings.HANDOFF_SWEEP_MAX_WAKES = 3
    version = lead_version()
    assert tasks.sweep() == {"released": 0, "due": 0, "woken": 0}
    assert sent == []
    for _ in range(3):
        event_create(version, ENTERPRISE_EMEA_LEAD)
    assert tasks.sweep() == {"released": 0, "due": 3, "woken": 2}
    for _ in range(20):
        event_create(version, ENTERPRISE_EMEA_LEAD)
    assert tasks.sweep()["woken"] == 3


def test_sweep_releases_stale_claims_and_wakes_for_them(
    lead_version: MakeVersion, sent: list[dict[str, Any]], settings, time_machine
) -> None:
    time_machine.move_to(START, tick=False)
    settings.HANDOFF_STALE_CLAIM_SECONDS = 30
    settings.HANDOFF_PROCESSING_RETRY_SECONDS = 0
    event = event_create(lead_version(), ENTERPRISE_EMEA_LEAD)
    events_claim_due(limit=10, worker="killed")
    assert tasks.sweep() == {"released": 0, "due": 0, "woken": 0}
    time_machine.shift(timedelta(seconds=31))
    assert tasks.sweep() == {"released": 1, "due": 1, "woken": 1}
    assert reload(event).state == EventState.RETRY_SCHEDULED


def test_stale_claims_default_to_the_hard_time_limit_and_a_minute(settings) -> None:
    settings.CELERY_TASK_HARD_TIME_LIMIT = 300
    del settings.HANDOFF_STALE_CLAIM_SECONDS
    assert tasks.stale_claim_after() == timedelta(seconds=360)


def test_expire_outcomes_task(lead_version: MakeVersion, time_machine) -> None:
    time_machine.move_to(START, tick=False)
    event = event_create(lead_version(outcome={"confirm_within": 60}), ENTERPRISE_EMEA_LEAD)
    tasks.process_due()
    assert tasks.expire_outcomes() == 0
    time_machine.shift(timedelta(seconds=61))
    assert tasks.expire_outcomes() == 1
    assert reload(event).state == EventState.NEEDS_ATTENTION


def test_tasks_are_named_for_the_routing_table() -> None:
    for task, name in [
        (tasks.process_due, "workflows.process_due"),
        (tasks.sweep, "workflows.sweep"),
        (tasks.expire_outcomes, "workflows.expire_outcomes"),
    ]:
        assert task.name == name
