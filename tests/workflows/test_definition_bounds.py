"""A definition the engine could not run is refused at load, with file, line and reason."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.workflows.test_definitions import LEAD_ROUTING, OWNERS, TEAMS, problems_of
from workflows.definitions import DefinitionError, parse_definition
from workflows.models import Team, Workflow
from workflows.rules import compile_definition

pytestmark = pytest.mark.django_db


def line_of(text: str, fragment: str) -> int:
    return next(n for n, content in enumerate(text.splitlines(), 1) if fragment in content)


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (
            "[5s, 5m,",
            "[100000000000000s, 5m,",
            "retry.schedule[0]: 100000000000000s is longer than the 7 days a retry may wait",
        ),
        (
            "[5s, 5m,",
            "[500ms, 5m,",
            "retry.schedule[0]: 500ms is shorter than the 1 second a retry must wait",
        ),
        (
            "[5s, 5m,",
            "[5s, 100000000000000000000000000000000000000000000000000000000000000000000, 5m,",
            "retry.schedule[1]: 1000000000000000000",
        ),
        (
            "confirm_within: 10m",
            "confirm_within: 3000000d",
            "outcome.confirm_within: 3000000d is longer than the 90 days it may be",
        ),
        (
            "acknowledge_within: 30m",
            "acknowledge_within: 91d",
            "sla.acknowledge_within: 91d is longer than the 90 days it may be",
        ),
        (
            "resolve_within: 4h",
            "resolve_within: 0s",
            "sla.resolve_within: 0s is shorter than the 1 second it must be",
        ),
        (
            "timeout_seconds: 10",
            "timeout_seconds: 0.05",
            "action.timeout_seconds: 0.05 must be between 0.1 and 60 seconds",
        ),
        (
            "timeout_seconds: 10",
            "timeout_seconds: .inf",
            "action.timeout_seconds: inf must be between 0.1 and 60 seconds",
        ),
        (
            "timeout_seconds: 10",
            "timeout_seconds: .nan",
            "action.timeout_seconds: nan must be between 0.1 and 60 seconds",
        ),
    ],
)
def test_a_duration_out_of_bounds_is_refused_naming_its_line(
    old: str, new: str, reason: str
) -> None:
    text = LEAD_ROUTING.replace(old, new)
    problems = problems_of(text)
    assert any(p.startswith(f"lead.yaml:{line_of(text, new)}: {reason}") for p in problems), (
        problems
    )


def test_durations_at_their_bounds_load_and_stay_usable_as_dates() -> None:
    text = (
        LEAD_ROUTING.replace("[5s, 5m,", "[1s, 7d,")
        .replace("confirm_within: 10m", "confirm_within: 90d")
        .replace("timeout_seconds: 10", "timeout_seconds: 60")
    )
    compiled = compile_definition(parse_definition(text, filename="lead.yaml", owners=OWNERS))
    far = datetime(9000, 1, 1, tzinfo=UTC)
    assert far + compiled.confirm_within > far
    assert max(compiled.retry_schedule).days == 7


ALIAS_BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
slug: x
"""


def test_an_alias_bomb_is_refused_within_a_second() -> None:
    started = time.monotonic()
    problems = problems_of(ALIAS_BOMB)
    assert time.monotonic() - started < 1.0
    assert problems[0].startswith("lead.yaml:1: YAML anchors and aliases are not allowed"), problems


def test_a_recursive_alias_is_refused_naming_its_line() -> None:
    text = "slug: x\nname: X\nloop: &loop\n  - *loop\n"
    problems = problems_of(text)
    assert problems[0].startswith("lead.yaml:3: YAML anchors and aliases are not allowed"), problems


def test_an_alias_to_an_unknown_anchor_is_refused_naming_its_line() -> None:
    assert problems_of("slug: x\nname: *nowhere\n")[0].startswith(
        "lead.yaml:2: YAML anchors and aliases are not allowed"
    )


def test_a_file_over_the_size_cap_is_refused_before_it_is_parsed(settings) -> None:
    settings.HANDOFF_MAX_DEFINITION_BYTES = 1024
    text = LEAD_ROUTING + "#" * 2000 + "\n"
    with pytest.raises(DefinitionError) as excinfo:
        parse_definition(text, filename="lead.yaml", owners=OWNERS)
    assert str(excinfo.value) == (
        "lead.yaml:1: the file is more than the 1024 bytes a definition may be"
    )


