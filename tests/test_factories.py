"""The shared test data is what the services make: tests built on it would prove little otherwise."""

from __future__ import annotations

import pytest

from audit.canonical import canonical_hash
from exceptions.models import ExceptionCase
from tests import factories
from tests.support.engine import process_due

pytestmark = pytest.mark.django_db

LEAD_WITHOUT_SIZE = {"email": "dana@example.com", "company": {"name": "Example GmbH"}}


def test_a_made_case_is_the_case_the_engine_opens_for_the_same_payload() -> None:
    made = factories.case(payload=LEAD_WITHOUT_SIZE)
    ingested = factories.event_create(made.event.version, LEAD_WITHOUT_SIZE)
    process_due()
    opened = ExceptionCase.objects.get(event=ingested)

    case_fields = ("reason_id", "state", "step", "detail", "fingerprint", "owner_team_id")
    assert [getattr(made, f) for f in case_fields] == [getattr(opened, f) for f in case_fields]
    decision_fields = ("step", "rule", "version_number", "result", "ok", "explanation")
    made_decision = made.event.decisions.get()
    engine_decision = ingested.decisions.get()
    assert [getattr(made_decision, f) for f in decision_fields] == [
        getattr(engine_decision, f) for f in decision_fields
    ]
    assert made.event.payload_hash == ingested.payload_hash == canonical_hash(LEAD_WITHOUT_SIZE)
