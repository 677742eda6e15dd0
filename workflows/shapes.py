"""Payload shape drift: the paths and JSON types a workflow's recent payloads carried, and how
one payload departs from them.

Upstream systems change shape without warning: a field disappears, a number arrives as a string,
a new key appears. A required field that goes missing fails validation, but everything else
passes silently until a rule or the destination misreads it. So each workflow's last HISTORY
payloads are summed up as a profile (how many had each dotted path, with which type), and a
payload is compared with it: a path that at least USUAL of them had is missing, a path comes
with a type none of them had, or a top-level key none of them had appears.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from workflows.definitions import json_type

HISTORY = 1000  # the payloads a profile is learned from
MIN_HISTORY = 50  # fewer than this: too little to call anything usual
USUAL = 0.99  # the share of payloads a path must be in to be expected
# A payload is untrusted: how far into it the shape is read.
MAX_DEPTH = 8
MAX_PATHS = 500
MAX_PROFILE_PATHS = 2000

Profile = dict[str, Any]  # {"events": n, "paths": {path: {"seen": n, "types": {type: n}}}}


def payload_paths(payload: Any) -> dict[str, str]:
    """Every dotted path into the payload's objects with the JSON type there.

    Arrays are not entered: their length and their items vary by nature.
    """
    found: dict[str, str] = {}

    def walk(value: dict[str, Any], prefix: str, depth: int) -> None:
        for key, item in value.items():
            if len(found) >= MAX_PATHS:
                return
            path = f"{prefix}{key}"
            found[path] = json_type(item)
            if isinstance(item, dict) and depth < MAX_DEPTH:
                walk(item, f"{path}.", depth + 1)

    if isinstance(payload, dict):
        walk(payload, "", 1)
    return found


def profile_learn(payloads: Iterable[Any]) -> Profile:
    """The profile of these payloads: how many had each path, and with which types."""
    events = 0
    paths: dict[str, dict[str, Any]] = {}
    for payload in payloads:
        events += 1
        for path, kind in payload_paths(payload).items():
            stats = paths.setdefault(path, {"seen": 0, "types": {}})
            stats["seen"] += 1
            stats["types"][kind] = stats["types"].get(kind, 0) + 1
    if len(paths) > MAX_PROFILE_PATHS:
        kept = sorted(paths, key=lambda p: -paths[p]["seen"])[:MAX_PROFILE_PATHS]
        paths = {path: paths[path] for path in kept}
    return {"events": events, "paths": paths}


@dataclass(frozen=True)
class ShapeChange:
    path: str
    change: str  # missing | type_changed | new_key
    expected: str
    seen: str

    def as_dict(self) -> dict[str, str]:
        return {
            "path": self.path,
            "change": self.change,
            "expected": self.expected,
            "seen": self.seen,
        }

    def __str__(self) -> str:
        if self.change == "missing":
            return f"{self.path} is missing ({self.expected})"
        if self.change == "type_changed":
            return f"{self.path} is {self.seen}, was {self.expected}"
        return f"new key {self.path} ({self.seen})"


def _usual_type(types: dict[str, int]) -> str:
    return max(sorted(types), key=lambda kind: types[kind])


def _compatible(seen: str, types: dict[str, int]) -> bool:
    # A whole number in a field of numbers is still a number: 12 where 12.5 came before.
    return bool(types.get(seen)) or (seen == "integer" and bool(types.get("number")))


def shape_changes(profile: Profile, payload: Any) -> list[ShapeChange]:
    """How the payload departs from the profile; nothing while the profile knows too few."""
    events = profile.get("events", 0)
    if events < MIN_HISTORY:
        return []
    known: dict[str, dict[str, Any]] = profile.get("paths", {})
    shape = payload_paths(payload)
    changes = []
    for path, stats in sorted(known.items()):
        parent = path.rpartition(".")[0]
        # Below a parent that is missing or changed type, the parent says it all.
        if parent and shape.get(parent) != "object":
            continue
        if path not in shape:
            if stats["seen"] >= USUAL * events:
                expected = _usual_type(stats["types"])
                changes.append(ShapeChange(path, "missing", expected, "missing"))
        elif not _compatible(shape[path], stats["types"]):
            changes.append(
                ShapeChange(path, "type_changed", _usual_type(stats["types"]), shape[path])
            )
    for path, kind in shape.items():
        if "." not in path and path not in known:
            changes.append(ShapeChange(path, "new_key", "absent", kind))
    return changes


def changes_sentence(changes: list[ShapeChange], events: int) -> str:
    listed = "; ".join(str(change) for change in changes)
    return f"Payload shape differs from the last {events:,} events: {listed}"
