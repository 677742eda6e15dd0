"""A stored definition as people read it: YAML in the order of the docs, and diffs of versions.

A version stores the normalized definition (jsonb, which keeps no key order; durations in
seconds; enrich as a list; absent values as null). Rendering writes it the way a definition
file does: keys in the order DESIGN.md writes them, durations in the loader's own units ("5m",
"2h"), enrich as a mapping, nothing for what is not set, and the destination URL redacted. So
the text reads like the file that was loaded, loads again as the same content (a URL without
secrets), and shows no secret.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import yaml

from workflows.destinations import redacted_url

# Top-level keys first; inside an entry, a route reads name, when, owner and a field path, type.
KEY_ORDER = [
    "slug", "name", "path", "type", "description", "when", "owner", "fallback_owners",
    "required_fields", "enrich", "routes", "review", "action", "retry", "outcome", "sla",
    "shape_drift", "reason", "url", "timeout_seconds", "schedule",
    "confirm_within", "acknowledge_within", "resolve_within",
]  # fmt: skip
_RANK = {key: i for i, key in enumerate(KEY_ORDER)}
DURATION_KEYS = {"confirm_within", "acknowledge_within", "resolve_within"}
_UNITS = [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)]


def duration_text(seconds: float) -> str:
    """Seconds in the largest unit that holds them whole, as a definition file writes them."""
    for unit, size in _UNITS:
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{round(seconds * 1000)}ms"


def _ordered(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (_RANK.get(k, len(_RANK)), k))
        # What a file leaves out is not written either: no value, an empty section.
        kept = {k: _ordered(value[k], k) for k in keys if value[k] not in (None, "", {})}
        return {k: v for k, v in kept.items() if v != {}}
    if key == "enrich" and isinstance(value, list):
        # A file writes enrich as a mapping of field name to expression, in order.
        return {item["name"]: item["expr"] for item in value if isinstance(item, dict)}
    if isinstance(value, list):
        if key == "schedule":
            return [duration_text(v) if isinstance(v, int | float) else v for v in value]
        return [_ordered(item) for item in value]
    if key in DURATION_KEYS and isinstance(value, int | float) and not isinstance(value, bool):
        return duration_text(value)
    if key == "url" and isinstance(value, str):
        return redacted_url(value)
    return value


def readable_definition(definition: dict[str, Any]) -> dict[str, Any]:
    """The definition in the docs' key order, durations in units, the destination redacted."""
    return _ordered(definition)


def definition_yaml(definition: dict[str, Any]) -> str:
    return yaml.safe_dump(
        readable_definition(definition),
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "add", "del", "hunk", "same"
    text: str


def definition_diff(
    old: dict[str, Any], new: dict[str, Any], *, old_name: str, new_name: str, context: int = 3
) -> list[DiffLine]:
    """A unified diff of two definitions' YAML; empty when they read the same."""
    lines = difflib.unified_diff(
        definition_yaml(old).splitlines(),
        definition_yaml(new).splitlines(),
        fromfile=old_name,
        tofile=new_name,
        n=context,
        lineterm="",
    )
    found = []
    for line in lines:
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "same"
        found.append(DiffLine(kind, line))
    return found
