"""The replay preview: what a version would decide for a payload, and that it writes nothing."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from exceptions.preview import preview_event, preview_payload, validation_problems
from tests.exceptions import factories
from workflows.models import Membership
from workflows.rules import compiled_version

pytestmark = pytest.mark.django_db


def test_validation_names_missing_fields_and_wrong_types() -> None:
    flow = factories.workflow()
    compiled = compiled_version(flow.current_version)
    problems = validation_problems(compiled, {"email": 7, "company": {}})
    assert [(p.path, p.problem) for p in problems] == [
        ("email", "is integer"),
        ("company.size", "missing"),
    ]
    assert str(problems[1]) == "company.size is missing (expected integer)"
    assert validation_problems(compiled, factories.GOOD_LEAD) == []


def test_the_preview_routes_resolves_the_owner_and_finds_review_gates(make_user) -> None:
    flow = factories.workflow()
    person = make_user("operator", username="sam")
    Membership.objects.create(user=person, team=factories.team("revenue-ops"))
    small = preview_payload(version=flow.current_version, payload=factories.GOOD_LEAD | {
        "company": {"size": 20}
    })  # fmt: skip
    assert small.valid and small.context == {"segment": "smb"}
    assert (small.route.name, small.route_owner, small.owner) == (
        "default",
        "revenue-ops",
        "revenue-ops",
    )
    assert small.review == [] and small.outcome == "would route and finish (no action)"

    huge = preview_payload(
        version=flow.current_version, payload={"email": "a@b.c", "company": {"size": 9000}}
    )
    assert huge.route.name == "enterprise" and huge.route_owner == "sales-managers"
    # Nobody is on sales-managers and the fallback is the same team: no owner.
    assert huge.owner == "" and "no active members" in huge.owner_note
    assert [g.name for g in huge.review] == ["huge-deal"]
    assert huge.outcome == "would find no owner (no_owner)"


def test_a_rule_error_is_reported_not_raised() -> None:
    flow = factories.workflow()
    broken = preview_payload(version=flow.current_version, payload={"email": "a@b.c"})
    assert not broken.valid
    assert any("enrich segment" in error for error in broken.errors)
    assert broken.outcome == "would stop at validation (validation_failed)"


def test_previewing_writes_nothing() -> None:
    case = factories.case()
    with CaptureQueriesContext(connection) as queries:
        preview_event(event=case.event, payload={"email": "x@y.z", "company": {"size": 1}})
        preview_event(event=case.event, current=False)
    writes = [q["sql"] for q in queries if not q["sql"].lstrip().upper().startswith("SELECT")]
    assert writes == []


def test_the_preview_validates_types_exactly_as_the_engine_does() -> None:
    from exceptions.preview import validation_problems
    from workflows.rules import compile_definition

    definition = {
        "slug": "s", "name": "s", "owner": "t", "fallback_owners": [],
        "required_fields": [{"path": "size", "type": "integer"}],
        "enrich": [], "routes": [], "review": [], "action": {"type": "none"},
        "retry": {"schedule": []}, "outcome": {"confirm_within": None},
        "sla": {"acknowledge_within": None, "resolve_within": None},
    }  # fmt: skip
    compiled = compile_definition(definition, version_number=1)
    assert validation_problems(compiled, {"size": 3.0}) == []  # a whole number, as JSON counts it
    assert [p.path for p in validation_problems(compiled, {"size": 3.5})] == ["size"]
