"""The generator of realistic backlogs used for load tests and screenshots."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from exceptions.models import OPEN_STATES, ExceptionCase
from exceptions.services import case_fingerprint
from tests import factories
from workflows.models import Attempt, Decision, Event

pytestmark = pytest.mark.django_db


def test_it_makes_cases_like_the_engines(make_user) -> None:
    make_user("operator", username="olivia")
    factories.workflow()
    call_command("generate_cases", count=200, stdout=io.StringIO())
    assert ExceptionCase.objects.count() == Event.objects.count() == 200
    open_cases = ExceptionCase.objects.filter(state__in=OPEN_STATES)
    assert open_cases.count() == 160
    assert not open_cases.filter(sla_due_at__isnull=True).exists()
    assert (
        not ExceptionCase.objects.exclude(state__in=OPEN_STATES)
        .filter(sla_due_at__isnull=False)
        .exists()
    )
    missing = ExceptionCase.objects.filter(reason_id="validation_failed").first()
    key = missing.detail.removeprefix("Missing required field ")
    assert missing.fingerprint == case_fingerprint(
        workflow_slug="lead-routing", reason_code="validation_failed", step="validate", key=key
    )
    assert ExceptionCase.objects.filter(owner_user__username="olivia").exists()
    assert Decision.objects.exists() and Attempt.objects.exists()
    words = ExceptionCase.objects.extra(  # noqa: S610 (a fixed test query)
        where=["search @@ plainto_tsquery('simple', 'acme')"]
    )
    assert words.exists()  # a word of the payloads (company names), not of the details


def test_it_needs_workflows() -> None:
    with pytest.raises(Exception, match="No workflows"):
        call_command("generate_cases", count=10, stdout=io.StringIO())
