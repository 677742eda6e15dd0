"""Workflow definitions: YAML in, a validated and normalized definition out, or every error
with its file and line.

The normalized form is what a WorkflowVersion stores and hashes: key order, comments and
duration spelling do not matter ("5m" and 300 are the same content), so loading a file again
with cosmetic changes creates no new version.

A file is untrusted input. It is capped in size and nesting, YAML anchors and aliases are refused
before anything is expanded (an alias bomb costs nothing), every duration is bounded, and the
result is compiled exactly as the engine will compile it, so what loads is what can run.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from workflows.definition_files import FileRefused, read_definition
from workflows.owners import owner_username
from workflows.rules import (
    DefinitionCompileError,
    RuleCompileError,
    compile_definition,
    compile_rule,
)

JSON_TYPES = ("string", "integer", "number", "boolean", "object", "array", "null")
DEFAULT_RETRY_SCHEDULE = ["5s", "5m", "30m", "2h", "5h", "10h"]
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DAY = 86400

# Bounds in seconds as (least, most, what "longer than" names, what "shorter than" names). A retry
# waits at most a week and an outcome or SLA window is at most a quarter: past that a person should
# look instead. An action's deadline covers one request, and a batch waits for its slowest
# delivery, so 60 s keeps a batch well inside the task time limits (CELERY_TASK_HARD_TIME_LIMIT).
MAX_RETRY_STEPS = 20
RETRY_WAIT = (1, 7 * _DAY, "7 days a retry may wait", "1 second a retry must wait")
WINDOW = (1, 90 * _DAY, "90 days it may be", "1 second it must be")
ACTION_TIMEOUT = (0.1, 60)
MAX_ITEMS = {
    "fallback_owners": 20,
    "required_fields": 100,
    "enrich": 50,
    "routes": 100,
    "review": 50,
}

TOP_KEYS = {
    "slug", "name", "description", "owner", "fallback_owners", "required_fields", "enrich",
    "routes", "review", "action", "retry", "outcome", "sla", "shape_drift",
}  # fmt: skip
SHAPE_DRIFT = ("flag", "block")
REQUIRED_TOP_KEYS = ("slug", "name", "owner", "routes")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class DefinitionError(ValueError):
    """A definition that cannot be loaded; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class Owners:
    """What owner names may refer to: existing team slugs and usernames."""

    teams: set[str] = field(default_factory=set)
    users: set[str] = field(default_factory=set)
    # The roles a review gate may name as its approver; None: any role name is taken on trust.
    roles: set[str] | None = None


def json_type(value: Any) -> str:
    """The JSON type name of a decoded JSON value (bool is not a number)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def json_type_matches(value: Any, expected: str) -> bool:
    """Whether a value satisfies a required field's type, as the engine validates it."""
    actual = json_type(value)
    if expected == "integer":
        # 3.0 is a JSON number with no fraction, as JSON Schema counts it.
        return actual == "integer" or (actual == "number" and float(value).is_integer())
    if expected == "number":
        return actual in ("integer", "number")
    return actual == expected


