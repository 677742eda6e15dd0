"""Exports of the trail: JSON Lines and CSV, streamed, each with a signed digest.

An export holds sealed entries only, in chain order, up to the chain head it is pinned to
(`until_seq`; by default the newest sealed entry when it starts). Entries still "sealing" are
left out: they are in the next export. Pinned, the same filter gives the same bytes at any later
time, until a retention cut archives entries it covered (its digest names the floor it was made
above, so a changed export says why).

The digest is the SHA-256 of the exact bytes of the content, the row count, the first and last
seq, the head (seq and hash), the filter, and an HMAC with the head file's key: whoever edits the
file and recomputes the SHA-256 cannot make the HMAC match.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.http import QueryDict

from audit.canonical import canonical_json
from audit.chain import HASHED_FIELDS, entry_document, hashed_document, timestamp
from audit.filters import FILTER_NAMES, AuditFilter
from audit.head import ChainHead, audit_mac, current_head, latest_floor
from audit.models import AuditEntry

_SALT = "handoff.audit.export"
FORMATS = {"jsonl": "application/x-ndjson", "csv": "text/csv"}
PIN = "until_seq"
# One column per field; the record keys of JSON Lines are the same names.
COLUMNS = (
    "seq",
    "id",
    "created_at",
    "sealed_at",
    "actor_id",
    "actor_kind",
    "actor_label",
    "actor_roles",
    "actor_memberships",
    "action",
    "object_type",
    "object_id",
    "workflow",
    "before",
    "after",
    "reason",
    "request_id",
    "approval_id",
    "prev_hash",
    "hash",
)
JSON_COLUMNS = frozenset({"actor_roles", "actor_memberships", "before", "after"})
INT_COLUMNS = frozenset({"seq", "id", "actor_id", "approval_id"})
_CHUNK_BYTES = 64 * 1024


class ExportRefused(ValueError):
    """An export that cannot be made as asked; the message says why, in the asker's words."""


def export_record(entry: AuditEntry) -> dict[str, Any]:
    """An entry as exported: its chained document, its seal, and its workflow even when empty."""
    record = entry_document(entry)
    record["workflow"] = entry.workflow
    record["sealed_at"] = timestamp(entry.sealed_at) if entry.sealed_at else None
    record["prev_hash"] = entry.prev_hash
    record["hash"] = entry.hash
    return record


def record_document(record: Mapping[str, Any]) -> dict[str, Any]:
    """The document an exported record's hash was computed over (audit.chain.entry_document)."""
    document = {key: record[key] for key in HASHED_FIELDS if key != "workflow"}
    document["workflow"] = record.get("workflow")
    return hashed_document(document)


