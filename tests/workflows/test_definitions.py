from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.canonical import canonical_hash
from audit.models import AuditEntry
from tests.factories import TeamFactory, event_create
from workflows.definitions import DefinitionError, Owners, parse_definition
from workflows.models import Workflow, WorkflowVersion
from workflows.rules import compiled_version

pytestmark = pytest.mark.django_db

LEAD_ROUTING = """\
slug: lead-routing
name: Lead routing
owner: revenue-ops                 # team slug
fallback_owners: [sales-managers]
required_fields:
  - {path: email, type: string}
  - {path: company.size, type: integer}
enrich:
  segment: 'payload.company.size >= 500 ? "enterprise" : "smb"'
routes:
  - {name: enterprise-emea, when: 'context.segment == "enterprise" && payload.territory == "EMEA"', owner: emea-enterprise}
  - {name: default, when: 'true', owner: inbound-sdr}
review:
  - {name: big-deal, when: 'payload.company.size > 10000', reason: Very large accounts need a lead}
action:
  type: webhook
  url: http://127.0.0.1:9000/crm/leads
  timeout_seconds: 10
retry:
  schedule: [5s, 5m, 30m, 2h, 5h, 10h]
outcome:
  confirm_within: 10m
sla:
  acknowledge_within: 30m
  resolve_within: 4h
"""

TEAMS = ("revenue-ops", "sales-managers", "emea-enterprise", "inbound-sdr")
OWNERS = Owners(teams=set(TEAMS), users={"ada"})


@pytest.fixture
def teams() -> None:
    for slug in TEAMS:
        TeamFactory(slug=slug)


@pytest.fixture
def lead_file(tmp_path: Path) -> Path:
    path = tmp_path / "lead-routing.yaml"
    path.write_text(LEAD_ROUTING)
    return path


def problems_of(text: str) -> list[str]:
    with pytest.raises(DefinitionError) as excinfo:
        parse_definition(text, filename="lead.yaml", owners=OWNERS)
    return [str(p) for p in excinfo.value.problems]


def test_the_design_example_normalizes_durations_to_seconds() -> None:
    definition = parse_definition(LEAD_ROUTING, filename="lead.yaml", owners=OWNERS)
    assert definition["retry"]["schedule"] == [5, 300, 1800, 7200, 18000, 36000]
    assert definition["outcome"] == {"confirm_within": 600}
    assert definition["sla"] == {"acknowledge_within": 1800, "resolve_within": 14400}
    assert [r["name"] for r in definition["routes"]] == ["enterprise-emea", "default"]
    assert definition["enrich"][0]["name"] == "segment"


def test_cosmetic_changes_do_not_change_the_content_hash() -> None:
    first = parse_definition(LEAD_ROUTING, filename="a.yaml", owners=OWNERS)
    respelled = LEAD_ROUTING.replace("confirm_within: 10m", "confirm_within: 600").replace(
        "# team slug", "# owns every lead"
    )
    second = parse_definition(respelled, filename="b.yaml", owners=OWNERS)
    assert canonical_hash(first) == canonical_hash(second)


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ("timeout_seconds: 10", "timeout_secs: 10", "unknown key 'timeout_secs' in action"),
        ("[5s, 5m,", "[5s, 5 minutes,", "retry.schedule[1]: bad duration '5 minutes'"),
        ("owner: inbound-sdr", "owner: nobody", "route 'default' owner: unknown team 'nobody'"),
        ("type: integer", "type: int", "type 'int' of company.size is not a JSON type"),
        ("size >= 500 ?", "size >= ?", "enrich rule 'segment' does not compile"),
        ("owner: revenue-ops", "owner: ghost-team", "owner: unknown team 'ghost-team'"),
        ("type: webhook", "type: carrier-pigeon", "action type 'carrier-pigeon' must be"),
        ("resolve_within: 4h", "resolve_within: four hours", "sla.resolve_within: bad duration"),
    ],
)
def test_a_bad_definition_names_file_line_and_reason(old: str, new: str, reason: str) -> None:
    text = LEAD_ROUTING.replace(old, new)
    line = next(n for n, content in enumerate(text.splitlines(), 1) if new in content)
    problems = problems_of(text)
    assert any(p.startswith(f"lead.yaml:{line}: {reason}") for p in problems), problems


