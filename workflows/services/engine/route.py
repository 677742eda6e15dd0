"""The route step: the first matching route names an owner; the fallback chain covers absences."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from workflows.models import Step, Team
from workflows.owners import owner_find
from workflows.ownership import FROM_VERSION, OwnerLines
from workflows.rules import Rule, RuleResult, evaluate, inputs_read
from workflows.selectors import active_members
from workflows.services.engine.run import Run
from workflows.services.engine.wording import as_json, because, literal


class OwnerDirectory:
    """Who can own work right now, and each workflow's owner lines, looked up once per batch."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[Any, str]] = {}
        self._lines: dict[tuple[int, int], OwnerLines] = {}

    def lines(self, run: Run) -> OwnerLines:
        """The run's workflow's owner lines in force (the ownership record, else the version's)."""
        key = (run.event.workflow_id, run.compiled.version_number)
        if key not in self._lines:
            self._lines[key] = run.owner_lines()
        run.lines = self._lines[key]
        return run.lines

    def check(self, ref: str, at: datetime) -> tuple[Any, str]:
        """(owner, problem): the Team or user and "" if they can take work, else why not."""
        if ref not in self._seen:
            self._seen[ref] = self._look_up(ref, at)
        return self._seen[ref]

    @staticmethod
    def _look_up(ref: str, at: datetime) -> tuple[Any, str]:
        owner = owner_find(ref)
        if owner is None:
            return None, "does not exist"
        if not isinstance(owner, Team):
            return (owner, "") if owner.is_active else (None, "is deactivated")
        if not owner.active:
            return None, "is inactive"
        if not active_members(team_id=owner.pk, at=at).exists():
            return None, "has no active members"
        return owner, ""


def evaluate_condition(rule: Rule, *, payload: Any, context: dict[str, Any]) -> RuleResult:
    """A route or review condition must come out true or false; anything else is its error."""
    outcome = evaluate(rule, payload=payload, context=context)
    if outcome.ok and not isinstance(outcome.value, bool):
        return RuleResult(
            error=f"returned {literal(as_json(outcome.value))}, not true or false",
            error_class="NotABoolean",
        )
    return outcome


def route_step(run: Run, owners: OwnerDirectory) -> bool:
    event, compiled = run.event, run.compiled
    version = compiled.version_number
    lines = owners.lines(run)
    matched_rule = ""
    inputs: dict[str, Any] = {}
    for route in compiled.routes:
        inputs = inputs_read(route.rule, payload=event.payload, context=event.context)
        outcome = evaluate_condition(route.rule, payload=event.payload, context=event.context)
        if not outcome.ok:
            run.rule_failed(route.rule, inputs, outcome)
            return False
        if outcome.value:
            matched_rule, target = route.rule.name, route.owner
            sentence = f"Routed to {target}{because(inputs)} (rule {matched_rule}, v{version})"
            break
    else:
        inputs = {}
        target = lines.owner
        sentence = f"No route matched; routed to the workflow owner {target} (v{version})"

    owner, chosen, fallback_used, notes = _available_owner(lines, owners, target, run.now)
    explanation = sentence + (". " + "; ".join(notes) if notes else "")
    used_lines = not matched_rule or bool(notes)
    if used_lines and lines.source != FROM_VERSION and lines.lines_differ_from(compiled):
        # The definition says otherwise: say whose owner lines these are.
        explanation += f" (owner lines {lines.describe()})"
    result = {
        "route": matched_rule,
        "matched_owner": target,
        "owner": chosen if owner is not None else None,
        "fallback": fallback_used,
        "ownership": lines.record_id,
    }
    run.decide(
        step=Step.ROUTE,
        rule=matched_rule,
        inputs=inputs,
        result=result,
        ok=owner is not None,
        explanation=explanation,
    )
    if owner is None:
        event.owner_team = event.owner_user = None
        run.needs_attention(
            reason_code="no_owner", detail="; ".join(notes), owner=None, fingerprint_key=target
        )
        return False
    if isinstance(owner, Team):
        event.owner_team, event.owner_user = owner, None
    else:
        event.owner_team, event.owner_user = None, owner
    return True


def _available_owner(
    lines: OwnerLines, owners: OwnerDirectory, target: str, at: datetime
) -> tuple[Any, str, int, list[str]]:
    """(owner or None, its reference, fallback position used or 0, what was passed over and why)."""
    owner, problem = owners.check(target, at)
    if not problem:
        return owner, target, 0, []
    notes = [f"Owner {target} {problem}"]
    chain = lines.fallback_owners
    for position, candidate in enumerate(chain, start=1):
        owner, candidate_problem = owners.check(candidate, at)
        if not candidate_problem:
            notes.append(f"fell back to {candidate} (fallback {position} of {len(chain)})")
            return owner, candidate, position, notes
        notes.append(f"fallback {candidate} ({position} of {len(chain)}) {candidate_problem}")
    if chain:
        notes.append("no active owner is left")
    else:
        notes[-1] += " and the workflow has no fallback owners"
    return None, target, 0, notes
