"""The canonical encoding of an entry and the hash that chains it to its predecessor."""

from __future__ import annotations

import hashlib
from datetime import UTC
from typing import TYPE_CHECKING, Any

from audit.canonical import canonical_json

if TYPE_CHECKING:
    from audit.models import AuditEntry

GENESIS_HASH = "0" * 64


def canonical(entry: AuditEntry) -> bytes:
    """Every field a reviewer relies on, in one deterministic byte string."""
    document: dict[str, Any] = {
        "seq": entry.seq,
        "id": entry.pk,
        "created_at": entry.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_id": entry.actor_id,
        "actor_kind": entry.actor_kind,
        "actor_label": entry.actor_label,
        "actor_roles": entry.actor_roles,
        "actor_memberships": entry.actor_memberships,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "before": entry.before,
        "after": entry.after,
        "reason": entry.reason,
        "request_id": entry.request_id,
        "approval_id": entry.approval_id,
    }
    # Added later: only when set, so every entry sealed before it keeps its hash.
    if entry.workflow:
        document["workflow"] = entry.workflow
    return canonical_json(document)


def entry_hash(prev_hash: str, entry: AuditEntry) -> str:
    """sha256(prev_hash + canonical entry), hex."""
    return hashlib.sha256(prev_hash.encode() + canonical(entry)).hexdigest()
