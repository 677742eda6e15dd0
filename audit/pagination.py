"""Keyset pagination: one cursor codec and one page query for the queue, its groups, the API and
the audit trail. It lives in audit, the lowest layer, because the trail pages with it too.

A cursor holds the sort key values of the row a page stops at, as url-safe base64 of JSON.
It is opaque to clients but not secret: anyone can write one. Decoding checks every value
against the sort it claims to continue, so a crafted cursor is InvalidCursor (a 400), never a
query the database refuses (a 500) nor a silent jump back to the first page.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db.models import F, QuerySet
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan

# Ours are under 150 characters; the bound keeps a crafted one from costing anything.
MAX_CURSOR_LENGTH = 512
_CURSOR = re.compile(r"[A-Za-z0-9_-]+={0,2}")
# Ids and foreign keys are bigint columns: a larger number cannot be a row's key.
_BIGINT_MAX = 2**63 - 1
_TEXT_MAX = 200


class InvalidCursor(ValueError):
    """A cursor this server did not hand out for that sort (edited, cut off or made up)."""


@dataclass(frozen=True)
class SortSpec:
    """An order a list can be paged in."""

    keys: tuple[str, ...]  # fields or annotations of the rows; together they are unique
    kinds: tuple[str, ...]  # "dt", "int" or "str": what each cursor value must be
    descending: bool = False


@dataclass
class KeysetPage:
    rows: list[Any]
    next_cursor: str = ""
    prev_cursor: str = ""


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps(
        [v.isoformat() if isinstance(v, datetime) else v for v in values], separators=(",", ":")
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, spec: SortSpec) -> list[Any]:
    """The key values in a cursor, each checked against the spec; InvalidCursor if any is off."""
    if len(cursor) > MAX_CURSOR_LENGTH or not _CURSOR.fullmatch(cursor):
        raise InvalidCursor("not a cursor")
    try:
        # Padding is optional: ours leave it off, older API cursors carried it.
        data = cursor.rstrip("=")
        raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
        values = json.loads(raw.decode())
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursor("not a cursor") from exc
    if not isinstance(values, list) or len(values) != len(spec.kinds):
        raise InvalidCursor("not a cursor for this order")
    return [_checked(value, kind) for value, kind in zip(values, spec.kinds, strict=True)]


def _checked(value: Any, kind: str) -> Any:
    if kind == "int":
        # bool is an int to Python, and a float may hold one: neither is a key we wrote.
        if type(value) is int and 0 <= value <= _BIGINT_MAX:
            return value
    elif kind == "str":
        if isinstance(value, str) and len(value) <= _TEXT_MAX and "\x00" not in value:
            return value
    elif kind == "dt" and isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is not None:
                return moment.astimezone(UTC)
        except (ValueError, OverflowError):
            pass
    raise InvalidCursor("a value in the cursor does not fit this order")


def _key_values(row: Any, spec: SortSpec) -> list[Any]:
    if isinstance(row, dict):
        return [row[key] for key in spec.keys]
    return [getattr(row, key) for key in spec.keys]


def keyset_page(
    queryset: QuerySet, *, spec: SortSpec, per: int, after: str = "", before: str = ""
) -> KeysetPage:
    """The `per` rows in the spec's order that follow `after` (or precede `before`).

    The rows must carry every key of the spec, as fields or annotations. One query of at most
    per + 1 rows from an index range: the same cost on the first page and the thousandth.
    """
    cursor = before or after
    position = decode_cursor(cursor, spec) if cursor else None
    backwards = bool(before)
    forward = [f"-{key}" if spec.descending else key for key in spec.keys]
    order = [key[1:] if key.startswith("-") else f"-{key}" for key in forward]
    if position is not None:
        ahead = TupleLessThan if spec.descending != backwards else TupleGreaterThan
        columns = Tuple(*(F(key) for key in spec.keys))
        queryset = queryset.filter(ahead(columns, tuple(position)))
    rows = list(queryset.order_by(*(order if backwards else forward))[: per + 1])
    more = len(rows) > per
    rows = rows[:per]
    if backwards:
        rows.reverse()
        more_after, more_before = True, more
    else:
        more_after, more_before = more, position is not None
    page = KeysetPage(rows=rows)
    if rows and more_after:
        page.next_cursor = encode_cursor(_key_values(rows[-1], spec))
    if rows and more_before:
        page.prev_cursor = encode_cursor(_key_values(rows[0], spec))
    return page
