"""The generator of event histories used to measure /events/ and /outcomes/ and for screenshots."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from console.outcomes.rollup import outcome_figures
from console.outcomes.scope import Scope
from exceptions.event_filters import events_matching
from exceptions.models import ExceptionCase
from tests import factories
from workflows.models import Attempt, Event, Outcome

pytestmark = pytest.mark.django_db


def test_without_an_operator_the_closed_cases_are_closed_by_nobody() -> None:
    factories.workflow()
    call_command("generate_events", count=300, span_days=5, stdout=io.StringIO())
    assert Event.objects.count() == 300
    closed = ExceptionCase.objects.exclude(state="open")
    assert closed.exists()
    assert not closed.filter(closed_by__isnull=False).exists()


def test_it_makes_a_history_in_every_state_with_outcomes_and_cases(make_user) -> None:
    make_user("operator", username="olivia")
    factories.workflow()
    call_command("generate_events", count=1000, span_days=10, stdout=io.StringIO())
    assert Event.objects.count() == 1000
    states = set(Event.objects.values_list("state", flat=True))
    assert {"succeeded", "failed", "needs_attention", "cancelled", "retry_scheduled"} <= states
    assert set(Outcome.objects.values_list("source", flat=True)) >= {"delivery", "manual"}
    assert Attempt.objects.filter(status="failed").exists()
    assert ExceptionCase.objects.filter(state="open").exists()
    assert ExceptionCase.objects.filter(closed_by__username="olivia").exists()
    now = timezone.now()
    oldest = Event.objects.order_by("received_at").first().received_at
    assert now - timedelta(days=10, minutes=1) < oldest < now - timedelta(days=9)
    # Payload words are searchable through the events' expression index.
    assert events_matching({"q": "web-form"}).count() > 0

    start = (now - timedelta(days=11)).replace(hour=0, minute=0, second=0, microsecond=0)
    figures = outcome_figures(Scope(start=start, end=now + timedelta(days=1), unit="day"))
    total = figures.at(None, None)
    assert total.events == 1000
    assert 70 < total.outcome_rate < 95
    assert total.manual and total.cases and total.mtta and total.cycle_p50
