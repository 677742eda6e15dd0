"""Retention: entries older than AUDIT_RETENTION_DAYS leave the hot table, archived first.

A cut takes a prefix of the chain: from the last floor up to (not past) the first entry young
enough to stay, never the newest sealed entry, at most max_rows at a time. It writes the
archive (JSON Lines) and its digest to AUDIT_ARCHIVE_DIR, reads them back and checks them,
and only then, in one transaction, records the retention floor and removes the archived
entries through the database's one sanctioned path (audit_retention_cut, migration 0004),
with an audit entry. The chain then verifies from the floor, and the archive on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from audit.chain import timestamp
from audit.export_check import export_check
from audit.exports import Export, ExportPlan, export_write
from audit.head import ChainHead, latest_floor
from audit.models import AuditEntry, RetentionFloor
from audit.services import audit_record
from audit.verification import floor_mac

CUT_FUNCTION = "audit_retention_cut(timestamptz, bigint, bigint, text, bigint, text, text, text)"
# pg_advisory_xact_lock key: one cut at a time.
PRUNE_LOCK_KEY = 0x48414E45
ARCHIVE_MAX_ROWS = 100_000


class PruneRefused(RuntimeError):
    """A cut that must not go ahead: its archive does not verify, or another cut got there."""


@dataclass(frozen=True)
class PruneResult:
    rows: int = 0
    first_seq: int | None = None
    floor_seq: int | None = None
    archive: Path | None = None


def prune_span(*, older_than: datetime, max_rows: int) -> tuple[int, int] | None:
    """(first_seq, floor_seq) of the next cut, or None when nothing may go."""
    floor = latest_floor()
    first = floor.floor_seq + 1 if floor else 1
    newest = AuditEntry.objects.aggregate(newest=Max("seq"))["newest"]
    if newest is None:
        return None
    young = AuditEntry.objects.filter(seq__gte=first, created_at__gte=older_than).aggregate(
        young=Min("seq")
    )["young"]
    last = min(young - 1 if young is not None else newest, newest - 1, first + max_rows - 1)
    return (first, last) if last >= first else None


def audit_prune(
    *,
    older_than: datetime,
    archive_dir: Path,
    actor: Any,
    max_rows: int = ARCHIVE_MAX_ROWS,
) -> PruneResult:
    """Archive then remove the next prefix of entries older than `older_than`; one cut."""
    span = prune_span(older_than=older_than, max_rows=max_rows)
    if span is None:
        return PruneResult()
    first, last = span
    path, digest = _archive(first, last, archive_dir, older_than)
    check = export_check(path)
    if not check.ok or digest["rows"] != last - first + 1:
        raise PruneRefused(
            f"the archive {path} does not hold seq {first} to {last} whole "
            f"({'; '.join(check.problems) or 'a gap in the chain'}): nothing was removed"
        )
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PRUNE_LOCK_KEY])
        previous = latest_floor()
        if (previous.floor_seq if previous else 0) != first - 1:
            raise PruneRefused("another retention cut ran meanwhile: nothing was removed")
        floor = RetentionFloor(
            created_at=timezone.now(),
            first_seq=first,
            floor_seq=last,
            last_hash=digest["head"]["hash"],
            rows=digest["rows"],
            archive=path.name,
            archive_sha256=digest["sha256"],
        )
        floor.mac = floor_mac(floor)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {CUT_FUNCTION.split('(')[0]}(%s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    floor.created_at,
                    floor.first_seq,
                    floor.floor_seq,
                    floor.last_hash,
                    floor.rows,
                    floor.archive,
                    floor.archive_sha256,
                    floor.mac,
                ],
            )
        floor = RetentionFloor.objects.get(floor_seq=last)
        audit_record(
            actor=actor,
            action="audit.prune",
            target=floor,
            after={
                "first_seq": first,
                "floor_seq": last,
                "rows": floor.rows,
                "archive": floor.archive,
                "archive_sha256": floor.archive_sha256,
                "older_than": timestamp(older_than),
            },
            reason=f"retention: entries older than {timestamp(older_than)}",
        )
    return PruneResult(rows=floor.rows, first_seq=first, floor_seq=last, archive=path)


def _archive(
    first: int, last: int, archive_dir: Path, older_than: datetime
) -> tuple[Path, dict[str, Any]]:
    end = AuditEntry.objects.only("hash", "sealed_at").get(seq=last)
    plan = ExportPlan(
        entries=AuditEntry.objects.filter(seq__gte=first, seq__lte=last).order_by("seq"),
        head=ChainHead(seq=last, hash=end.hash),
        filter={"archive": f"seq {first} to {last}", "older_than": timestamp(older_than)},
        scope="all",
        floor=first - 1,
    )
    path = archive_dir / f"audit-{first:012d}-{last:012d}.jsonl"
    digest = export_write(Export(plan, "jsonl"), path, created_at=timezone.now())
    return path, digest


def audit_prune_due(*, max_rows: int = ARCHIVE_MAX_ROWS) -> int:
    """The periodic cut under AUDIT_RETENTION_DAYS (nothing when it is unset); rows removed."""
    days = settings.AUDIT_RETENTION_DAYS
    if days is None:
        return 0
    result = audit_prune(
        older_than=timezone.now() - timedelta(days=days),
        archive_dir=Path(settings.AUDIT_ARCHIVE_DIR),
        actor=None,
        max_rows=max_rows,
    )
    return result.rows
