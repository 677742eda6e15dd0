"""Cases opened through the engine's attention_needed signal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import transaction

from exceptions import services
from exceptions.models import CaseState, ExceptionCase, ReasonCode
from tests import factories
from workflows.models import Event, Team
from workflows.signals import attention_needed

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def make_event(*, sla: dict | None = None, slug: str = "refund-approval") -> Event:
    factories.team("finance-ops")
    changes = {"sla": sla} if sla else {}
    return factories.event_create(
        factories.version_create(factories.open_definition(slug, "finance-ops", **changes)), {}
    )


def signal(event: Event, reason: str = "validation_failed", key: str = "amount") -> None:
    with transaction.atomic():
        attention_needed.send(
            sender=Event,
            event=event,
            reason_code=reason,
            detail=f"Missing required field {key}",
            owner=Team.objects.get(slug="finance-ops"),
            step="validate",
            fingerprint_key=key,
        )


def test_the_builtin_reason_codes_are_seeded() -> None:
    codes = set(ReasonCode.objects.filter(builtin=True).values_list("code", flat=True))
    assert codes == {
        "validation_failed", "rule_error", "no_owner", "review_required", "delivery_rejected",
        "delivery_failed", "outcome_missing", "outcome_failed", "payload_shape_changed",
            "processing_error",
    }  # fmt: skip


@time_machine.travel(NOW, tick=False)
def test_a_signal_opens_a_case_with_owner_and_the_reason_codes_sla() -> None:
    event = make_event()
    signal(event)
    case = ExceptionCase.objects.get()
    assert (case.reason_id, case.state, case.step) == (
        "validation_failed",
        CaseState.OPEN,
        "validate",
    )
    assert case.owner_team.slug == "finance-ops"
    assert case.detail == "Missing required field amount"
    assert case.acknowledge_due_at == NOW + timedelta(minutes=30)
    assert case.resolve_due_at == NOW + timedelta(hours=4)


@time_machine.travel(NOW, tick=False)
def test_the_workflows_sla_wins_over_the_reason_codes_default() -> None:
    event = make_event(sla={"acknowledge_within": 600, "resolve_within": 3600})
    signal(event)
    case = ExceptionCase.objects.get()
    assert case.acknowledge_due_at == NOW + timedelta(minutes=10)
    assert case.resolve_due_at == NOW + timedelta(hours=1)


def test_a_second_signal_for_the_same_reason_joins_the_open_case() -> None:
    event = make_event()
    signal(event)
    signal(event)
    assert ExceptionCase.objects.count() == 1
    signal(event, reason="rule_error", key="TypeError")
    assert ExceptionCase.objects.count() == 2


def test_the_same_problem_on_two_events_shares_a_fingerprint() -> None:
    first = make_event()
    second = factories.event_create(first.version, {})
    third = factories.event_create(first.version, {})
    signal(first, key="amount")
    signal(second, key="amount")
    signal(third, key="currency")
    amount = ExceptionCase.objects.filter(detail__endswith="amount")
    assert amount.count() == 2
    assert amount.values("fingerprint").distinct().count() == 1
    assert ExceptionCase.objects.values("fingerprint").distinct().count() == 2


def test_overdue_is_a_fact_of_the_case(operator) -> None:
    event = make_event()
    signal(event)
    case = ExceptionCase.objects.get()
    assert case.sla_state(case.opened_at + timedelta(minutes=29)) == "due"
    assert case.sla_state(case.opened_at + timedelta(minutes=31)) == "breached"
    # Acknowledging stops the acknowledge clock; the resolve clock runs on.
    acknowledged = services.case_acknowledge(case=case, actor=operator, version=case.version)
    assert acknowledged.sla_state(case.opened_at + timedelta(minutes=31)) == "due"
    assert acknowledged.sla_state(case.opened_at + timedelta(hours=5)) == "breached"