class _CsvLines:
    """One CSV line per record: JSON columns as canonical JSON, empty for None."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)

    def line(self, values: list[Any]) -> bytes:
        self._writer.writerow(values)
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text.encode()

    def header(self) -> bytes:
        return self.line(list(COLUMNS))

    def record(self, record: Mapping[str, Any]) -> bytes:
        return self.line(
            [
                canonical_json(record[c]).decode()
                if c in JSON_COLUMNS
                else ("" if record[c] is None else record[c])
                for c in COLUMNS
            ]
        )


def csv_record(row: Mapping[str, str]) -> dict[str, Any]:
    """A CSV row read back as the record it was written from."""
    record: dict[str, Any] = {}
    for column in COLUMNS:
        text = row[column]
        if column in JSON_COLUMNS:
            record[column] = json.loads(text)
        elif column in INT_COLUMNS:
            record[column] = int(text) if text else None
        else:
            record[column] = text
    record["sealed_at"] = record["sealed_at"] or None
    return record


@dataclass(frozen=True)
class ExportPlan:
    """What an export will hold: the entries (sealed, in chain order) and what pins them."""

    entries: QuerySet[AuditEntry]
    head: ChainHead | None
    filter: dict[str, str]
    scope: str
    floor: int


def export_plan(
    params: QueryDict | dict[str, str], *, visible: QuerySet[AuditEntry], scope: str
) -> ExportPlan:
    """The plan for an export asked for with the trail's filters (and until_seq); ExportRefused
    with a readable reason for anything it cannot honour."""
    unknown = sorted(set(params) - {*FILTER_NAMES, PIN})
    if unknown:
        raise ExportRefused(
            f"unknown filter {', '.join(unknown)}: the filters are "
            f"{', '.join(FILTER_NAMES)}, and {PIN} to pin the export to a chain head"
        )
    filterset = AuditFilter(params, queryset=visible)
    if not filterset.is_valid():
        raise ExportRefused(
            "; ".join(f"{name}: {' '.join(errors)}" for name, errors in filterset.errors.items())
        )
    floor = latest_floor()
    floor_seq = floor.floor_seq if floor else 0
    head = _pinned_head(params.get(PIN, ""), floor_seq)
    entries = (
        filterset.qs.filter(seq__isnull=False, seq__lte=head.seq).order_by("seq")
        if head is not None
        else AuditEntry.objects.none()
    )
    chosen = {name: str(params[name]) for name in FILTER_NAMES if params.get(name)}
    return ExportPlan(entries=entries, head=head, filter=chosen, scope=scope, floor=floor_seq)


def _pinned_head(raw: str, floor_seq: int) -> ChainHead | None:
    head = current_head()
    if not raw:
        return head
    try:
        seq = int(raw.strip())
    except ValueError as exc:
        raise ExportRefused(f"{PIN} must be a sequence number, got {raw!r}") from exc
    newest = head.seq if head else 0
    if seq < 1 or seq > newest:
        raise ExportRefused(
            f"{PIN} {seq} is not a sealed entry: the chain runs from seq {floor_seq + 1} "
            f"to seq {newest}"
        )
    if seq <= floor_seq:
        raise ExportRefused(
            f"entries up to seq {floor_seq} were moved to the archive by a retention cut: "
            f"{PIN} must be above {floor_seq}"
        )
    entry = AuditEntry.objects.only("seq", "hash", "sealed_at").get(seq=seq)
    sealed_at = entry.sealed_at.isoformat() if entry.sealed_at else ""
    return ChainHead(seq=seq, hash=entry.hash, sealed_at=sealed_at)


class Export:
    """One export being written: the bytes as they stream, and the digest of exactly those."""

    def __init__(self, plan: ExportPlan, fmt: str) -> None:
        if fmt not in FORMATS:
            raise ExportRefused(f"unknown format {fmt!r}: {' or '.join(FORMATS)}")
        self.plan = plan
        self.format = fmt
        self.rows = 0
        self.first_seq: int | None = None
        self.last_seq: int | None = None
        self._sha = hashlib.sha256()

    def chunks(self, *, batch: int = 2000) -> Iterator[bytes]:
        """The content, in chunks of about 64 KiB, read through one server-side cursor.

        One query in one transaction: one snapshot, so a retention cut running meanwhile cannot
        leave a hole in it; batch rows at a time are in memory, never the whole export.
        """
        lines = _CsvLines() if self.format == "csv" else None
        pending: list[bytes] = [lines.header()] if lines else []
        size = sum(map(len, pending))
        with transaction.atomic():
            for entry in self.plan.entries.iterator(chunk_size=batch):
                record = export_record(entry)
                line = lines.record(record) if lines else canonical_json(record) + b"\n"
                self.rows += 1
                self.first_seq = self.first_seq or entry.seq
                self.last_seq = entry.seq
                pending.append(line)
                size += len(line)
                if size >= _CHUNK_BYTES:
                    yield self._taken(pending)
                    pending, size = [], 0
        if pending:
            yield self._taken(pending)

    def _taken(self, lines: list[bytes]) -> bytes:
        chunk = b"".join(lines)
        self._sha.update(chunk)
        return chunk

    def digest(self, *, created_at: datetime | None = None) -> dict[str, Any]:
        """The signed digest of what chunks() gave; created_at only where reproducibility does
        not matter (a file written once), so the same pinned URL gives the same bytes."""
        head = self.plan.head
        document: dict[str, Any] = {
            "format": self.format,
            "sha256": self._sha.hexdigest(),
            "rows": self.rows,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "head": {"seq": head.seq, "hash": head.hash} if head else None,
            "floor": self.plan.floor,
            "filter": self.plan.filter,
            "scope": self.plan.scope,
        }
        if created_at is not None:
            document["created_at"] = timestamp(created_at)
        return digest_signed(document)


def digest_signed(document: Mapping[str, Any]) -> dict[str, Any]:
    unsigned = {key: value for key, value in document.items() if key != "hmac"}
    return {**unsigned, "hmac": audit_mac(_SALT, canonical_json(unsigned))}


def digest_trailer(digest: Mapping[str, Any]) -> bytes:
    """The last line of a JSON Lines download: its digest, so a browser's file carries it."""
    return canonical_json({"digest": digest}) + b"\n"


def export_write(export: Export, path: Path, *, created_at: datetime) -> dict[str, Any]:
    """Write the export to FILE and its digest to FILE.digest; returns the digest.

    Each is written beside its name, flushed to disk and renamed over it: a reader never sees a
    half-written file under the final name.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    _replace(path, export.chunks())
    digest = export.digest(created_at=created_at)
    text = json.dumps(digest, indent=2, sort_keys=True) + "\n"
    _replace(digest_path(path), iter([text.encode()]))
    return digest


def digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".digest")


def _replace(path: Path, chunks: Iterator[bytes]) -> None:
    with tempfile.NamedTemporaryFile("wb", dir=path.parent, delete=False, suffix=".tmp") as out:
        try:
            for chunk in chunks:
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        except BaseException:
            os.unlink(out.name)
            raise
    os.replace(out.name, path)