def test_deep_nesting_is_refused_naming_its_line() -> None:
    text = "slug: x\nname: X\nowner: revenue-ops\ndescription: " + "[" * 5000 + "]" * 5000 + "\n"
    problems = problems_of(text)
    assert problems[0].startswith("lead.yaml:4: nested more than"), problems


def test_too_many_rules_are_refused() -> None:
    routes = "".join(f"  - {{name: r{i}, when: 'true', owner: inbound-sdr}}\n" for i in range(101))
    text = LEAD_ROUTING.split("routes:\n")[0] + "routes:\n" + routes
    assert any("routes may list at most 100" in p for p in problems_of(text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"slug: caf\xe9\n", "lead.yaml:1: not UTF-8"),
        (b"slug: x\nname: \xff\xfe\n", "lead.yaml:2: not UTF-8"),
        ("- a\n- list\n", "lead.yaml:1: the definition must be a mapping"),
        ("just a scalar\n", "lead.yaml:1: the definition must be a mapping"),
        ("slug: !!python/object:os.system ls\n", "lead.yaml:1: not valid YAML"),
        ("slug: x\nname: !custom X\n", "lead.yaml:2: not valid YAML"),
        ("slug: x\nname: " + "9" * 6000 + "\n", "lead.yaml:2: not valid YAML"),
        ("slug: x\nname: X\n? [a, b]\n: 1\n", "lead.yaml:3: not valid YAML"),
        ("slug: x\n---\nslug: y\n", "not valid YAML"),
        ("\ufeffslug: x\x00\n", "not valid YAML"),
        ("retry: {schedule: [" + "1" * 5000 + "s]}\n", "retry.schedule[0]: "),
    ],
)
def test_hostile_input_becomes_problems_not_exceptions(text: str | bytes, expected: str) -> None:
    with pytest.raises(DefinitionError) as excinfo:
        parse_definition(text, filename="lead.yaml", owners=OWNERS)
    messages = [str(p) for p in excinfo.value.problems]
    assert any(expected in m for m in messages), messages


def test_a_rule_the_engine_would_refuse_is_refused_at_load_with_its_line() -> None:
    old = "when: 'true', owner: inbound-sdr"
    new = "when: 'payload.a.all(x, x.all(y, y.all(z, z)))', owner: inbound-sdr"
    text = LEAD_ROUTING.replace(old, new)
    problems = problems_of(text)
    expected = f"lead.yaml:{line_of(text, new)}: routes rule 'default' does not compile: nests"
    assert any(p.startswith(expected) for p in problems), problems


@pytest.fixture
def teams() -> None:
    for slug in TEAMS:
        Team.objects.create(slug=slug, name=slug)


def test_the_command_prints_every_problem_and_exits_non_zero(teams, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(ALIAS_BOMB)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(LEAD_ROUTING.replace("Lead routing", "Caf\xe9").encode("latin-1"))
    huge = tmp_path / "huge.yaml"
    huge_text = LEAD_ROUTING.replace("confirm_within: 10m", "confirm_within: 3000000d")
    huge.write_text(huge_text)
    with pytest.raises(CommandError) as excinfo:
        call_command("load_workflows", str(bomb), str(latin), str(huge))
    message = str(excinfo.value)
    assert "nothing loaded: 3 problem(s)" in message
    assert f"{bomb}:1: YAML anchors and aliases are not allowed" in message
    assert f"{latin}:2: not UTF-8" in message
    assert (
        f"{huge}:{line_of(huge_text, '3000000d')}: outcome.confirm_within: 3000000d is longer than"
        in message
    )
    assert not Workflow.objects.exists()


def test_the_command_refuses_a_file_over_the_cap_without_reading_it_all(
    teams, tmp_path: Path, settings
) -> None:
    settings.HANDOFF_MAX_DEFINITION_BYTES = 4096
    big = tmp_path / "big.yaml"
    big.write_text(LEAD_ROUTING + "#" * 100_000)
    with pytest.raises(CommandError, match=r"big.yaml:1: the file is more than the 4096 bytes"):
        call_command("load_workflows", str(big))
