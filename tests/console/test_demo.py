"""The demo data `make run` seeds: idempotent, realistic, and triaged through real services."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

from audit.models import AuditEntry
from console.demo.triage import demo_triage
from exceptions.models import ExceptionCase
from workflows.models import Event, EventState, Workflow
from workflows.services.engine import events_process_due

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The triage task is queued for the worker; here it is run by hand instead.
    monkeypatch.setattr("console.tasks.demo_triage.apply_async", lambda **kwargs: None)
    with override_settings(DATA_DIR=tmp_path):
        call_command("seed_demo", stdout=open(tmp_path / "out.txt", "w"))  # noqa: SIM115
        yield tmp_path


def test_seeding_twice_creates_everything_once(seeded: Path) -> None:
    assert Workflow.objects.filter(current_version__number=1).count() == 3
    assert Event.objects.count() == 320
    with override_settings(DATA_DIR=seeded):
        call_command("seed_demo", stdout=open(seeded / "again.txt", "w"))  # noqa: SIM115
    assert Event.objects.count() == 320
    assert "demo events present" in (seeded / "again.txt").read_text()
    assert (seeded / "demo-api-token").read_text().startswith("hnd_")


def test_demo_triage_leads_to_failed_and_cancelled_events_once(seeded: Path) -> None:
    # Destinations unreachable here: validation and review still open their cases.
    events_process_due(limit=100, worker="test", budget_seconds=60)
    assert ExceptionCase.objects.filter(reason_id="validation_failed").exists()
    assert ExceptionCase.objects.filter(reason_id="review_required").exists()

    assert demo_triage() > 0
    states = set(Event.objects.values_list("state", flat=True))
    assert {EventState.FAILED, EventState.CANCELLED} <= states
    actors = set(AuditEntry.objects.values_list("actor_label", flat=True))
    assert {"olivia", "marcus"} <= actors
    assert demo_triage() == 0, "a second run does nothing"


def test_the_demo_has_an_ownership_history_and_a_hand_over(seeded: Path) -> None:
    from workflows.models import Membership, WorkflowOwnership

    lead_routing = WorkflowOwnership.objects.filter(workflow__slug="lead-routing").order_by("id")
    assert [(o.source, o.valid_to is None) for o in lead_routing] == [
        ("definition", False),
        ("console", True),
    ]
    priya = Membership.objects.filter(user__username="priya").order_by("id")
    assert [(m.role, m.valid_to is None) for m in priya] == [("member", False), ("lead", True)]
    assert Membership.objects.get(user__username="lena", team__slug="support-tier1").valid_to
    with override_settings(DATA_DIR=seeded):
        call_command("seed_demo", stdout=open(seeded / "again.txt", "w"))  # noqa: SIM115
    assert WorkflowOwnership.objects.filter(workflow__slug="lead-routing").count() == 2

    events_process_due(limit=400, worker="test", budget_seconds=120)
    demo_triage()
    handed = AuditEntry.objects.filter(action="case.assign", reason__startswith="Handed over: sven")
    assert handed.count() == 3
    assert not ExceptionCase.objects.filter(owner_user__username="sven", state="open").exists()
