"""For generated payloads, the dry run decides exactly what the engine then records.

Each demo workflow is loaded through the real loader, with the demo teams and people, its
action pointed at a local sink. Payloads miss fields, carry wrong types and sit around the
rules' thresholds; some teams are made inactive so routing falls back or finds no one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as observe
from hypothesis import strategies as st

from audit.actors import SYSTEM
from console.demo.org import WORKFLOW_FILES, demo_org_ensure
from exceptions.models import ExceptionCase
from tests.factories import event_create
from tests.support.engine import process_due, reload
from tests.support.sinks import Sink
from workflows.models import Decision, Event, EventState, Team, WorkflowVersion
from workflows.owners import owner_ref
from workflows.services.definitions import workflows_load
from workflows.services.engine import DryRun, payload_dry_run

pytestmark = pytest.mark.django_db

MISSING = object()
EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    database=None,
    # The demo organisation is set up once per test; every example reads it, none changes it
    # for the next (team states are restored).
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
# One value of each JSON type: the wrong type for most fields, the right one for a few.
ANY_TYPE = [None, True, "820", 3.5, [1], {"a": 1}, 7]

# Per required field: values that pass validation, including those at the rules' thresholds.
GOOD_VALUES: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "lead-routing": {
        "email": st.sampled_from(["ada@example.com", "sam@gmail.com", "kim@outlook.com"]),
        "company.name": st.just("Analytical Engines"),
        "company.size": st.one_of(
            st.integers(min_value=495, max_value=505),
            st.sampled_from([0, 5000, 499.0, 500.0]),
        ),
        "territory": st.sampled_from(["EMEA", "NA", "emea"]),
    },
    "refund-approval": {
        "order_id": st.just("O-1001"),
        "amount": st.one_of(
            st.sampled_from([0, 100, 101, 1000, 1001, -5]),
            st.floats(min_value=99, max_value=1002, allow_nan=False, allow_infinity=False),
        ),
        "currency": st.just("EUR"),
        "reason": st.just("damaged in transit"),
    },
    "support-triage": {
        "ticket_id": st.just("T-77"),
        "subject": st.just("Checkout is down"),
        "category": st.sampled_from(["outage", "billing", "Outage"]),
        "customer.tier": st.sampled_from(["enterprise", "free"]),
    },
}
TEAMS = {
    "lead-routing": ["revenue-ops", "sales-managers", "emea-enterprise", "inbound-sdr"],
    "refund-approval": ["finance-ops", "finance-managers"],
    "support-triage": ["support-tier1", "support-escalations"],
}


def payloads(slug: str) -> st.SearchStrategy[dict[str, Any]]:
    """Three in four payloads pass validation (to reach routing and review); the rest have each
    required field right, of a wrong type or missing, and an object on the way (company,
    customer) sometimes not an object at all."""
    good = GOOD_VALUES[slug]
    valid = st.builds(_payload, st.fixed_dictionaries(good), st.just({}))
    fields = {
        path: st.one_of(value, st.sampled_from(ANY_TYPE), st.just(MISSING))
        for path, value in good.items()
    }
    parents = sorted({path.split(".")[0] for path in fields if "." in path})
    broken: st.SearchStrategy[dict[str, Any]] = st.just({})
    if parents:
        broken = st.dictionaries(st.sampled_from(parents), st.sampled_from(ANY_TYPE), max_size=1)
    faulty = st.builds(_payload, st.fixed_dictionaries(fields), broken)
    return st.integers(min_value=0, max_value=3).flatmap(lambda n: faulty if n == 0 else valid)


def _payload(values: dict[str, Any], broken_parents: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    for path, value in values.items():
        if value is MISSING:
            continue
        *parents, leaf = path.split(".")
        node = payload
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    payload.update(broken_parents)
    return payload


@pytest.fixture
def demo_versions(sink: Sink) -> Iterator[dict[str, WorkflowVersion]]:
    """The demo organisation, then each demo workflow again with its action at the sink."""
    demo_org_ensure()
    sources = []
    for path in WORKFLOW_FILES:
        text = path.read_text(encoding="utf-8")
        sources.append((path.name, re.sub(r"url: \S+", f"url: {sink.url('/demo')}", text)))
    loaded = workflows_load(sources=sources, actor=SYSTEM)
    assert {r.status for r in loaded} == {"new_version"}  # nothing is sent to the demo's URLs
    yield {r.workflow.slug: r.version for r in loaded}


def outcome(dry: DryRun) -> tuple[Any, ...]:
    return (dry.stopped_at, dry.reason_code, dry.detail, dry.owner)


def recorded_outcome(event: Event) -> tuple[Any, ...]:
    """What the engine recorded, in the dry run's terms: where it stopped, why, who owns it."""
    event = reload(event)
    owner = owner_ref(event.owner_user or event.owner_team)
    case = ExceptionCase.objects.filter(event=event).first()
    if case is None:
        assert event.state in (EventState.SUCCEEDED, EventState.DELIVERED), event.state
        return ("", "", "", owner)
    assert event.state == EventState.NEEDS_ATTENTION
    return (case.step, case.reason_id, case.detail, owner)


def facts(decisions: Iterable[Decision]) -> list[tuple[Any, ...]]:
    steps = ("validate", "enrich", "route", "review")
    return [
        (d.step, d.rule, d.ok, d.explanation, d.inputs, d.result)
        for d in decisions
        if d.step in steps
    ]


@pytest.mark.parametrize("slug", sorted(GOOD_VALUES))
@EXAMPLES
@given(data=st.data())
def test_the_dry_run_decides_what_the_engine_records(
    demo_versions: dict[str, WorkflowVersion], slug: str, data: st.DataObject
) -> None:
    version = demo_versions[slug]
    payload = data.draw(payloads(slug), label="payload")
    inactive = data.draw(st.sets(st.sampled_from(TEAMS[slug]), max_size=2), label="inactive")
    Team.objects.filter(slug__in=inactive).update(active=False)
    try:
        dry = payload_dry_run(version=version, payload=payload)
        event = event_create(version, payload)
        process_due()
    finally:
        Team.objects.filter(slug__in=inactive).update(active=True)

    # Seen with --hypothesis-show-statistics: how often each step stops the event.
    observe(f"{dry.stopped_at or 'action'}: {dry.reason_code or 'none'}")
    recorded = Decision.objects.filter(event=event).order_by("created_at", "id")
    assert facts(dry.decisions) == facts(recorded)
    assert outcome(dry) == recorded_outcome(event)


# JSON that ingest would store: no NUL, no lone surrogates, finite numbers.
TEXT = st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(TEXT, max_size=20),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(TEXT, max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@pytest.mark.parametrize("slug", sorted(GOOD_VALUES))
@EXAMPLES
@given(data=st.data())
def test_no_payload_makes_the_engine_raise(
    demo_versions: dict[str, WorkflowVersion], slug: str, data: st.DataObject
) -> None:
    """Arbitrary JSON objects, merged over a valid payload or alone: every event settles as a
    decision (delivered, or a case with its reason), never as an error the engine did not mean."""
    base = data.draw(st.one_of(st.just({}), payloads(slug)), label="base")
    extra = data.draw(st.dictionaries(st.text(TEXT, max_size=12), JSON, max_size=6), label="extra")
    event = event_create(demo_versions[slug], {**base, **extra})
    result = process_due()
    assert (result.claimed, result.crashed, result.written) == (1, 0, 1)
    assert reload(event).state != EventState.PROCESSING
