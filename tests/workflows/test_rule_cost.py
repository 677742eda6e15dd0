"""A rule's cost is bounded before it runs: at load by its shape, at run time by its inputs."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from exceptions.models import ExceptionCase
from tests.factories import ENTERPRISE_EMEA_LEAD, event_create
from tests.support.engine import process_due, reload
from workflows.models import Decision, EventState, Step, WorkflowVersion
from workflows.rules import RuleCompileError, compile_rule, evaluate

MakeVersion = Callable[..., WorkflowVersion]

NESTED = "payload.items.all(a, payload.items.all(b, a != b || true))"
TWENTY_THOUSAND = {"items": list(range(20_000))}


def test_a_nested_comprehension_over_20000_items_is_refused_before_it_runs() -> None:
    rule = compile_rule("distinct", NESTED)
    started = time.perf_counter()
    result = evaluate(rule, payload=TWENTY_THOUSAND, context={})
    elapsed = time.perf_counter() - started

    assert not result.ok
    assert result.error_class == "RuleCostExceeded"
    assert result.error.startswith("over its cost budget: an estimated 2")
    assert "times the 20,000,000 steps allowed" in result.error
    assert elapsed < 0.1


def test_the_same_rule_runs_on_a_small_list() -> None:
    result = evaluate(compile_rule("distinct", NESTED), payload={"items": [1, 2, 3]}, context={})
    assert result.ok and result.value is True


def test_a_comprehension_that_reads_only_its_elements_runs_on_a_256_kib_payload() -> None:
    items = [{"sku": f"s{i}", "qty": i} for i in range(12_000)]
    rule = compile_rule("has-big-line", 'payload.lines.exists(l, l.qty > 11998 && l.sku != "")')
    result = evaluate(rule, payload={"lines": items, "note": "x" * 20_000}, context={})
    assert result.ok and result.value is True


def test_what_the_rule_cannot_reach_does_not_count() -> None:
    rule = compile_rule("small", "payload.tags.all(a, payload.tags.all(b, a != b || true))")
    payload = {"tags": ["a", "b", "c"], "attachment": list(range(200_000))}
    assert evaluate(rule, payload=payload, context={}).ok


def test_the_budget_is_a_setting(settings) -> None:
    rule = compile_rule("distinct", NESTED)
    payload = {"items": list(range(50))}
    assert evaluate(rule, payload=payload, context={}).ok
    settings.HANDOFF_RULE_COST_BUDGET = 1000
    assert evaluate(rule, payload=payload, context={}).error_class == "RuleCostExceeded"


def test_map_and_filter_count_as_a_loop_within_their_loop() -> None:
    # The interpreter copies the list built so far at every element: 16,000 items take seconds.
    rule = compile_rule("ids", "payload.items.map(i, i).size() > 0")
    assert evaluate(rule, payload={"items": list(range(500))}, context={}).ok
    refused = evaluate(rule, payload={"items": list(range(16_000))}, context={})
    assert refused.error_class == "RuleCostExceeded"


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("1 + " * 400 + "1", "characters long, more than the 1000 a rule may have"),
        ("(" * 30 + "1" + ")" * 30, "nests brackets 30 deep, more than the 24 a rule may"),
        ("payload.a.all(x, x.all(y, y.all(z, z)))", "nests comprehensions 3 deep"),
        ("payload.a.map(x, x).map(y, y).exists(z, z)", "nests comprehensions 3 deep"),
        ("payload.a.exists(x, x.matches('a+'))", "calls matches inside a comprehension"),
        (" || ".join(["payload.s.matches('a')"] * 5), "calls matches 5 times, more than the 4"),
    ],
)
def test_rules_over_the_shape_limits_do_not_compile(source: str, reason: str) -> None:
    with pytest.raises(RuleCompileError, match=reason):
        compile_rule("costly", source)


def test_macro_names_inside_strings_and_comments_are_not_comprehensions() -> None:
    source = (
        'payload.note == "a.all(x, x.all(y, y.all(z, z)))" // b.all(x, x.all(y, y.all(z, z)))\n'
        "|| payload.note == 'c.exists(x, x.map(y, y.filter(z, z)))'"
    )
    compile_rule("quoted", source)


@pytest.mark.django_db
def test_a_costly_rule_settles_as_rule_error_while_the_batch_goes_on(
    lead_version: MakeVersion,
) -> None:
    version = lead_version(
        required_fields=[],
        enrich=[],
        action={"type": "none"},
        routes=[
            {"name": "distinct", "when": f"has(payload.items) && {NESTED}", "owner": "inbound-sdr"},
            {"name": "default", "when": "true", "owner": "inbound-sdr"},
        ],
    )
    before = event_create(version, ENTERPRISE_EMEA_LEAD)
    costly = event_create(version, TWENTY_THOUSAND)
    small = event_create(version, {"items": [1, 2, 3]})

    started = time.monotonic()
    result = process_due()
    assert time.monotonic() - started < 10

    assert (result.written, result.crashed) == (3, 0)
    costly = reload(costly)
    assert costly.state == EventState.NEEDS_ATTENTION
    assert costly.step == Step.ROUTE
    decision = Decision.objects.get(event=costly, step=Step.ROUTE)
    assert decision.result["error_class"] == "RuleCostExceeded"
    assert decision.explanation.startswith("Rule distinct failed: over its cost budget")
    case = ExceptionCase.objects.get(event=costly)
    assert case.reason_id == "rule_error"
    assert reload(before).state == EventState.SUCCEEDED
    assert reload(small).state == EventState.SUCCEEDED
