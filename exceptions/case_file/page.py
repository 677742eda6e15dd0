"""How the printable page reads the document: JSON laid out for reading, diffs of entries.

Only presentation: every fact on the page is a value of the JSON document it is given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from audit.presenters import Change, changes


def as_text(value: Any, *, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


@dataclass(frozen=True)
class EntryView:
    item: dict[str, Any]
    changes: list[Change]
    memberships: list[str]


def memberships_words(memberships: Any) -> list[str]:
    return [
        f"{m.get('team', '?')} ({m.get('role', '?')})"
        for m in memberships or []
        if isinstance(m, dict)
    ]


def page_context(document: dict[str, Any]) -> dict[str, Any]:
    body = document["body"]
    events = [
        {
            **event,
            "payload_text": as_text(event["payload"], indent=2),
            "context_text": as_text(event["context"], indent=2),
        }
        for event in body["events"]
    ]
    entries = [
        EntryView(
            item=item,
            changes=changes(item["fields"]["before"], item["fields"]["after"]),
            memberships=memberships_words(item["fields"]["actor_memberships"]),
        )
        for item in body["audit_entries"]["items"]
    ]
    people = [
        {
            **person,
            "then": [
                {**stood, "memberships_words": memberships_words(stood["memberships"])}
                for stood in person["then"]
            ],
            "today_memberships": memberships_words((person["today"] or {}).get("memberships")),
        }
        for person in body["people"]
    ]
    approvals = [
        {**a, "memberships_words": memberships_words(a["memberships_then"])}
        for a in body["approvals"]
    ]
    versions = sorted(
        {(d["record"]["version"], d["version_hash"]) for d in body["decisions"]["items"]}
    )
    return {
        "doc": document,
        "versions": versions,
        "body": body,
        "events": events,
        "entries": entries,
        "people": people,
        "approvals": approvals,
        "subject": body["subject"],
    }
