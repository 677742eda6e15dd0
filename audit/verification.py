"""Walking the chain: the first entry that does not verify, if any; and the head kept outside."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from audit.chain import GENESIS_HASH, entry_hash
from audit.head import HeadInvalid, head_problem, head_read
from audit.models import AuditEntry


@dataclass(frozen=True)
class ChainReport:
    checked: int
    unsealed: int
    broken_entry_id: int | None = None
    broken_seq: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_entry_id is None


def verify_chain(*, chunk_size: int = 2000) -> ChainReport:
    """Recompute every sealed entry's hash in seq order; stop at the first that fails."""
    expected_seq = 1
    prev_hash = GENESIS_HASH
    checked = 0
    unsealed = AuditEntry.objects.filter(seq__isnull=True).count()
    entries = AuditEntry.objects.filter(seq__isnull=False).order_by("seq")
    for entry in entries.iterator(chunk_size=chunk_size):
        problem = ""
        if entry.seq != expected_seq:
            problem = f"sequence gap: expected seq {expected_seq}, found {entry.seq}"
        elif entry.prev_hash != prev_hash:
            problem = "prev_hash does not match the hash of the entry before it"
        elif entry.hash != entry_hash(entry.prev_hash, entry):
            problem = "hash does not match the entry's content: the entry was altered"
        if problem:
            return ChainReport(checked, unsealed, entry.pk, entry.seq, problem)
        checked += 1
        expected_seq += 1
        prev_hash = entry.hash
    return ChainReport(checked, unsealed)


def verify_head(path: Path) -> str:
    """Why the table no longer holds the chain the head file names; "" if it does (or no file)."""
    try:
        recorded = head_read(path)
    except HeadInvalid as exc:
        return f"head file {path}: {exc}"
    if recorded is None:
        return ""
    problem = head_problem(recorded)
    return f"head file {path}: {problem}" if problem else ""
