"""The chain head kept outside the table: the newest (seq, hash), with an HMAC, in a file.

The table alone cannot prove it was not cut short: delete the newest entries, or rewrite the
chain with fresh hashes, and what remains still verifies. A head written elsewhere each time the
sealer or an export moves the chain on is the witness. The file only ever moves forward along
the same chain: a head is replaced only by a later one of which it is a prefix, so a rewritten
or shortened table can never refresh the witness that would expose it.

The HMAC key is AUDIT_HEAD_KEY, or one derived from SECRET_KEY. Whoever holds that key can
forge a head; keep a copy of the file (or of export digests, which carry it) where the
application's hosts cannot write.
"""

from __future__ import annotations

import hmac
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.crypto import salted_hmac

from audit.models import AuditEntry, RetentionFloor

_SALT = "handoff.audit.head"


def audit_mac(salt: str, value: str | bytes) -> str:
    """HMAC-SHA256 with the trail's key: heads, export digests and retention floors alike."""
    key = settings.AUDIT_HEAD_KEY or settings.SECRET_KEY
    return salted_hmac(salt, value, secret=key, algorithm="sha256").hexdigest()


class HeadInvalid(ValueError):
    """A head file that is not one of ours: unreadable, or its MAC does not match."""


class HeadMismatch(ValueError):
    """The table no longer holds the chain a recorded head names: shortened or rewritten."""


@dataclass(frozen=True)
class ChainHead:
    seq: int
    hash: str
    sealed_at: str = ""

    def mac(self) -> str:
        return audit_mac(_SALT, f"{self.seq}:{self.hash}:{self.sealed_at}")

    def document(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "sealed_at": self.sealed_at, "mac": self.mac()}


def head_from_document(document: Any) -> ChainHead:
    """The head a document holds, if its MAC is ours; HeadInvalid otherwise."""
    try:
        head = ChainHead(
            seq=int(document["seq"]),
            hash=str(document["hash"]),
            sealed_at=str(document.get("sealed_at", "")),
        )
        mac = str(document["mac"])
    except (KeyError, TypeError, ValueError) as exc:
        raise HeadInvalid(f"not a chain head: {exc}") from exc
    if not hmac.compare_digest(mac, head.mac()):
        raise HeadInvalid("the head's MAC does not match: it was edited or made with another key")
    return head


def current_head() -> ChainHead | None:
    """The newest sealed entry as a head; None before anything was sealed."""
    last = AuditEntry.objects.filter(seq__isnull=False).order_by("-seq").first()
    if last is None or last.seq is None:
        return None
    sealed_at = last.sealed_at.isoformat() if last.sealed_at else ""
    return ChainHead(seq=last.seq, hash=last.hash, sealed_at=sealed_at)


def latest_floor() -> RetentionFloor | None:
    """The last retention cut: the table's entries start after its floor_seq."""
    return RetentionFloor.objects.order_by("-floor_seq").first()


def head_problem(head: ChainHead) -> str:
    """Why the table does not hold the chain `head` names, or "" if it does."""
    entry = AuditEntry.objects.filter(seq=head.seq).only("hash").first()
    floor = latest_floor() if entry is None else None
    if floor is not None and head.seq <= floor.floor_seq:
        # Archived by a retention cut: the floor keeps the hash the chain went on from.
        if head.seq == floor.floor_seq and head.hash != floor.last_hash:
            return (
                f"the retention floor at seq {head.seq} has hash {floor.last_hash[:12]}…, the "
                f"recorded head says {head.hash[:12]}…: the chain was rewritten"
            )
        return ""
    if entry is not None:
        if entry.hash != head.hash:
            return (
                f"the entry at seq {head.seq} has hash {entry.hash[:12]}…, the recorded head "
                f"says {head.hash[:12]}…: the chain was rewritten"
            )
        return ""
    newest = AuditEntry.objects.filter(seq__isnull=False).order_by("-seq").only("seq").first()
    ends = f"the table ends at seq {newest.seq}" if newest is not None else "the table is empty"
    return (
        f"the recorded head is seq {head.seq} but {ends}: "
        "entries at the end of the chain were deleted"
    )


def head_read(path: Path) -> ChainHead | None:
    """The head recorded in the file, None if there is no file yet; HeadInvalid if not ours."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise HeadInvalid(f"{path} is not JSON") from exc
    return head_from_document(document)


def head_advance(path: Path, head: ChainHead) -> ChainHead:
    """Record `head` in the file if it is later on the same chain; the head the file keeps.

    HeadMismatch, and the file left alone, if the head it holds is no longer in the table.
    """
    recorded = head_read(path)
    if recorded is not None:
        problem = head_problem(recorded)
        if problem:
            raise HeadMismatch(problem)
        if recorded.seq >= head.seq:
            return recorded
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written beside it and renamed over it: a reader never sees half a head.
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as out:
        json.dump(head.document(), out)
        out.write("\n")
        temporary = out.name
    os.replace(temporary, path)
    return head


def head_file() -> Path | None:
    """Where the sealer keeps the head (AUDIT_HEAD_FILE), None when it keeps none."""
    configured = settings.AUDIT_HEAD_FILE
    return Path(configured) if configured else None
