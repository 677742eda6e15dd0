"""The review step: a matching gate holds the event for a person before the action runs."""

from __future__ import annotations

from workflows.models import Step
from workflows.rules import ReviewGate, inputs_read
from workflows.services.engine.route import evaluate_condition
from workflows.services.engine.run import Run, current_owner
from workflows.services.engine.wording import because


def review_step(run: Run) -> bool:
    event, compiled = run.event, run.compiled
    version = compiled.version_number
    if not compiled.review:
        run.decide(
            step=Step.REVIEW,
            rule="",
            result={"hold": False},
            explanation=f"No review rules (v{version})",
        )
        return True
    for gate in compiled.review:
        inputs = inputs_read(gate.rule, payload=event.payload, context=event.context)
        outcome = evaluate_condition(gate.rule, payload=event.payload, context=event.context)
        if not outcome.ok:
            run.rule_failed(gate.rule, inputs, outcome)
            return False
        if outcome.value:
            return _gate_matched(run, gate, because(inputs), inputs)
    checked = len(compiled.review)
    run.decide(
        step=Step.REVIEW,
        rule="",
        result={"hold": False},
        explanation=(
            f"No review rule matched ({checked} checked, v{version})"
            if checked > 1
            else f"Review rule {compiled.review[0].rule.name} did not match (v{version})"
        ),
    )
    return True


def _gate_matched(run: Run, gate: ReviewGate, why: str, inputs: dict[str, object]) -> bool:
    """Hold the event for review, unless a person already cleared it; True if it goes on."""
    name, version = gate.rule.name, run.compiled.version_number
    if run.event.review_cleared:
        run.decide(
            step=Step.REVIEW,
            rule=name,
            inputs=inputs,
            result={"hold": False, "matched": name, "cleared": True},
            explanation=f"Review {name} matched{why}; already cleared by a person (v{version})",
        )
        return True
    result: dict[str, object] = {"hold": True, "matched": name, "reason": gate.reason}
    who = ""
    if gate.approver_role:
        # The case reads who may approve from this decision: the rule as it was when it held.
        result["approver_role"] = gate.approver_role
        who = f"; only a {gate.approver_role} may approve"
    run.decide(
        step=Step.REVIEW,
        rule=name,
        inputs=inputs,
        result=result,
        explanation=f"Held for review: {gate.reason} (rule {name} matched{why}, v{version}){who}",
    )
    run.needs_attention(
        reason_code="review_required",
        detail=f"{gate.reason} (rule {name} matched{why}){who}",
        owner=current_owner(run.event, run.compiled),
        fingerprint_key=name,
    )
    return False
