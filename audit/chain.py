"""The canonical encoding of an entry and the hash that chains it to its predecessor."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from audit.canonical import canonical_json

if TYPE_CHECKING:
    from audit.models import AuditEntry

GENESIS_HASH = "0" * 64


# The fields of an entry the hash covers, in the order the verifier reads them.
HASHED_FIELDS = (
    "seq",
    "id",
    "created_at",
    "actor_id",
    "actor_kind",
    "actor_label",
    "actor_roles",
    "actor_memberships",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "reason",
    "request_id",
    "approval_id",
    "workflow",
)


def timestamp(moment: datetime) -> str:
    """A moment as the chain writes it: UTC, ISO 8601, to the microsecond."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def entry_document(entry: AuditEntry) -> dict[str, Any]:
    """Every field a reviewer relies on: what the hash covers, and what an export carries."""
    document = {name: getattr(entry, "pk" if name == "id" else name) for name in HASHED_FIELDS}
    document["created_at"] = timestamp(entry.created_at)
    return hashed_document(document)


def canonical(entry: AuditEntry) -> bytes:
    """Every field a reviewer relies on, in one deterministic byte string."""
    return canonical_json(entry_document(entry))


def document_hash(prev_hash: str, document: dict[str, Any]) -> str:
    """sha256(prev_hash + canonical document), hex: the hash of an entry read back from a file."""
    return hashlib.sha256(prev_hash.encode() + canonical_json(document)).hexdigest()


def hashed_document(document: dict[str, Any]) -> dict[str, Any]:
    """A dict of an entry's HASHED_FIELDS (created_at already text) as its hash covers it."""
    # Added later: only when set, so every entry sealed before it keeps its hash.
    if not document["workflow"]:
        del document["workflow"]
    return document


def canonical_document(document: dict[str, Any]) -> bytes:
    """canonical() of an entry given as a dict of its HASHED_FIELDS, created_at already text."""
    return canonical_json(hashed_document(document))


def entry_hash(prev_hash: str, entry: AuditEntry) -> str:
    """sha256(prev_hash + canonical entry), hex."""
    return document_hash(prev_hash, entry_document(entry))
