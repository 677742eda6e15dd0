"""What-if: a draft checked without saving, and run on the last events by the engine's dry run."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from audit.models import AuditEntry
from tests.factories import definition, event_create, version_create
from workflows.definition_text import definition_yaml
from workflows.models import Decision, Event, Team, WorkflowVersion
from workflows.simulation import draft_simulate

pytestmark = pytest.mark.django_db

SIZES = (300, 600, 800, 1200)
TERRITORIES = ("EMEA", "NA")


def lead(size: int, territory: str) -> dict:
    return {"email": "a@example.com", "company": {"size": size}, "territory": territory}


@pytest.fixture
def history(lead_teams: dict[str, Team]) -> dict[tuple[int, str], Event]:
    """Lead routing v1 (enterprise from 500 employees) and one event per size and territory."""
    version = version_create(definition(action={"type": "none"}))
    return {(s, t): event_create(version, lead(s, t)) for s in SIZES for t in TERRITORIES}


def draft(**changes) -> dict:
    return definition(action={"type": "none"}, **changes)


def moved_threshold(at: int) -> dict:
    """The draft: enterprise (and so the EMEA enterprise route) from `at` employees."""
    return draft(enrich=[{"name": "segment", "expr": f'payload.company.size >= {at} ? "enterprise" : "smb"'}])  # fmt: skip


def test_a_draft_that_moves_the_threshold_reports_exactly_the_events_routed_differently(
    history,
) -> None:
    workflow = history[(300, "EMEA")].workflow
    result = draft_simulate(workflow=workflow, definition=moved_threshold(1000), last=100)
    assert result.compared == 8
    # EMEA leads of 600 and 800 were enterprise (emea-enterprise); under the draft they are smb.
    moved = {history[(600, "EMEA")].pk, history[(800, "EMEA")].pk}
    assert {d.event_id for d in result.differences} == moved
    assert result.counts == {"validated": 0, "routed": 2, "reviewed": 0}
    example = result.examples("routed")[0]
    assert (example.before, example.after) == ("routed to emea-enterprise", "routed to inbound-sdr")
    # Nothing of it was written.
    assert not Decision.objects.exists()
    assert set(Event.objects.values_list("state", flat=True)) == {"received"}


def test_two_drafts_one_after_the_other_each_run_their_own_rules(history) -> None:
    workflow = history[(300, "EMEA")].workflow
    first = draft_simulate(workflow=workflow, definition=moved_threshold(1000))
    second = draft_simulate(workflow=workflow, definition=moved_threshold(250))
    assert first.counts["routed"] == 2
    assert {d.event_id for d in second.differences} == {history[(300, "EMEA")].pk}


def test_validation_and_review_differences_are_counted_apart(history) -> None:
    workflow = history[(300, "EMEA")].workflow
    stricter = draft(
        required_fields=[
            {"path": "email", "type": "string"},
            {"path": "company.size", "type": "integer"},
            {"path": "company.name", "type": "string"},  # no payload has it
        ]
    )
    assert draft_simulate(workflow=workflow, definition=stricter).counts == {
        "validated": 8, "routed": 0, "reviewed": 0,
    }  # fmt: skip
    gated = draft(
        review=[{"name": "huge", "when": "payload.company.size > 1000", "reason": "Huge"}]
    )
    result = draft_simulate(workflow=workflow, definition=gated)
    assert result.counts == {"validated": 0, "routed": 0, "reviewed": 2}
    assert result.differences[0].after.startswith("review_required at review")


def test_last_n_takes_the_newest_events(history) -> None:
    workflow = history[(300, "EMEA")].workflow
    result = draft_simulate(workflow=workflow, definition=moved_threshold(1000), last=2)
    assert result.compared == 2
    assert result.changed == 0  # the newest two are the 1200-employee leads


def test_simulate_workflow_command_prints_the_differences(history, tmp_path: Path) -> None:
    path = tmp_path / "lead-routing.yaml"
    path.write_text(definition_yaml(moved_threshold(1000)))
    out = io.StringIO()
    call_command("simulate_workflow", str(path), "--last", "50", stdout=out)
    text = out.getvalue()
    assert "against v1 on the last 8 events: 2 decided differently" in text
    assert "routed differently: 2" in text
    assert (
        f"event {history[(600, 'EMEA')].pk}: routed to emea-enterprise -> routed to inbound-sdr"
        in text
    )
    assert WorkflowVersion.objects.count() == 1


def test_load_workflows_check_validates_and_saves_nothing(history, tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(definition_yaml(moved_threshold(1000)))
    out = io.StringIO()
    call_command("load_workflows", str(good), "--check", stdout=out)
    assert "lead-routing: valid; loading it makes version 2" in out.getvalue()
    assert "nothing was saved" in out.getvalue()
    assert WorkflowVersion.objects.count() == 1 and not AuditEntry.objects.exists()

    call_command("load_workflows", str(good), stdout=io.StringIO())  # now it is loaded: v2
    out = io.StringIO()
    call_command("load_workflows", str(good), "--check", stdout=out)
    assert "same content as the current version 2, loading it changes nothing" in out.getvalue()

    bad = tmp_path / "bad.yaml"
    broken = yaml.safe_load(definition_yaml(draft()))
    broken["routes"][0]["owner"] = "nobody-team"
    bad.write_text(yaml.safe_dump(broken, sort_keys=False))
    with pytest.raises(CommandError, match=r"bad.yaml:\d+: .*unknown team 'nobody-team'"):
        call_command("load_workflows", str(bad), "--check", stdout=io.StringIO())
    assert WorkflowVersion.objects.count() == 2


# --- on the workflow page --------------------------------------------------------------------


def test_an_admin_simulates_a_draft_from_the_workflow_page(history, client, make_user) -> None:
    client.force_login(make_user("admin", username="ada"))
    page = client.get("/workflows/lead-routing/").content.decode()
    assert 'id="sim-draft"' in page and "payload.company.size &gt;= 500" in page
    response = client.post(
        "/workflows/lead-routing/simulate/",
        {"draft": definition_yaml(moved_threshold(1000)), "last": 200},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="simulation"')
    assert '<strong data-testid="sim-changed">2</strong>' in body
    rows = set(re.findall(r'<tr data-event="(\d+)">', body))
    assert rows == {str(history[(600, "EMEA")].pk), str(history[(800, "EMEA")].pk)}


def test_a_draft_that_would_not_load_says_why(history, client, make_user) -> None:
    client.force_login(make_user("admin", username="ada"))
    response = client.post(
        "/workflows/lead-routing/simulate/",
        {"draft": "slug: lead-routing\nname: x\nowner: revenue-ops\nroutes: nope\n", "last": 5},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 422
    assert "The draft would not load" in response.content.decode()


def test_only_admins_may_simulate(history, client, make_user) -> None:
    client.force_login(make_user("manager", username="mia"))
    assert 'id="sim-draft"' not in client.get("/workflows/lead-routing/").content.decode()
    response = client.post(
        "/workflows/lead-routing/simulate/", {"draft": "x", "last": 5}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 403