def test_every_problem_is_reported_at_once() -> None:
    text = LEAD_ROUTING.replace("timeout_seconds: 10", "timeout_secs: 10").replace(
        "type: integer", "type: int"
    )
    assert len(problems_of(text)) == 2


def test_a_person_can_own_a_route() -> None:
    text = LEAD_ROUTING.replace("owner: inbound-sdr", "owner: user:ada")
    definition = parse_definition(text, filename="lead.yaml", owners=OWNERS)
    assert definition["routes"][1]["owner"] == "user:ada"
    assert "unknown user 'bob'" in problems_of(text.replace("user:ada", "user:bob"))[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "lead.yaml:1: the file is empty"),
        ("slug: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "the definition must be a mapping"),
        ("slug: x\nname: X\nowner: revenue-ops\n", "missing required key 'routes'"),
        ("slug: Not A Slug\nname: X\nowner: revenue-ops\nroutes: []\n", "must be lowercase"),
    ],
)
def test_malformed_files_are_refused_with_a_reason(text: str, expected: str) -> None:
    assert any(expected in p for p in problems_of(text))


def test_loading_the_same_file_twice_creates_one_version(teams, lead_file: Path, capsys) -> None:
    call_command("load_workflows", str(lead_file))
    call_command("load_workflows", str(lead_file))
    out = capsys.readouterr().out
    assert "lead-routing: created, version 1" in out
    assert "lead-routing: unchanged, still version 1" in out
    workflow = Workflow.objects.get(slug="lead-routing")
    assert workflow.versions.count() == 1
    assert workflow.signing_secret.startswith("whsec_")
    assert (
        AuditEntry.objects.filter(action="workflow.create", object_id=str(workflow.pk)).count() == 1
    )


def test_a_changed_rule_creates_version_two_and_events_keep_theirs(teams, lead_file: Path) -> None:
    call_command("load_workflows", str(lead_file))
    workflow = Workflow.objects.get(slug="lead-routing")
    v1 = workflow.current_version
    event = event_create(v1, {"email": "a@b.c"})
    lead_file.write_text(LEAD_ROUTING.replace("size >= 500", "size >= 1000"))
    call_command("load_workflows", str(lead_file))
    workflow.refresh_from_db()
    assert workflow.current_version.number == 2
    assert (
        compiled_version(workflow.current_version)
        .enrich[0]
        .source.startswith("payload.company.size >= 1000")
    )
    event.refresh_from_db()
    assert event.version == v1
    assert (
        compiled_version(event.version).enrich[0].source.startswith("payload.company.size >= 500")
    )
    entry = AuditEntry.objects.get(action="workflow.version_create")
    assert (entry.before, entry.after["version"]) == ({"version": 1}, 2)


def test_reverting_a_file_makes_the_old_version_current_again(teams, lead_file: Path) -> None:
    call_command("load_workflows", str(lead_file))
    lead_file.write_text(LEAD_ROUTING.replace("size >= 500", "size >= 1000"))
    call_command("load_workflows", str(lead_file))
    lead_file.write_text(LEAD_ROUTING)
    call_command("load_workflows", str(lead_file))
    workflow = Workflow.objects.get(slug="lead-routing")
    assert workflow.versions.count() == 2
    assert workflow.current_version.number == 1


def test_one_bad_file_refuses_the_whole_load(teams, lead_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        LEAD_ROUTING.replace("lead-routing", "other").replace("type: integer", "type: int")
    )
    with pytest.raises(CommandError) as excinfo:
        call_command("load_workflows", str(lead_file), str(bad))
    assert f"{bad}:7: type 'int'" in str(excinfo.value)
    assert not Workflow.objects.exists()


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="cannot read"):
        call_command("load_workflows", str(tmp_path / "nope.yaml"))


def test_versions_cannot_be_changed_once_written(teams, lead_file: Path) -> None:
    from django.db import IntegrityError, transaction

    call_command("load_workflows", str(lead_file))
    version = WorkflowVersion.objects.get()
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        WorkflowVersion.objects.filter(pk=version.pk).update(source="edited")
