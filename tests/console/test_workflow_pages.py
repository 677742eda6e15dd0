"""/workflows/ and /workflows/<slug>/: the catalogue, rules, versions and their diff."""

from __future__ import annotations

import re

import pytest
import yaml

from tests import factories
from workflows.definition_text import definition_diff, definition_yaml, duration_text
from workflows.definitions import Owners, parse_definition
from workflows.models import Outcome

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def signed_in(client, make_user):
    client.force_login(make_user("auditor", username="avery"))
    return client


def lead_versions():
    """lead-routing v1, then v2 with the enterprise threshold moved and a longer retry."""
    v1 = factories.version_create(
        factories.definition(url="https://user:pw@crm.example/leads?key=s3cret")
    )
    changed = factories.definition(url="https://user:pw@crm.example/leads?key=s3cret")
    changed["enrich"][0]["expr"] = 'payload.company.size >= 1000 ? "enterprise" : "smb"'
    changed["retry"]["schedule"] = [5, 300, 1800, 7200, 18000, 36000, 86400]
    v2 = factories.version_create(changed)
    for slug in factories.LEAD_TEAMS:
        factories.team(slug)
    return v1, v2


def test_the_catalogue_shows_each_workflow_at_a_glance(signed_in) -> None:
    flow = factories.workflow()
    event = factories.event_create(flow.current_version, factories.GOOD_LEAD, state="succeeded")
    Outcome.objects.create(event=event, status="achieved", source="delivery")
    factories.case()
    response = signed_in.get("/workflows/")
    assert response.status_code == 200
    row = re.search(r'<tr data-workflow="lead-routing">(.*?)</tr>', response.content.decode(), re.S)
    cells = row.group(1)
    assert 'href="/workflows/lead-routing/"' in cells
    assert "revenue-ops" in cells and "then sales-managers" in cells  # owner and fallback
    assert ">v1<" in cells
    assert ">2<" in cells  # events in over the last days
    assert "<strong>50%</strong>" in cells  # one achieved, one waiting for a person
    assert 'href="/queue/?workflow=lead-routing">1<' in cells  # the open exception
    assert "ago" in cells  # last success, last failure


def test_the_workflow_page_shows_rules_policy_and_recent_events(signed_in) -> None:
    _, v2 = lead_versions()
    event = factories.event_create(v2, factories.GOOD_LEAD, state="succeeded")
    Outcome.objects.create(event=event, status="achieved", source="manual")
    body = signed_in.get("/workflows/lead-routing/").content.decode()
    assert "context.segment == &quot;enterprise&quot; &amp;&amp; payload.territory" in body
    # Each enrich rule, its field and its expression.
    assert "<dt><code>segment</code></dt>" in body
    assert "payload.company.size &gt;= 500 ? &quot;enterprise&quot; : &quot;smb&quot;" in body
    assert "emea-enterprise" in body and "Refunds above 1000 need a manager" in body
    assert "waits 5s, 5m, 30m, 2h, 5h, 10h, 1d after each failed attempt (7 retries)" in body
    assert "acknowledge within 30m, resolve within 4h" in body
    # The destination is shown redacted: no userinfo, no query.
    assert "https://redacted@crm.example/leads?redacted" in body
    assert "s3cret" not in body and "user:pw" not in body
    assert f'href="/events/{event.pk}/"' in body and "by hand" in body


def test_the_version_diff_shows_what_changed_between_any_two(signed_in) -> None:
    lead_versions()
    body = signed_in.get("/workflows/lead-routing/").content.decode()
    diff = re.search(r'<pre class="diff".*?</pre>', body, re.S).group(0)
    assert re.search(r'dl-del">-\s+segment: \S*payload.company.size &gt;= 500 ', diff)
    assert re.search(r'dl-add">\+\s+segment: \S*payload.company.size &gt;= 1000 ', diff)
    assert re.search(r'dl-add">\+\s+- 1d<', diff)
    assert "- 5s" not in diff  # three lines of context, not the whole definition
    assert "s3cret" not in diff
    same = signed_in.get("/workflows/lead-routing/?from=2&to=2", **HTMX).content.decode()
    assert same.lstrip().startswith('<div id="diff"')
    assert "v2 and v2 read the same" in same
    back = signed_in.get("/workflows/lead-routing/?from=2&to=1", **HTMX).content.decode()
    assert re.search(r'dl-add">\+\s+segment: \S*payload.company.size &gt;= 500 ', back)


def test_an_unknown_workflow_is_a_404(signed_in) -> None:
    assert signed_in.get("/workflows/nothing-here/").status_code == 404


def test_the_rendered_yaml_loads_again_as_the_same_definition() -> None:
    for slug in factories.LEAD_TEAMS:
        factories.team(slug)
    stored = factories.definition()
    text = definition_yaml(stored)
    assert list(yaml.safe_load(text))[:4] == ["slug", "name", "owner", "fallback_owners"]
    assert "null" not in text and "segment: 'payload.company.size >= 500" in text
    owners = Owners(teams=set(factories.LEAD_TEAMS))
    assert parse_definition(text, filename="again.yaml", owners=owners) == {
        **stored,
        "description": "",
    }


def test_durations_read_in_the_units_a_file_uses() -> None:
    assert [duration_text(s) for s in (5, 300, 7200, 86400, 90, 0.25)] == [
        "5s", "5m", "2h", "1d", "90s", "250ms",
    ]  # fmt: skip
    assert definition_diff({"a": 1}, {"a": 1}, old_name="v1", new_name="v2") == []
