"""How entries read on the trail: the before and after as a list of changes, the object's page."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from audit.links import object_link
from audit.models import AuditEntry

VALUE_LIMIT = 300


@dataclass(frozen=True)
class Change:
    path: str
    before: str
    after: str
    kind: str  # "added", "removed" or "changed"


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested objects as dotted paths; lists and scalars are leaves."""
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix or "value": value}


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= VALUE_LIMIT else text[: VALUE_LIMIT - 1] + "…"


def changes(before: Any, after: Any) -> list[Change]:
    """What differs between before and after, path by path; unchanged paths are left out."""
    old = _flatten(before) if before is not None else {}
    new = _flatten(after) if after is not None else {}
    result = []
    for path in sorted(old.keys() | new.keys()):
        if path not in old:
            result.append(Change(path, "", _shown(new[path]), "added"))
        elif path not in new:
            result.append(Change(path, _shown(old[path]), "", "removed"))
        elif old[path] != new[path]:
            result.append(Change(path, _shown(old[path]), _shown(new[path]), "changed"))
    return result


@dataclass(frozen=True)
class EntryRow:
    entry: AuditEntry
    changes: list[Change]
    object_url: str
    memberships: list[str]


def entry_rows(entries: list[AuditEntry]) -> list[EntryRow]:
    return [
        EntryRow(
            entry=entry,
            changes=changes(entry.before, entry.after),
            object_url=object_link(entry.object_type, entry.object_id),
            memberships=[
                f"{m.get('team', '?')} ({m.get('role', '?')})"
                for m in entry.actor_memberships or []
                if isinstance(m, dict)
            ],
        )
        for entry in entries
    ]
