"""A workflow version's rules, compiled once per process, and their evaluation.

Rules are CEL (Common Expression Language) run by the `cel` package (Rust's cel-interpreter).
The normalized definition stored on WorkflowVersion.definition is the input; see
workflows.definitions for how YAML becomes that.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import cel
from django.conf import settings

from workflows.rule_cost import (
    DEFAULT_COST_BUDGET,
    RuleShape,
    RuleTooCostly,
    estimated_cost,
    rule_shape,
)

_PATH = re.compile(r"\b(payload|context)((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


class RuleCompileError(ValueError):
    """A CEL expression that does not compile, or whose shape is over a cost limit."""


class DefinitionCompileError(ValueError):
    """A normalized definition the engine cannot compile; `where` is the path to the culprit."""

    def __init__(self, where: tuple[Any, ...], reason: str) -> None:
        self.where = where
        self.reason = reason
        path = ".".join(str(part) for part in where) or "the definition"
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class Rule:
    name: str
    source: str
    program: Any
    shape: RuleShape

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
    approver_role: str = ""  # the role that may approve what the gate holds; "" any reviewer


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
    drift_blocks: bool = False  # a payload whose shape departs waits for a person


@dataclass(frozen=True)
class RuleResult:
    value: Any = None
    error: str = ""
    error_class: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def compile_rule(name: str, source: str) -> Rule:
    """A compiled rule; RuleCompileError if it does not compile or is over a shape limit."""
    try:
        # The shape is checked first: the parser itself is not safe on any length of input.
        shape = rule_shape(source)
        program = cel.compile(source)
    except RuleTooCostly as exc:
        raise RuleCompileError(str(exc)) from exc
    except (ValueError, RuntimeError, RecursionError) as exc:
        raise RuleCompileError(str(exc)) from exc
    return Rule(name=name, source=source, program=program, shape=shape)


def cost_budget() -> int:
    return int(getattr(settings, "HANDOFF_RULE_COST_BUDGET", DEFAULT_COST_BUDGET))


def evaluate(rule: Rule, *, payload: Any, context: dict[str, Any]) -> RuleResult:
    """Run a rule; an error is a result to record, never an exception to crash on.

    The interpreter cannot be interrupted once it runs, so a rule whose estimated cost on these
    inputs is over the budget is not run at all.
    """
    budget = cost_budget()
    cost = estimated_cost(rule.shape, payload=payload, context=context, budget=budget)
    if cost > budget:
        return RuleResult(
            error=(
                f"over its cost budget: an estimated {cost:,} steps or more on this input, "
                f"{cost / budget:,.1f} times the {budget:,} steps allowed"
            ),
            error_class="RuleCostExceeded",
        )
    try:
        value = rule.program.execute({"payload": payload, "context": context})
    except KeyError as exc:
        return RuleResult(error=f"no such field: {exc.args[0]}", error_class="MissingField")
    except Exception as exc:  # the interpreter raises TypeError, ValueError, RuntimeError
        return RuleResult(error=str(exc), error_class=type(exc).__name__)
    except BaseException as exc:
        # A panic inside the interpreter surfaces as pyo3's PanicException, a BaseException.
        if type(exc).__name__ != "PanicException":
            raise
        return RuleResult(error=f"the rule interpreter failed: {exc}", error_class="RulePanic")
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


@contextmanager
def _compiling(*where: Any) -> Iterator[None]:
    """Name the part of the definition that failed, so the loader can give its line."""
    try:
        yield
    except DefinitionCompileError:
        raise
    except KeyError as exc:
        raise DefinitionCompileError(where, f"missing {exc.args[0]!r}") from exc
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DefinitionCompileError(where, reason) from exc


def _rule(where: tuple[Any, ...], name: str, source: str) -> Rule:
    with _compiling(*where):
        return compile_rule(name, source)


def _duration(where: tuple[Any, ...], seconds: float) -> timedelta:
    with _compiling(*where):
        return timedelta(seconds=seconds)


def _window(definition: dict[str, Any], section: str, key: str) -> timedelta | None:
    seconds = definition[section][key]
    return None if seconds is None else _duration((section, key), seconds)


def compile_definition(definition: dict[str, Any], *, version_number: int = 0) -> CompiledWorkflow:
    """Compile a normalized definition (the shape workflows.definitions produces).

    The engine (compiled_version) and the loader both call this, so a definition that loads is
    one the engine can run. DefinitionCompileError names the part that failed.
    """
    with _compiling():  # a missing key or a value of the wrong type anywhere else
        action = definition.get("action") or {"type": "none"}
        with _compiling("action", "timeout_seconds"):
            timeout = float(action.get("timeout_seconds", 10))
        routes, review = enumerate(definition["routes"]), enumerate(definition["review"])
        return CompiledWorkflow(
            slug=definition["slug"],
            name=definition["name"],
            version_number=version_number,
            owner=definition["owner"],
            fallback_owners=tuple(definition.get("fallback_owners", [])),
            required_fields=tuple(
                FieldSpec(f["path"], f["type"]) for f in definition["required_fields"]
            ),
            enrich=tuple(
                _rule(("enrich", e["name"]), e["name"], e["expr"]) for e in definition["enrich"]
            ),
            routes=tuple(
                Route(rule=_rule(("routes", i, "when"), r["name"], r["when"]), owner=r["owner"])
                for i, r in routes
            ),
            review=tuple(
                ReviewGate(
                    rule=_rule(("review", i, "when"), g["name"], g["when"]),
                    reason=g["reason"],
                    approver_role=g.get("approver_role", ""),
                )
                for i, g in review
            ),
            action=Action(type=action["type"], url=action.get("url", ""), timeout_seconds=timeout),
            retry_schedule=tuple(
                _duration(("retry", "schedule", i), seconds)
                for i, seconds in enumerate(definition["retry"]["schedule"])
            ),
            confirm_within=_window(definition, "outcome", "confirm_within"),
            acknowledge_within=_window(definition, "sla", "acknowledge_within"),
            resolve_within=_window(definition, "sla", "resolve_within"),
            drift_blocks=definition.get("shape_drift") == "block",
        )


_cache: dict[int, CompiledWorkflow] = {}
_cache_lock = threading.Lock()


def compiled_version(version: Any) -> CompiledWorkflow:
    """Compiled rules of a WorkflowVersion, once per process (versions never change)."""
    if version.pk is None:
        # A draft (a simulation's unsaved version) has no identity to be cached under.
        return compile_definition(version.definition, version_number=version.number)
    found = _cache.get(version.pk)
    if found is not None:
        return found
    result = compile_definition(version.definition, version_number=version.number)
    with _cache_lock:
        _cache[version.pk] = result
    return result
