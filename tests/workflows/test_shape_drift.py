"""Shape drift: a payload that departs from the shape its workflow's recent events had is
flagged with the difference, or held for a person where the workflow says so."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.actors import Actor
from exceptions.models import ExceptionCase
from tests.factories import ENTERPRISE_EMEA_LEAD, event_create
from tests.support.api import Api
from tests.support.engine import process_due, reload
from tests.support.sinks import Sink
from workflows.definitions import DefinitionError, Owners, parse_definition
from workflows.models import Event, EventState, ShapeDrift, ShapeScan, WorkflowVersion
from workflows.services.engine import event_retry
from workflows.services.shapes import shape_profile_learn
from workflows.services.tokens import api_token_create
from workflows.shapes import MIN_HISTORY, profile_learn, shape_changes
from workflows.tasks import learn_shapes

pytestmark = pytest.mark.django_db

MakeVersion = Callable[..., WorkflowVersion]
USUAL = {**ENTERPRISE_EMEA_LEAD, "utm": {"source": "ads", "campaign": "spring"}}


def without(payload: dict[str, Any], dotted: str) -> dict[str, Any]:
    changed = copy.deepcopy(payload)
    *parents, last = dotted.split(".")
    node = changed
    for part in parents:
        node = node[part]
    del node[last]
    return changed


def history(version: WorkflowVersion, count: int, payload_of: Callable[[int], dict]) -> None:
    """`count` events received before now, already succeeded, then the profile learned."""
    start = timezone.now() - timedelta(days=1)
    Event.objects.bulk_create(
        Event(
            workflow=version.workflow,
            version=version,
            payload=payload_of(n),
            payload_hash=f"h{n}",
            source="test",
            received_at=start + timedelta(seconds=n),
            state=EventState.SUCCEEDED,
            step="outcome",
        )
        for n in range(count)
    )
    shape_profile_learn(workflow=version.workflow)


def drift_of(event: Event) -> list[dict[str, str]]:
    row = ShapeDrift.objects.filter(event=event).first()
    return row.changes if row else []


def test_a_payload_missing_a_path_the_last_thousand_events_all_had_is_flagged_naming_it(
    lead_version: MakeVersion, sink: Sink
) -> None:
    version = lead_version()
    history(version, 1000, lambda n: USUAL)
    event = event_create(version, without(USUAL, "utm.source"))
    process_due()

    assert drift_of(event) == [
        {"path": "utm.source", "change": "missing", "expected": "string", "seen": "missing"}
    ]
    # Flagged, not held: the workflow does not block on drift.
    assert reload(event).state == EventState.SUCCEEDED
    assert len(sink.requests("/crm/leads")) == 1
    decision = event.decisions.get(rule="shape_drift")
    assert decision.ok
    assert "utm.source is missing" in decision.explanation
    assert "last 1,000 events" in decision.explanation


def test_a_batch_reads_its_workflow_s_shape_once_and_flags_each_event(
    lead_version: MakeVersion,
) -> None:
    version = lead_version()
    history(version, 200, lambda n: USUAL)
    odd = [event_create(version, without(USUAL, "utm.campaign")) for _ in range(6)]
    with CaptureQueriesContext(connection) as queries:
        process_due()
    reads = [q for q in queries.captured_queries if "workflows_shapescan" in q["sql"]]
    assert len(reads) == 1, [q["sql"][:120] for q in reads]
    assert all(drift_of(event)[0]["path"] == "utm.campaign" for event in odd)


def test_a_changed_type_and_a_new_top_level_key_are_flagged(lead_version: MakeVersion) -> None:
    version = lead_version()
    history(version, 200, lambda n: USUAL)
    odd = {**USUAL, "territory": 44, "coupon": "SPRING"}
    event = event_create(version, odd)
    process_due()
    assert drift_of(event) == [
        {"path": "territory", "change": "type_changed", "expected": "string", "seen": "integer"},
        {"path": "coupon", "change": "new_key", "expected": "absent", "seen": "string"},
    ]


def test_the_usual_shape_and_an_occasional_path_are_not_flagged(lead_version: MakeVersion) -> None:
    version = lead_version()
    # utm.campaign comes in one event out of two: its absence is nothing unusual.
    history(version, 400, lambda n: USUAL if n % 2 else without(USUAL, "utm.campaign"))
    usual = event_create(version, USUAL)
    no_campaign = event_create(version, without(USUAL, "utm.campaign"))
    process_due()
    assert drift_of(usual) == drift_of(no_campaign) == []
    assert not usual.decisions.filter(rule="shape_drift").exists()


def test_a_missing_parent_is_named_once_not_with_each_child() -> None:
    profile = profile_learn([USUAL] * MIN_HISTORY)
    changes = shape_changes(profile, without(USUAL, "utm"))
    assert [(c.path, c.change) for c in changes] == [("utm", "missing")]


def test_too_little_history_flags_nothing(lead_version: MakeVersion) -> None:
    version = lead_version()
    history(version, MIN_HISTORY - 1, lambda n: USUAL)
    event = event_create(version, without(USUAL, "utm"))
    process_due()
    assert drift_of(event) == []


def test_a_workflow_that_blocks_on_drift_holds_the_event_undelivered_in_a_case(
    lead_version: MakeVersion, sink: Sink, make_user
) -> None:
    version = lead_version(shape_drift="block")
    history(version, 1000, lambda n: USUAL)
    event = event_create(version, without(USUAL, "utm.source"))
    process_due()

    event = reload(event)
    assert event.state == EventState.NEEDS_ATTENTION
    assert sink.requests("/crm/leads") == []
    case = ExceptionCase.objects.get(event=event)
    assert case.reason_id == "payload_shape_changed"
    assert "utm.source is missing" in case.detail
    assert not event.decisions.get(rule="shape_drift").ok

    # A person who looked at it sends it on: the drift is still recorded, the event delivered.
    event_retry(event=event, actor=make_user("operator", username="olivia"), note="checked")
    process_due()
    assert reload(event).state == EventState.SUCCEEDED
    assert len(sink.requests("/crm/leads")) == 1
    assert drift_of(event)[0]["path"] == "utm.source"


def test_a_blocking_workflow_lets_the_usual_shape_through(
    lead_version: MakeVersion, sink: Sink
) -> None:
    version = lead_version(shape_drift="block")
    history(version, 100, lambda n: USUAL)
    event = event_create(version, USUAL)
    process_due()
    assert reload(event).state == EventState.SUCCEEDED


def test_the_api_lists_the_drift_of_an_event(lead_version: MakeVersion, client: Client) -> None:
    version = lead_version()
    history(version, 100, lambda n: USUAL)
    event = event_create(version, {**USUAL, "territory": None})
    plain = event_create(version, USUAL)
    process_due()
    _, token = api_token_create(
        name="reader", workflow_slugs=[], all_workflows=True, actor=Actor("system", "tests")
    )
    api = Api(client, token)
    body = api.get(f"/events/{event.pk}").json()
    assert body["shape_drift"] == [
        {"path": "territory", "change": "type_changed", "expected": "string", "seen": "null"}
    ]
    assert api.get(f"/events/{plain.pk}").json()["shape_drift"] == []


def test_the_event_page_shows_the_difference(
    lead_version: MakeVersion, client: Client, operator
) -> None:
    version = lead_version()
    history(version, 100, lambda n: USUAL)
    event = event_create(version, without(USUAL, "email"))
    process_due()
    client.force_login(operator)
    page = client.get(f"/events/{event.pk}/").content.decode()
    assert 'data-testid="shape-drift"' in page
    assert "<code>email</code>" in page


MINIMAL = """\
slug: drift-test
name: Drift test
owner: revenue-ops
routes:
  - {name: default, when: 'true', owner: revenue-ops}