def parse_duration(value: Any) -> float | None:
    """Seconds for "5s", "5m", "2h", "1d", "250ms" or a whole number of seconds; None if bad."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if match:
            if len(match.group(1)) > 20:
                return math.inf  # longer than any bound; int() refuses thousands of digits
            seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            return int(seconds) if float(seconds).is_integer() else seconds
    return None


class _Checker:
    def __init__(self, filename: str, lines: dict[tuple[Any, ...], int], owners: Owners) -> None:
        self.filename = filename
        self.lines = lines
        self.owners = owners
        self.problems: list[Problem] = []

    def line(self, path: tuple[Any, ...]) -> int:
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)

    def fail(self, path: tuple[Any, ...], message: str) -> None:
        self.problems.append(Problem(self.filename, self.line(path), message))

    def keys(self, value: Any, path: tuple[Any, ...], allowed: set[str], what: str) -> bool:
        if not isinstance(value, dict):
            self.fail(path, f"{what} must be a mapping")
            return False
        for key in value:
            if key not in allowed:
                self.fail(
                    (*path, key, "__key__"),
                    f"unknown key {key!r} in {what} (allowed: {', '.join(sorted(allowed))})",
                )
        return True

    def string(self, value: Any, path: tuple[Any, ...], what: str) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f"{what} must be a non-empty string")
            return None
        return value.strip()

    def duration(
        self, value: Any, path: tuple[Any, ...], what: str, bounds: tuple[Any, ...]
    ) -> float | None:
        """Seconds within (least, most, longer, shorter) bounds, or None with a problem."""
        seconds = parse_duration(value)
        if seconds is None:
            self.fail(
                path,
                f"{what}: bad duration {value!r} (use a number with ms, s, m, h or d, like 30m)",
            )
            return None
        least, most, longer, shorter = bounds
        spelled = str(value).strip()
        spelled = spelled if len(spelled) <= 40 else spelled[:40] + "..."
        if seconds > most:
            self.fail(path, f"{what}: {spelled} is longer than the {longer}")
            return None
        if seconds < least:
            self.fail(path, f"{what}: {spelled} is shorter than the {shorter}")
            return None
        return seconds

    def items(self, raw: dict[str, Any], key: str, what: str) -> list[Any]:
        """A list under `key` (missing: empty), at most MAX_ITEMS[key] long."""
        value = raw.get(key) or []
        if not isinstance(value, list):
            self.fail((key,), f"{key} must be {what}")
            return []
        if len(value) > MAX_ITEMS[key]:
            self.fail(
                (key,), f"{key} may list at most {MAX_ITEMS[key]} (this one lists {len(value)})"
            )
            return []
        return value

    def rule(self, name: str, source: Any, path: tuple[Any, ...], what: str) -> str | None:
        text = self.string(source, path, what)
        if text is None:
            return None
        try:
            compile_rule(name, text)
        except RuleCompileError as exc:
            reason = str(exc).splitlines()[0]
            self.fail(path, f"{what} does not compile: {reason}")
            return None
        return text

    def owner(self, value: Any, path: tuple[Any, ...], what: str) -> str | None:
        name = self.string(value, path, what)
        if name is None:
            return None
        username = owner_username(name)
        if username is not None:
            if username not in self.owners.users:
                self.fail(path, f"{what}: unknown user {username!r}")
                return None
        elif name not in self.owners.teams:
            self.fail(path, f"{what}: unknown team {name!r}")
            return None
        return name


def _check(raw: Any, checker: _Checker) -> dict[str, Any]:
    """The normalized definition, with every problem of `raw` noted on the checker."""
    if not checker.keys(raw, (), TOP_KEYS, "the definition"):
        return {}
    for key in REQUIRED_TOP_KEYS:
        if key not in raw:
            checker.fail((), f"missing required key {key!r}")
    out: dict[str, Any] = {
        **_identity(raw, checker),
        **_owners(raw, checker),
        "required_fields": _required_fields(raw, checker),
        "enrich": _enrich(raw, checker),
        "routes": _named_rules(raw, "routes", checker, extra={"owner"}),
    }
    if "routes" in raw and not out["routes"] and not checker.problems:
        checker.fail(("routes",), "routes must list at least one route")
    out["review"] = _named_rules(
        raw, "review", checker, extra={"reason"}, optional={"approver_role"}
    )
    _approver_roles(raw, out["review"], checker)
    out["action"] = _action(raw.get("action", {"type": "none"}), checker)
    out["retry"] = {"schedule": _retry_schedule(raw, checker)}
    out["outcome"] = _outcome(raw, checker)
    out["sla"] = _sla(raw, checker)
    drift = raw.get("shape_drift", "flag")
    if drift not in SHAPE_DRIFT:
        checker.fail(("shape_drift",), f"shape_drift must be flag or block, not {drift!r}")
    elif drift == "block":
        # Flagging is the default and is left out, so older definitions keep their content.
        out["shape_drift"] = "block"
    return out


def _identity(raw: dict[str, Any], checker: _Checker) -> dict[str, Any]:
    slug = raw.get("slug")
    if "slug" in raw and (not isinstance(slug, str) or not _SLUG.match(slug)):
        checker.fail(("slug",), f"slug {slug!r} must be lowercase letters, digits and dashes")
    return {
        "slug": slug,
        "name": checker.string(raw.get("name"), ("name",), "name") if "name" in raw else None,
        "description": str(raw.get("description") or "").strip(),
    }


def _owners(raw: dict[str, Any], checker: _Checker) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "owner" in raw:
        owner = checker.string(raw["owner"], ("owner",), "owner")
        if owner is not None and owner not in checker.owners.teams:
            checker.fail(("owner",), f"owner: unknown team {owner!r}")
        out["owner"] = owner
    out["fallback_owners"] = []
    for i, team in enumerate(checker.items(raw, "fallback_owners", "a list of team slugs")):
        if not isinstance(team, str) or team not in checker.owners.teams:
            checker.fail(("fallback_owners", i), f"fallback_owners: unknown team {team!r}")
        else:
            out["fallback_owners"].append(team)
    return out


def _required_fields(raw: dict[str, Any], checker: _Checker) -> list[dict[str, str]]:
    found = []
    for i, item in enumerate(checker.items(raw, "required_fields", "a list")):
        path = ("required_fields", i)
        if not checker.keys(item, path, {"path", "type"}, "a required field"):
            continue
        field_path, field_type = item.get("path"), item.get("type")
        if not isinstance(field_path, str) or not _PATH.match(field_path):
            checker.fail(
                (*path, "path"), f"required field path {field_path!r} is not a dotted path"
            )
            continue
        if field_type not in JSON_TYPES:
            checker.fail(
                (*path, "type"),
                f"type {field_type!r} of {field_path} is not a JSON type ({', '.join(JSON_TYPES)})",
            )
            continue
        found.append({"path": field_path, "type": field_type})
    return found


def _enrich(raw: dict[str, Any], checker: _Checker) -> list[dict[str, str]]:
    enrich = raw.get("enrich") or {}
    if not isinstance(enrich, dict):
        checker.fail(("enrich",), "enrich must be a mapping of field name to CEL expression")
        return []
    if len(enrich) > MAX_ITEMS["enrich"]:
        checker.fail(("enrich",), f"enrich may list at most {MAX_ITEMS['enrich']} fields")
        return []
    found = []
    for name, expr in enrich.items():
        path = ("enrich", name)
        if not isinstance(name, str) or not _IDENTIFIER.match(name):
            checker.fail((*path, "__key__"), f"enrich field name {name!r} is not an identifier")
            continue
        text = checker.rule(name, expr, path, f"enrich rule {name!r}")
        if text is not None:
            found.append({"name": name, "expr": text})
    return found


def _retry_schedule(raw: dict[str, Any], checker: _Checker) -> list[float]:
    retry = raw.get("retry") or {}
    schedule: list[float] = []
    if not checker.keys(retry, ("retry",), {"schedule"}, "retry"):
        return schedule
    entries = retry.get("schedule", DEFAULT_RETRY_SCHEDULE)
    if not isinstance(entries, list) or len(entries) > MAX_RETRY_STEPS:
        checker.fail(
            ("retry", "schedule"),
            f"retry.schedule must be a list of 0 to {MAX_RETRY_STEPS} durations",
        )
        return schedule
    for i, entry in enumerate(entries):
        where = ("retry", "schedule", i)
        seconds = checker.duration(entry, where, f"retry.schedule[{i}]", RETRY_WAIT)
        if seconds is not None:
            schedule.append(seconds)
    return schedule


def _outcome(raw: dict[str, Any], checker: _Checker) -> dict[str, float | None]:
    outcome = raw.get("outcome") or {}
    out: dict[str, float | None] = {"confirm_within": None}
    if checker.keys(outcome, ("outcome",), {"confirm_within"}, "outcome") and (
        "confirm_within" in outcome
    ):
        out["confirm_within"] = checker.duration(
            outcome["confirm_within"],
            ("outcome", "confirm_within"),
            "outcome.confirm_within",
            WINDOW,
        )
    return out


def _sla(raw: dict[str, Any], checker: _Checker) -> dict[str, float | None]:
    sla = raw.get("sla") or {}
    out: dict[str, float | None] = {"acknowledge_within": None, "resolve_within": None}
    if checker.keys(sla, ("sla",), {"acknowledge_within", "resolve_within"}, "sla"):
        for key in ("acknowledge_within", "resolve_within"):
            if key in sla:
                out[key] = checker.duration(sla[key], ("sla", key), f"sla.{key}", WINDOW)
    return out


def _named_rules(
    raw: dict[str, Any],
    key: str,
    checker: _Checker,
    *,
    extra: set[str],
    optional: set[str] | None = None,
) -> list[dict[str, Any]]:
    items = checker.items(raw, key, "a list")
    result, names = [], set()
    (extra_key,) = extra
    for i, item in enumerate(items):
        path = (key, i)
        allowed = {"name", "when", *extra, *(optional or ())}
        if not checker.keys(item, path, allowed, f"a {key} entry"):
            continue
        name = checker.string(item.get("name"), (*path, "name"), f"{key}[{i}].name")
        if name is None:
            continue
        if name in names:
            checker.fail((*path, "name"), f"duplicate {key} name {name!r}")
            continue
        names.add(name)
        when = checker.rule(name, item.get("when"), (*path, "when"), f"{key} rule {name!r}")
        if extra_key == "owner":
            other = checker.owner(item.get("owner"), (*path, "owner"), f"route {name!r} owner")
        else:
            other = checker.string(item.get("reason"), (*path, "reason"), f"review {name!r} reason")
        if when is not None and other is not None:
            result.append({"name": name, "when": when, extra_key: other})
    return result


def _approver_roles(raw: dict[str, Any], gates: list[dict[str, Any]], checker: _Checker) -> None:
    """Copy each review gate's `approver_role` (who may approve it) onto its normalized form.

    Only gates that name one carry the key, so a definition without approver roles keeps the
    content hash it always had.
    """
    review = raw.get("review")
    if not isinstance(review, list):
        return  # the review check has already said what is wrong with it
    by_name = {gate["name"]: gate for gate in gates}
    for i, item in enumerate(review):
        if not isinstance(item, dict) or "approver_role" not in item:
            continue
        path = ("review", i, "approver_role")
        role = checker.string(item["approver_role"], path, f"review[{i}].approver_role")
        if role is None:
            continue
        if checker.owners.roles is not None and role not in checker.owners.roles:
            known = ", ".join(sorted(checker.owners.roles)) or "none"
            checker.fail(path, f"review[{i}].approver_role: unknown role {role!r} (roles: {known})")
            continue
        gate = by_name.get(item.get("name"))
        if gate is not None:
            gate["approver_role"] = role


def _action(action: Any, checker: _Checker) -> dict[str, Any]:
    if not checker.keys(action, ("action",), {"type", "url", "timeout_seconds"}, "action"):
        return {"type": "none"}
    kind = action.get("type")
    if kind == "none":
        return {"type": "none"}
    if kind != "webhook":
        checker.fail(("action", "type"), f"action type {kind!r} must be webhook or none")
        return {"type": "none"}
    url = checker.string(action.get("url"), ("action", "url"), "action.url")
    if url is not None and not re.match(r"^https?://[^\s/]+", url):
        checker.fail(("action", "url"), f"action.url {url!r} must be an http(s) URL")
    timeout = action.get("timeout_seconds", 10)
    least, most = ACTION_TIMEOUT
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not (least <= timeout <= most)
    ):
        checker.fail(
            ("action", "timeout_seconds"),
            f"action.timeout_seconds: {timeout!r} must be between {least:g} and {most:g} seconds",
        )
        timeout = 10
    return {"type": "webhook", "url": url or "", "timeout_seconds": timeout}


def parse_definition(text: str | bytes, *, filename: str, owners: Owners) -> dict[str, Any]:
    """The normalized definition, or DefinitionError listing every problem with its line.

    Whatever the input, the only exception is DefinitionError: a hostile file is a problem
    to report, not a crash.
    """
    try:
        raw, lines = read_definition(text)
    except FileRefused as refused:
        raise DefinitionError([Problem(filename, refused.line, refused.message)]) from None
    checker = _Checker(filename, lines, owners)
    definition = _check(raw, checker)
    if checker.problems:
        raise DefinitionError(checker.problems)
    try:
        compile_definition(definition)
    except DefinitionCompileError as exc:
        message = f"the engine cannot compile this: {exc}"
        raise DefinitionError([Problem(filename, checker.line(exc.where), message)]) from exc
    return definition
