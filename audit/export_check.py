"""Checking an exported file against its digest, and saying exactly what is wrong with it.

The digest is FILE.digest beside the file (written by audit_export and audit_prune, or saved
from the .digest URL), or, for a JSON Lines download, its last line. Its HMAC proves it is ours;
its SHA-256 and row count prove the content is whole. When they do not match, each record's own
chain hash (and its link to the record before it) tells an edited line from a file cut short.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from audit.chain import document_hash
from audit.exports import FORMATS, csv_record, digest_signed, record_document
from audit.exports import digest_path as export_digest_path

_TAIL_BYTES = 64 * 1024


@dataclass
class ExportCheck:
    digest: dict[str, Any] | None = None
    rows: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _Reading:
    rows: int = 0
    last_seq: int | None = None
    edited: str = ""
    incomplete: bool = False


def export_check(path: Path, *, digest_path: Path | None = None) -> ExportCheck:
    """Check FILE against its digest; every problem found, most telling first."""
    check = ExportCheck()
    companion = digest_path or export_digest_path(path)
    length = path.stat().st_size
    if companion.exists():
        digest = _json_or_none(companion.read_bytes())
        if not isinstance(digest, dict):
            check.problems.append(f"{companion} is not a digest (not a JSON object)")
            return check
    else:
        digest, length = _trailer(path)
        if digest is None:
            check.problems.append(
                f"no digest: {companion.name} is not beside the file, and its last line is not "
                "a digest record (a JSON Lines download that lost its last line was cut short; "
                "fetch the digest from the export's .digest address)"
            )
            return check
    check.digest = digest
    if not hmac.compare_digest(str(digest.get("hmac", "")), digest_signed(digest)["hmac"]):
        check.problems.append(
            "the digest's HMAC does not match: the digest was forged or edited (or made with "
            "another key)"
        )
        return check
    fmt = digest.get("format")
    if fmt not in FORMATS:
        check.problems.append(f"the digest names no known format: {fmt!r}")
        return check
    with path.open("rb") as file:
        sha = _sha256(file, length)
        file.seek(0)
        reading = _read(file, length, fmt)
    check.rows = reading.rows
    if sha == digest.get("sha256") and reading.rows == digest.get("rows"):
        return check
    check.problems += _explained(reading, digest)
    return check


def _json_or_none(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def _trailer(path: Path) -> tuple[dict[str, Any] | None, int]:
    """The digest record a JSON Lines download ends with, and where the content before it ends."""
    size = path.stat().st_size
    with path.open("rb") as file:
        file.seek(max(0, size - _TAIL_BYTES))
        tail = file.read()
    if not tail.endswith(b"\n"):
        return None, size
    start = tail.rfind(b"\n", 0, len(tail) - 1) + 1
    record = _json_or_none(tail[start:])
    if isinstance(record, dict) and isinstance(record.get("digest"), dict):
        return record["digest"], size - (len(tail) - start)
    return None, size


def _bounded(file: BinaryIO, length: int) -> Iterator[bytes]:
    remaining = length
    while remaining > 0:
        block = file.read(min(remaining, 1 << 20))
        if not block:
            return
        remaining -= len(block)
        yield block


def _sha256(file: BinaryIO, length: int) -> str:
    sha = hashlib.sha256()
    for block in _bounded(file, length):
        sha.update(block)
    return sha.hexdigest()


def _records(file: BinaryIO, length: int, fmt: str) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """(line number, record) for each row of the content; None for one that cannot be read."""
    if fmt == "jsonl":
        position = 0
        for number, line in enumerate(file, start=1):
            if position >= length:
                return
            position += len(line)
            record = _json_or_none(line) if line.endswith(b"\n") else None
            yield number, record if isinstance(record, dict) else None
        return
    text = io.TextIOWrapper(file, encoding="utf-8", errors="replace", newline="")
    try:
        reader = csv.DictReader(text)
        for row in reader:
            try:
                yield reader.line_num, csv_record(row)
            except (KeyError, TypeError, ValueError):
                yield reader.line_num, None
    finally:
        text.detach()


def _read(file: BinaryIO, length: int, fmt: str) -> _Reading:
    """Count the rows and find the first one whose own hash or link does not hold.

    A file that stops mid-line was cut there: its last row is not counted, nor blamed.
    """
    reading = _Reading()
    if length:
        file.seek(length - 1)
        reading.incomplete = file.read(1) != b"\n"
        file.seek(0)
    previous: dict[str, Any] | None = None
    pending = ""  # the last row's problem, blamed once another row follows it
    for row, (number, record) in enumerate(_records(file, length, fmt), start=1):
        reading.edited = reading.edited or pending
        reading.rows = row
        reading.last_seq = previous.get("seq") if previous else None
        where = f"row {row}" if fmt == "jsonl" else f"row {row} (line {number})"
        if record is None:
            pending = f"{where} cannot be read back as an entry"
            continue
        pending = _record_problem(where, record, previous)
        previous = record
    if reading.incomplete and reading.rows:
        reading.rows -= 1
    else:
        reading.edited = reading.edited or pending
        reading.last_seq = previous.get("seq") if previous else None
    return reading


def _record_problem(where: str, record: dict[str, Any], previous: dict[str, Any] | None) -> str:
    seq = record.get("seq")
    try:
        recomputed = document_hash(str(record["prev_hash"]), record_document(record))
    except (KeyError, TypeError, ValueError):
        return f"{where} is missing fields of an entry"
    if recomputed != record.get("hash"):
        return f"{where} (seq {seq}) was edited: its hash does not match its content"
    follows = previous is not None and seq == (previous.get("seq") or 0) + 1
    if follows and previous is not None and record["prev_hash"] != previous.get("hash"):
        return f"{where} (seq {seq}) does not chain onto the row before it: entries were rewritten"
    return ""


def _explained(reading: _Reading, digest: dict[str, Any]) -> list[str]:
    """Why the content does not match the digest, as precisely as the rows allow."""
    problems = [reading.edited] if reading.edited else []
    expected = digest.get("rows")
    last = digest.get("last_seq")
    if reading.incomplete or (isinstance(expected, int) and reading.rows < expected):
        ends = f", ending at seq {reading.last_seq}" if reading.last_seq else ""
        problems.append(
            f"the file was cut short: it holds {reading.rows} of the {expected} rows the digest "
            f"covers{ends}; the digest's last is seq {last}"
            + (" (its last line is incomplete)" if reading.incomplete else "")
        )
    elif isinstance(expected, int) and reading.rows > expected:
        problems.append(f"rows were added: the file holds {reading.rows}, the digest {expected}")
    if not problems:
        problems.append(
            "the content's SHA-256 differs from the digest's though every entry still hashes: "
            "it was reformatted, reordered or re-encoded"
        )
    return problems
