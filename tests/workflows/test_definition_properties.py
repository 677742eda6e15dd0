"""Whatever text a loader is handed, and whatever payload a rule is given, errors are results."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workflows.definitions import TOP_KEYS, DefinitionError, Owners, parse_definition
from workflows.rules import RuleResult, compile_definition, evaluate

OWNERS = Owners(teams={"ops", "sales"}, users={"ada"})
FIELDS = ["items", "amount", "name", "tags", "company", "size", "email", "a", "b"]
PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

units = st.sampled_from(["ms", "s", "m", "h", "d", "", "x", " s"])
durations = st.one_of(
    st.builds(lambda n, u: f"{n}{u}", st.integers(min_value=-5, max_value=10**20), units),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
)
cel_atoms = st.sampled_from(
    ["payload.items", "payload.amount", "payload.name", "context.segment", "1", "2.5", "'x'",
     "true", "null", "[1, 2]", "{'k': 1}", "payload", "x", "9223372036854775807"]
)  # fmt: skip
cel_ops = st.sampled_from([" + ", " - ", " * ", " / ", " % ", " == ", " < ", " && ", " || "])


@st.composite
def cel_rules(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(st.integers(min_value=0, max_value=5 if depth < 3 else 0))
    if kind == 0:
        return draw(cel_atoms)
    if kind == 1:
        return draw(cel_rules(depth + 1)) + draw(cel_ops) + draw(cel_rules(depth + 1))
    if kind == 2:
        macro = draw(st.sampled_from(["all", "exists", "exists_one", "map", "filter"]))
        return f"{draw(cel_rules(depth + 1))}.{macro}(x, {draw(cel_rules(depth + 1))})"
    if kind == 3:
        return f"has({draw(cel_rules(depth + 1))})"
    if kind == 4:
        return f"({draw(cel_rules(depth + 1))}) ? {draw(cel_atoms)} : {draw(cel_atoms)}"
    return draw(st.text(max_size=20))


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    durations,
    cel_rules(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(
                ["name", "when", "owner", "reason", "type", "url", "path", "schedule", "expr", "x"]
            ),
            inner,
            max_size=4,
        ),
    ),  # fmt: skip
    max_leaves=20,
)


def mostly(valid: Any, other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually a valid value, so that most examples get as far as compiling."""
    return st.one_of(st.just(valid), st.just(valid), other)


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, Any]:
    route = st.fixed_dictionaries(
        {"name": st.text(min_size=1, max_size=5), "when": mostly("true", cel_rules()),
         "owner": st.sampled_from(["ops", "user:ada", "user:bob", "x"])}
    )  # fmt: skip
    result: dict[str, Any] = {
        "slug": draw(mostly("lead", st.sampled_from(["Bad Slug", 3, None]))),
        "name": draw(mostly("Lead", scalars)),
        "owner": draw(mostly("ops", st.sampled_from(["sales", "nobody", ""]))),
        "routes": draw(st.lists(route, min_size=1, max_size=3)),
        "enrich": {draw(st.sampled_from(["segment", "score", "1bad"])): draw(cel_rules())},
        "retry": {"schedule": draw(st.lists(mostly("5m", durations), max_size=4))},
        "outcome": {"confirm_within": draw(mostly("10m", durations))},
        "sla": {"acknowledge_within": draw(mostly("1h", durations)),
                "resolve_within": draw(mostly(3600, durations))},
        "action": draw(st.one_of(
            st.just({"type": "none"}),
            st.fixed_dictionaries({"type": st.just("webhook"), "url": st.sampled_from(
                ["http://127.0.0.1:9/x", "ftp://x", ""]), "timeout_seconds": mostly(5, scalars)}),
        )),
    }  # fmt: skip
    for key in draw(st.lists(st.sampled_from(sorted(TOP_KEYS) + ["extra"]), max_size=2)):
        result[key] = draw(values)
    return result


def loads_or_refuses(text: str | bytes) -> None:
    try:
        definition = parse_definition(text, filename="f.yaml", owners=OWNERS)
    except DefinitionError as exc:
        assert exc.problems
        assert all(p.file == "f.yaml" and p.line >= 1 and p.message for p in exc.problems)
        return
    # What loads, the engine can compile and schedule with, even at the end of the calendar.
    compiled = compile_definition(definition)
    far = datetime(9000, 1, 1, tzinfo=UTC)
    for window in (compiled.confirm_within, compiled.acknowledge_within, compiled.resolve_within):
        assert window is None or far + window > far
    assert all(far + wait > far for wait in compiled.retry_schedule)
    assert 0.1 <= compiled.action.timeout_seconds <= 60 or compiled.action.type == "none"