"""


def test_a_definition_may_block_on_drift_and_flagging_is_the_unwritten_default() -> None:
    def load(extra: str = "") -> dict[str, Any]:
        owners = Owners(teams={"revenue-ops"})
        return parse_definition(MINIMAL + extra, filename="d.yaml", owners=owners)

    assert load("shape_drift: block\n")["shape_drift"] == "block"
    assert load("shape_drift: flag\n") == load()
    assert "shape_drift" not in load()
    with pytest.raises(DefinitionError, match="d.yaml:6: shape_drift must be flag or block"):
        load("shape_drift: sometimes\n")


def test_the_periodic_task_learns_every_workflows_shape(lead_version: MakeVersion) -> None:
    version = lead_version()
    history(version, 60, lambda n: USUAL)
    ShapeScan.objects.all().delete()
    assert learn_shapes() == 1
    scan = ShapeScan.objects.get(workflow=version.workflow)
    assert scan.profile["events"] == 60
    assert scan.profile["paths"]["utm.source"] == {"seen": 60, "types": {"string": 60}}
    assert scan.last_event_id == Event.objects.latest("id").pk


def test_the_workflow_page_counts_and_charts_the_drift(
    lead_version: MakeVersion, client: Client, make_user
) -> None:
    version = lead_version()
    history(version, 100, lambda n: USUAL)
    flagged = [event_create(version, without(USUAL, "utm.source")) for _ in range(3)]
    event_create(version, USUAL)
    process_due()
    client.force_login(make_user("manager", username="maria"))
    response = client.get(f"/workflows/{version.workflow.slug}/")
    drift = response.context["drift"]
    assert drift.total == 3
    assert drift.changes == [("utm.source", "missing", 3)]
    assert sorted(drift.latest) == sorted(e.pk for e in flagged)
    assert not drift.blocks
    html = response.content.decode()
    assert 'data-testid="chart-drift"' in html
    assert f'href="/events/{flagged[0].pk}/"' in html
