"""A workflow version's rules, compiled once per process, and their evaluation.

Rules are CEL (Common Expression Language) run by the `cel` package (Rust's cel-interpreter).
The normalized definition stored on WorkflowVersion.definition is the input; see
workflows.definitions for how YAML becomes that.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import cel

_PATH = re.compile(r"\b(payload|context)((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


class RuleCompileError(ValueError):
    """A CEL expression that does not compile."""


@dataclass(frozen=True)
class Rule:
    name: str
    source: str
    program: Any

    def read_paths(self) -> list[str]:
        """The dotted payload/context paths the expression mentions, in order of appearance."""
        seen: dict[str, None] = {}
        for match in _PATH.finditer(self.source):
            seen[match.group(1) + match.group(2)] = None
        return list(seen)


@dataclass(frozen=True)
class Route:
    rule: Rule
    owner: str  # a team slug, or "user:<username>"


@dataclass(frozen=True)
class ReviewGate:
    rule: Rule
    reason: str


@dataclass(frozen=True)
class FieldSpec:
    path: str
    type: str  # a JSON type: string, integer, number, boolean, object, array, null


@dataclass(frozen=True)
class Action:
    type: str  # "webhook" or "none"
    url: str = ""
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class CompiledWorkflow:
    slug: str
    name: str
    version_number: int
    owner: str
    fallback_owners: tuple[str, ...]
    required_fields: tuple[FieldSpec, ...]
    enrich: tuple[Rule, ...]
    routes: tuple[Route, ...]
    review: tuple[ReviewGate, ...]
    action: Action
    retry_schedule: tuple[timedelta, ...]
    confirm_within: timedelta | None
    acknowledge_within: timedelta | None
    resolve_within: timedelta | None


@dataclass(frozen=True)
class RuleResult:
    value: Any = None
    error: str = ""
    error_class: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def compile_rule(name: str, source: str) -> Rule:
    try:
        program = cel.compile(source)
    except (ValueError, RuntimeError) as exc:
        raise RuleCompileError(str(exc)) from exc
    return Rule(name=name, source=source, program=program)


def evaluate(rule: Rule, *, payload: Any, context: dict[str, Any]) -> RuleResult:
    """Run a rule; an error is a result to record, never an exception to crash on."""
    try:
        value = rule.program.execute({"payload": payload, "context": context})
    except KeyError as exc:
        return RuleResult(error=f"no such field: {exc.args[0]}", error_class="MissingField")
    except Exception as exc:  # the interpreter raises TypeError, ValueError, RuntimeError
        return RuleResult(error=str(exc), error_class=type(exc).__name__)
    return RuleResult(value=value)


def resolve_path(document: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    """(found, value) for a dotted path like "payload.company.size" in {"payload": ...}."""
    current: Any = document
    for part in dotted.split("."):
        if not isinstance(current, dict) or part not in current:
            return False, None
        current = current[part]
    return True, current


def inputs_read(rule: Rule, *, payload: Any, context: dict[str, Any]) -> dict[str, Any]:
    """The values of the paths a rule mentions, as it saw them (missing paths are omitted)."""
    document = {"payload": payload, "context": context}
    values = {}
    for path in rule.read_paths():
        found, value = resolve_path(document, path)
        if found:
            values[path] = value
    return values


def _seconds(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


def compile_definition(definition: dict[str, Any], *, version_number: int) -> CompiledWorkflow:
    """Compile a normalized definition (the shape workflows.definitions produces)."""
    action = definition.get("action") or {"type": "none"}
    return CompiledWorkflow(
        slug=definition["slug"],
        name=definition["name"],
        version_number=version_number,
        owner=definition["owner"],
        fallback_owners=tuple(definition.get("fallback_owners", [])),
        required_fields=tuple(
            FieldSpec(f["path"], f["type"]) for f in definition["required_fields"]
        ),
        enrich=tuple(compile_rule(e["name"], e["expr"]) for e in definition["enrich"]),
        routes=tuple(
            Route(rule=compile_rule(r["name"], r["when"]), owner=r["owner"])
            for r in definition["routes"]
        ),
        review=tuple(
            ReviewGate(rule=compile_rule(g["name"], g["when"]), reason=g["reason"])
            for g in definition["review"]
        ),
        action=Action(
            type=action["type"],
            url=action.get("url", ""),
            timeout_seconds=float(action.get("timeout_seconds", 10)),
        ),
        retry_schedule=tuple(timedelta(seconds=s) for s in definition["retry"]["schedule"]),
        confirm_within=_seconds(definition["outcome"]["confirm_within"]),
        acknowledge_within=_seconds(definition["sla"]["acknowledge_within"]),
        resolve_within=_seconds(definition["sla"]["resolve_within"]),
    )


_cache: dict[int, CompiledWorkflow] = {}
_cache_lock = threading.Lock()


def compiled_version(version: Any) -> CompiledWorkflow:
    """Compiled rules of a WorkflowVersion, once per process (versions never change)."""
    found = _cache.get(version.pk)
    if found is not None:
        return found
    result = compile_definition(version.definition, version_number=version.number)
    with _cache_lock:
        _cache[version.pk] = result
    return result
