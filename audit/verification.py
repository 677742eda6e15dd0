"""Walking the chain: the first entry that does not verify, if any; and the head kept outside."""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

from django.db import connection, transaction

from audit.chain import GENESIS_HASH, HASHED_FIELDS, canonical_document
from audit.head import HeadInvalid, audit_mac, head_problem, head_read
from audit.models import AuditEntry, RetentionFloor

FLOOR_SALT = "handoff.audit.retention"


@dataclass(frozen=True)
class ChainReport:
    checked: int
    unsealed: int
    broken_entry_id: int | None = None
    broken_seq: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem

    @property
    def location(self) -> str:
        """Where the chain breaks: an entry, or the retention floor it starts from."""
        if self.broken_entry_id is not None:
            return f"entry #{self.broken_entry_id} (seq {self.broken_seq})"
        return f"the retention floor at seq {self.broken_seq}"


def floor_mac(floor: RetentionFloor) -> str:
    return audit_mac(FLOOR_SALT, floor.signed_value())


def floor_problem(floors: list[RetentionFloor]) -> tuple[RetentionFloor, str] | None:
    """The first retention floor that is not ours or does not continue the one before it."""
    previous = 0
    for floor in floors:
        if not hmac.compare_digest(floor.mac, floor_mac(floor)):
            return floor, "its MAC does not match: it was edited or made with another key"
        if floor.first_seq != previous + 1:
            return (
                floor,
                f"it starts at seq {floor.first_seq}, the cut before it ended at {previous}",
            )
        previous = floor.floor_seq
    return None


def verify_chain(*, chunk_size: int = 10_000) -> ChainReport:
    """Recompute every sealed entry's hash in seq order; stop at the first that fails.

    After a retention cut the chain starts at its floor: the first entry left must follow the
    floor's seq and chain onto the hash the floor recorded (the archive verifies on its own).

    PostgreSQL hands each entry over as one JSON document of the hashed fields (created_at
    already in canonical form), read through a server-side cursor chunk_size rows at a time,
    the next chunk while this one is checked: one decode and one canonical encode per entry.
    A model instance per entry, four JSON columns and a parsed timestamp each cost more than
    the hashing.
    """
    expected_seq = 1
    prev_hash = GENESIS_HASH
    checked = 0
    unsealed = AuditEntry.objects.filter(seq__isnull=True).count()
    floors = list(RetentionFloor.objects.order_by("floor_seq"))
    broken_floor = floor_problem(floors)
    if broken_floor is not None:
        floor, problem = broken_floor
        return ChainReport(0, unsealed, None, floor.floor_seq, problem)
    if floors:
        expected_seq, prev_hash = floors[-1].floor_seq + 1, floors[-1].last_hash
    # A named (server-side) cursor lives in a transaction; the walk only reads.
    with transaction.atomic(), connection.connection.cursor(name="audit_verify") as cursor:
        cursor.execute(_ENTRIES_SQL, [expected_seq])
        for rows in _read_ahead(cursor, chunk_size):
            for text, row_prev_hash, row_hash in rows:
                document = json.loads(text)
                seq = document["seq"]
                problem = ""
                if seq != expected_seq:
                    problem = f"sequence gap: expected seq {expected_seq}, found {seq}"
                elif row_prev_hash != prev_hash:
                    problem = "prev_hash does not match the hash of the entry before it"
                elif (
                    row_hash
                    != sha256(prev_hash.encode() + canonical_document(document)).hexdigest()
                ):
                    problem = "hash does not match the entry's content: the entry was altered"
                if problem:
                    return ChainReport(checked, unsealed, document["id"], seq, problem)
                checked += 1
                expected_seq += 1
                prev_hash = row_hash
    return ChainReport(checked, unsealed)


def _read_ahead(cursor: Any, chunk_size: int) -> Iterator[list[Any]]:
    """The cursor's rows chunk by chunk, the next chunk fetched in a thread while the caller
    checks this one: PostgreSQL builds the documents while Python hashes."""
    with ThreadPoolExecutor(max_workers=1) as reader:
        pending = reader.submit(cursor.fetchmany, chunk_size)
        while rows := pending.result():
            pending = reader.submit(cursor.fetchmany, chunk_size)
            yield rows


# The same string as datetime.isoformat(timespec="microseconds") of the time in UTC.
_CREATED_AT = """to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""
_ENTRIES_SQL = (
    "SELECT jsonb_build_object("  # noqa: S608 -- column names only
    + ", ".join(
        f"'{name}', {_CREATED_AT if name == 'created_at' else name}" for name in HASHED_FIELDS
    )
    + ")::text, prev_hash, hash FROM audit_auditentry WHERE seq >= %s ORDER BY seq"
)


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