@PROPERTY_SETTINGS
@given(definitions())
def test_a_generated_definition_loads_or_is_refused_with_problems(raw: dict[str, Any]) -> None:
    loads_or_refuses(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False))


VALID = {
    "slug": "lead", "name": "Lead", "owner": "ops",
    "routes": [{"name": "default", "when": "true", "owner": "ops"}],
    "action": {"type": "webhook", "url": "http://127.0.0.1:9/x", "timeout_seconds": 5},
}  # fmt: skip
DURATION_FIELDS = {
    "retry": lambda v: {"retry": {"schedule": ["5s", v]}},
    "confirm_within": lambda v: {"outcome": {"confirm_within": v}},
    "acknowledge_within": lambda v: {"sla": {"acknowledge_within": v}},
    "resolve_within": lambda v: {"sla": {"resolve_within": v}},
    "timeout_seconds": lambda v: {"action": {**VALID["action"], "timeout_seconds": v}},
}


@PROPERTY_SETTINGS
@given(st.sampled_from(sorted(DURATION_FIELDS)), durations)
def test_any_duration_loads_as_one_the_engine_can_use_or_is_refused(field: str, value: Any) -> None:
    raw = {**VALID, **DURATION_FIELDS[field](value)}
    loads_or_refuses(yaml.safe_dump(raw, sort_keys=False))


@PROPERTY_SETTINGS
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_any_text_loads_or_is_refused_with_problems(text: str | bytes) -> None:
    loads_or_refuses(text)


@PROPERTY_SETTINGS
@given(st.lists(st.sampled_from(
    ["slug: x\n", "name: &a X\n", "- *a\n", "a: [", "]\n", "{", "}", "!!python/name:os.system",
     "? ", ": ", "  ", "\t", "'", '"', "\n", "---\n", "%YAML 1.1\n", "!!binary aGk=", "~", "1e999",
     ".nan", "0x" + "f" * 40, "routes:\n  - {name: a, when: 'true', owner: ops}\n"]),
    max_size=30,
))  # fmt: skip
def test_yaml_fragments_load_or_are_refused_with_problems(fragments: list[str]) -> None:
    loads_or_refuses("".join(fragments))


RULES = {
    "enrich": [
        {"name": "segment", "expr": "payload.company.size >= 500 ? 'enterprise' : 'smb'"},
        {"name": "total", "expr": "payload.items.map(i, i.amount * 2)"},
        {"name": "tagged", "expr": "payload.tags.exists(t, t == context.segment)"},
    ],
    "routes": [
        {"name": "big", "when": "payload.amount / payload.size > 3", "owner": "ops"},
        {"name": "named", "when": "payload.name.startsWith('a') && size(payload.name) > 2",
         "owner": "ops"},
        {"name": "distinct", "when": "payload.items.all(a, payload.items.all(b, a != b || true))",
         "owner": "ops"},
        {"name": "email", "when": "payload.email.matches('^[^@]+@example[.]com$')", "owner": "ops"},
        {"name": "has", "when": "has(payload.company.size) && payload.a[0] == payload.b['k']",
         "owner": "ops"},
    ],
}  # fmt: skip
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=4)), inner, max_size=6),
    ),
    max_leaves=40,
)
payloads = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=len(FIELDS))


@PROPERTY_SETTINGS
@given(payloads, st.dictionaries(st.sampled_from(["segment", "total"]), json_values))
def test_evaluating_any_rule_on_any_payload_returns_a_result(
    payload: dict[str, Any], context: dict[str, Any]
) -> None:
    compiled = compile_definition(
        {
            "slug": "p",
            "name": "P",
            "owner": "ops",
            "required_fields": [],
            "enrich": RULES["enrich"],
            "routes": RULES["routes"],
            "review": [],
            "action": {"type": "none"},
            "retry": {"schedule": []},
            "outcome": {"confirm_within": None},
            "sla": {"acknowledge_within": None, "resolve_within": None},
        }  # fmt: skip
    )
    rules = [*compiled.enrich, *(route.rule for route in compiled.routes)]
    for rule in rules:
        result = evaluate(rule, payload=payload, context=context)
        assert isinstance(result, RuleResult)
        assert result.ok or (result.error and result.error_class)


@pytest.mark.parametrize("review", [True, 3, "gate", {"name": "x"}])
def test_a_review_that_is_not_a_list_is_refused_with_its_problem(review) -> None:
    text = yaml.safe_dump(
        {"slug": "lead", "name": "Lead", "owner": "ops", "review": review,
         "routes": [{"name": "0", "when": "true", "owner": "ops"}], "action": {"type": "none"}}
    )  # fmt: skip
    with pytest.raises(DefinitionError) as refused:
        parse_definition(text, filename="f.yaml", owners=OWNERS)
    assert any("review" in problem.message for problem in refused.value.problems)
