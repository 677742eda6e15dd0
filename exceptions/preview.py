"""What a workflow version would decide for a payload, without running anything.

The replay form shows it before a person replays under the current version (or with an edited
payload): validation, enrichment, the route and its owner, and the review gates that would
hold the action. It reads the version's compiled rules and the owners' memberships; it writes
nothing, sends nothing and calls no destination.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from workflows.definitions import json_type, json_type_matches
from workflows.models import Event, Team, WorkflowVersion
from workflows.rules import CompiledWorkflow, compiled_version, evaluate, inputs_read, resolve_path
from workflows.selectors import active_members


@dataclass(frozen=True)
class FieldProblem:
    path: str
    expected: str
    problem: str  # "missing" or "is a string"

    def __str__(self) -> str:
        if self.problem == "missing":
            return f"{self.path} is missing (expected {self.expected})"
        return f"{self.path} {self.problem}, expected {self.expected}"


@dataclass(frozen=True)
class RuleOutcome:
    name: str
    value: Any = None
    error: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Preview:
    version_number: int
    problems: list[FieldProblem]
    context: dict[str, Any]
    enrich: list[RuleOutcome]
    route: RuleOutcome | None
    route_owner: str  # as the definition names it: a team slug or user:<name>
    owner: str  # who would actually own it, after the fallback chain
    owner_note: str
    review: list[RuleOutcome]  # gates that match (value True) or error
    action: str

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def errors(self) -> list[str]:
        found = [f"enrich {r.name}: {r.error}" for r in self.enrich if r.error]
        if self.route is not None and self.route.error:
            found.append(f"route {self.route.name}: {self.route.error}")
        found += [f"review {r.name}: {r.error}" for r in self.review if r.error]
        return found

    @property
    def outcome(self) -> str:
        """In a few words, what would happen."""
        if self.problems:
            return "would stop at validation (validation_failed)"
        if self.errors:
            return "would stop on a rule error (rule_error)"
        if not self.owner:
            return "would find no owner (no_owner)"
        if self.review:
            return "would wait for review (review_required)"
        if self.action == "none":
            return "would route and finish (no action)"
        return "would route and run the action"


def validation_problems(compiled: CompiledWorkflow, payload: Any) -> list[FieldProblem]:
    """The required fields the payload misses or has with the wrong JSON type."""
    problems = []
    document = {"payload": payload}
    for spec in compiled.required_fields:
        found, value = resolve_path(document, f"payload.{spec.path}")
        if not found:
            problems.append(FieldProblem(spec.path, spec.type, "missing"))
        elif not json_type_matches(value, spec.type):
            problems.append(FieldProblem(spec.path, spec.type, f"is {json_type(value)}"))
    return problems


def _owner_available(name: str) -> tuple[bool, str]:
    """(can own work now, why not)."""
    now = timezone.now()
    if name.startswith("user:"):
        username = name.removeprefix("user:")
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            return False, f"{username} does not exist"
        if not user.is_active:
            return False, f"{username} is deactivated"
        return True, ""
    team = Team.objects.filter(slug=name).first()
    if team is None:
        return False, f"team {name} does not exist"
    if not team.active:
        return False, f"team {name} is inactive"
    if not active_members(team_id=team.pk, at=now).exists():
        return False, f"team {name} has no active members"
    return True, ""


def _resolve_owner(compiled: CompiledWorkflow, route_owner: str) -> tuple[str, str]:
    ok, why = _owner_available(route_owner)
    if ok:
        return route_owner, ""
    notes = [why]
    for fallback in compiled.fallback_owners:
        ok, why_not = _owner_available(fallback)
        if ok:
            return fallback, f"{'; '.join(notes)}: falls back to {fallback}"
        notes.append(why_not)
    return "", "; ".join(notes) + ": no fallback can take it"


def preview_payload(*, version: WorkflowVersion, payload: Any) -> Preview:
    """What `version` would decide for `payload`: a pure read."""
    compiled = compiled_version(version)
    problems = validation_problems(compiled, payload)
    context: dict[str, Any] = {}
    enrich = []
    for rule in compiled.enrich:
        result = evaluate(rule, payload=payload, context=context)
        enrich.append(
            RuleOutcome(
                rule.name,
                result.value,
                result.error,
                inputs_read(rule, payload=payload, context=context),
            )
        )
        if result.ok:
            context[rule.name] = result.value
    route = None
    for candidate in compiled.routes:
        result = evaluate(candidate.rule, payload=payload, context=context)
        if not result.ok or result.value is True:
            route = RuleOutcome(
                candidate.rule.name,
                candidate.owner,
                result.error,
                inputs_read(candidate.rule, payload=payload, context=context),
            )
            break
    route_owner = route.value if route is not None and not route.error else ""
    owner, owner_note = "", "no route matched" if route is None else "the route rule failed"
    if route_owner:
        owner, owner_note = _resolve_owner(compiled, route_owner)
    review = []
    for gate in compiled.review:
        result = evaluate(gate.rule, payload=payload, context=context)
        if not result.ok or result.value is True:
            review.append(
                RuleOutcome(
                    gate.rule.name,
                    gate.reason,
                    result.error,
                    inputs_read(gate.rule, payload=payload, context=context),
                )
            )
    action = compiled.action.type
    if compiled.action.type == "webhook":
        action = f"webhook to {compiled.action.url}"
    return Preview(
        version_number=compiled.version_number,
        problems=problems,
        context=context,
        enrich=enrich,
        route=route,
        route_owner=route_owner,
        owner=owner,
        owner_note=owner_note,
        review=review,
        action=action,
    )


def preview_event(*, event: Event, payload: Any = None, current: bool = True) -> Preview:
    """Preview an event's payload (or an edited one) under the current or its own version."""
    version = event.workflow.current_version if current else event.version
    return preview_payload(
        version=version or event.version, payload=event.payload if payload is None else payload
    )
