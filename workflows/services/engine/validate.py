"""The first two steps: validate the payload against the required fields, then enrich it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workflows.definitions import json_type, json_type_matches
from workflows.models import AttemptTrigger, Step
from workflows.rules import CompiledWorkflow, evaluate, inputs_read, resolve_path
from workflows.services.engine.run import Run, workflow_owner
from workflows.services.engine.wording import as_json, literal
from workflows.shapes import changes_sentence, shape_changes


@dataclass(frozen=True)
class FieldProblem:
    """A required field the payload misses (actual == "") or has with another JSON type."""

    path: str
    expected: str
    actual: str = ""

    @property
    def problem(self) -> str:
        return f"is {self.actual}" if self.actual else "missing"

    def __str__(self) -> str:
        if not self.actual:
            return f"Missing required field {self.path}"
        return f"Field {self.path} should be {self.expected}, got {self.actual}"


def validation_problems(compiled: CompiledWorkflow, payload: Any) -> list[FieldProblem]:
    """The required fields the payload misses or has with the wrong JSON type."""
    return _read_required(compiled, payload)[1]


def _read_required(
    compiled: CompiledWorkflow, payload: Any
) -> tuple[dict[str, Any], list[FieldProblem]]:
    """(the required values found, by path; the problems)."""
    found_values: dict[str, Any] = {}
    problems: list[FieldProblem] = []
    for spec in compiled.required_fields:
        found, value = (
            resolve_path(payload, spec.path) if isinstance(payload, dict) else (False, None)
        )
        if not found:
            problems.append(FieldProblem(spec.path, spec.type))
            continue
        found_values[spec.path] = value
        if not json_type_matches(value, spec.type):
            problems.append(FieldProblem(spec.path, spec.type, json_type(value)))
    return found_values, problems


def _shape_read(run: Run) -> str:
    """Compare the payload with the shape its workflow's recent events had; record any drift.

    The drift in a sentence if it must stop the event ("" if not): the workflow blocks on
    drift and nobody has looked at this event yet (a person's retry or replay goes through,
    the drift still recorded).
    """
    profile = run.usual_shape()
    changes = shape_changes(profile, run.event.payload)
    if not changes:
        return ""
    run.shape_drift = [change.as_dict() for change in changes]
    learned = int(profile.get("events", 0))
    held = run.compiled.drift_blocks and run.event.pending_trigger == AttemptTrigger.AUTO
    if held:
        then = "held for a person: this workflow blocks on shape drift"
    elif run.compiled.drift_blocks:
        then = "let through: a person sent it again"
    else:
        then = "flagged; processing goes on"
    sentence = changes_sentence(changes, learned)
    run.decide(
        step=Step.VALIDATE,
        rule="shape_drift",
        result={"changes": run.shape_drift, "learned_from": learned, "held": held},
        ok=not held,
        explanation=f"{sentence} ({then})",
    )
    return sentence if held else ""


def validate_step(run: Run) -> bool:
    drift_holds = _shape_read(run)
    inputs, problems = _read_required(run.compiled, run.event.payload)
    if problems:
        sentence = "; ".join(str(problem) for problem in problems)
        run.decide(
            step=Step.VALIDATE,
            rule="required_fields",
            inputs=inputs,
            result={
                "valid": False,
                "problems": [{"path": p.path, "problem": str(p)} for p in problems],
            },
            ok=False,
            explanation=sentence,
        )
        run.needs_attention(
            reason_code="validation_failed",
            detail=sentence,
            owner=workflow_owner(run),
            fingerprint_key=problems[0].path,
        )
        return False
    if drift_holds:
        run.needs_attention(
            reason_code="payload_shape_changed",
            detail=drift_holds,
            owner=workflow_owner(run),
            fingerprint_key=run.shape_drift[0]["path"],
        )
        return False
    count = len(run.compiled.required_fields)
    if count == 0:
        explanation = "Validated: the workflow requires no fields"
    elif count == 1:
        explanation = "Validated: the 1 required field is present with the right type"
    else:
        explanation = f"Validated: all {count} required fields present with the right types"
    run.decide(
        step=Step.VALIDATE,
        rule="required_fields",
        inputs=inputs,
        result={"valid": True},
        explanation=explanation,
    )
    return True


def enrich_step(run: Run) -> bool:
    event, compiled = run.event, run.compiled
    # Enrichment is rerun whole: a later rule may read an earlier one through `context`.
    context: dict[str, Any] = {}
    event.context = context
    if not compiled.enrich:
        run.decide(
            step=Step.ENRICH,
            rule="",
            result={"context": {}},
            explanation=f"Nothing to enrich (v{compiled.version_number})",
        )
        return True
    for rule in compiled.enrich:
        inputs = inputs_read(rule, payload=event.payload, context=context)
        outcome = evaluate(rule, payload=event.payload, context=context)
        if not outcome.ok:
            run.rule_failed(rule, inputs, outcome)
            return False
        value = as_json(outcome.value)
        context[rule.name] = value
        run.decide(
            step=Step.ENRICH,
            rule=rule.name,
            inputs=inputs,
            result={"field": rule.name, "value": value},
            explanation=(
                f"Enriched {rule.name} = {literal(value)} "
                f"(rule {rule.name}, v{compiled.version_number})"
            ),
        )
    return True
