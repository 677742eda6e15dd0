"""Storing inbound events: each idempotency key once per workflow, whatever the concurrency.

An ingested event is its own record (DESIGN.md section 6): no audit entry. The engine picks it
up from the database (state received, next_attempt_at now); the wake-up sent after commit only
saves the sweeper's delay and never makes ingest wait on, or fail with, the broker.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import JSONField
from django.utils import timezone
from psycopg.types.json import Jsonb

from audit.canonical import canonical_hash
from workflows.definitions import json_type
from workflows.dispatch import wake_workers
from workflows.models import Event, EventState, Step, Workflow
from workflows.sanitise import external_text

KEPT_HEADERS = (
    "content-type",
    "user-agent",
    "idempotency-key",
    "webhook-id",
    "webhook-timestamp",
    "x-request-id",
)
# Not an HTTP header: the SHA-256 of the body bytes as sent. The payload column is jsonb, which
# normalizes key order and whitespace, so this is what a sender's copy can be checked against.
BODY_HASH_HEADER = "body-sha256"
MAX_HEADER_LENGTH = 1000
MAX_PAYLOAD_DEPTH = 100
DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024


class UnknownWorkflow(Exception):
    """The workflow does not exist or has no current version to run events under."""


class IdempotencyConflict(Exception):
    """The key was already used with a different payload."""

    def __init__(self, *, key: str, event_id: int | None, index: int) -> None:
        self.key = key
        self.event_id = event_id
        self.index = index
        super().__init__(f"idempotency key {key!r} was already used with a different payload")


@dataclass(frozen=True)
class IncomingEvent:
    payload: dict[str, Any]
    idempotency_key: str | None = None
    raw_body_hash: str = ""


class PayloadRefused(ValueError):
    """A body that cannot become an event's payload; `code` is the API's error code."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.details = details


def max_payload_bytes() -> int:
    return int(getattr(settings, "HANDOFF_MAX_PAYLOAD_BYTES", DEFAULT_MAX_PAYLOAD_BYTES))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_parse(body: bytes | str, *, what: str = "The body") -> Any:
    """JSON that PostgreSQL can store, or PayloadRefused("invalid_json") saying why not."""
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise PayloadRefused("invalid_json", f"{what} is nested too deeply.") from None
    except ValueError as exc:  # JSONDecodeError, bad UTF-8, NaN/Infinity, huge integers
        raise PayloadRefused("invalid_json", f"{what} is not valid JSON: {exc}") from None
    reason = unstorable_reason(value)
    if reason:
        raise PayloadRefused("invalid_json", f"The JSON cannot be accepted: it {reason}.")
    return value


def payload_parse(body: bytes | str, *, what: str = "The payload") -> dict[str, Any]:
    """An event's payload with every limit ingest applies: size, JSON PostgreSQL can store, an
    object. The API and the console's edited replay both read payloads through this."""
    size = len(body.encode("utf-8") if isinstance(body, str) else body)
    limit = max_payload_bytes()
    if size > limit:
        raise PayloadRefused(
            "payload_too_large",
            f"{what} is larger than the limit of {limit} bytes.",
            {"max_bytes": limit},
        )
    value = json_parse(body, what=what)
    if not isinstance(value, dict):
        raise PayloadRefused(
            "not_an_object", f"{what} must be a JSON object, not a JSON {json_type(value)}."
        )
    return value


def unstorable_reason(value: Any) -> str | None:
    """Why a parsed JSON value cannot be stored as jsonb, or None when it can.

    PostgreSQL refuses NUL characters and non-finite numbers, UTF-8 cannot carry lone
    surrogates (json.loads accepts all three), and very deep nesting is refused here rather
    than left to recursion limits further down.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > MAX_PAYLOAD_DEPTH:
            return f"nested deeper than {MAX_PAYLOAD_DEPTH} levels"
        if isinstance(current, dict):
            for key, item in current.items():
                stack.append((key, depth))
                stack.append((item, depth + 1))
        elif isinstance(current, list):
            stack.extend((item, depth + 1) for item in current)
        elif isinstance(current, str):
            if "\x00" in current:
                return "contains a NUL character (\\u0000)"
            try:
                current.encode()
            except UnicodeEncodeError:
                return "contains an unpaired surrogate escape"
        elif isinstance(current, float) and not math.isfinite(current):
            return "contains a number out of range"
    return None


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The request headers worth keeping with the event; never credentials."""
    lowered = {name.lower(): value for name, value in headers.items()}
    return {
        name: external_text(lowered[name], limit=MAX_HEADER_LENGTH)
        for name in KEPT_HEADERS
        if name in lowered
    }


# Not @transaction.atomic: the event is one INSERT, a transaction of its own, and BEGIN and
# COMMIT around it would be two more round trips for nothing. A caller's transaction still
# holds it (a key read back on conflict needs no snapshot shared with the INSERT).
def event_ingest(
    *,
    workflow: Workflow,
    payload: dict[str, Any],
    raw_body_hash: str,
    idempotency_key: str | None,
    headers: Mapping[str, str],
    source: str,
) -> tuple[Event, bool]:
    """Store one event under the workflow's current version; (event, duplicate)."""
    [result] = _store(
        workflow=workflow,
        items=[IncomingEvent(payload, idempotency_key, raw_body_hash)],
        headers=headers,
        source=source,
    )
    return result


@transaction.atomic
def event_ingest_batch(
    *,
    workflow: Workflow,
    items: Sequence[IncomingEvent],
    headers: Mapping[str, str],
    source: str,
) -> list[tuple[Event, bool]]:
    """Store a batch in one transaction: all of it, or (on a key conflict) none of it."""
    return _store(workflow=workflow, items=items, headers=headers, source=source)


def _store(
    *,
    workflow: Workflow,
    items: Sequence[IncomingEvent],
    headers: Mapping[str, str],
    source: str,
) -> list[tuple[Event, bool]]:
    if workflow.current_version_id is None:
        raise UnknownWorkflow(workflow.slug)
    hashes = [canonical_hash(item.payload) for item in items]

    # The first item with a key speaks for it; a later one must carry the same payload.
    first_with_key: dict[str, int] = {}
    for index, item in enumerate(items):
        key = item.idempotency_key
        if key is None:
            continue
        if key not in first_with_key:
            first_with_key[key] = index
        elif hashes[first_with_key[key]] != hashes[index]:
            raise IdempotencyConflict(key=key, event_id=None, index=index)

    now = timezone.now()
    common = kept_headers(headers)
    new = [
        (index, _new_event(workflow, item, hashes[index], common, source, now))
        for index, item in enumerate(items)
        if item.idempotency_key is None or first_with_key[item.idempotency_key] == index
    ]
    results: list[tuple[Event, bool] | None] = [None] * len(items)
    # One statement: the new rows go in, a key stored before (or by a concurrent request, whose
    # commit the INSERT waits for) is skipped; only the skipped keys are read back.
    skipped: dict[str, int] = {}
    for index, event in _insert_skipping_stored_keys(new):
        if event is None:
            skipped[cast(str, items[index].idempotency_key)] = index
        else:
            results[index] = (event, False)
    if len(skipped) < len(new):
        transaction.on_commit(wake_workers, robust=True)
    if skipped:
        stored = Event.objects.filter(
            workflow_id=workflow.pk, idempotency_key__in=list(skipped)
        ).only("id", "state", "payload_hash", "idempotency_key", "workflow_id", "version_id")
        for found in stored:
            index = skipped[cast(str, found.idempotency_key)]
            if found.payload_hash != hashes[index]:
                raise IdempotencyConflict(
                    key=cast(str, found.idempotency_key), event_id=found.pk, index=index
                )
            results[index] = (found, True)

    # Repeats of a key inside the batch share the first item's event, whose result is set by
    # now: only a repeat of a key is still unset, and it comes after the item that speaks for it.
    stored_results: list[tuple[Event, bool]] = []
    for index, item in enumerate(items):
        result = results[index]
        if result is None:
            first = results[first_with_key[cast(str, item.idempotency_key)]]
            assert first is not None
            result = (first[0], True)
        stored_results.append(result)
    return stored_results


def _insert_skipping_stored_keys(
    indexed: list[tuple[int, Event]],
) -> list[tuple[int, Event | None]]:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING: (index, event) for each row inserted,
    (index, None) for each whose key was already stored.

    One event is one statement, its values bound (the request's whole cost, beside the round
    trip). A batch goes through COPY into a staging table and one INSERT ... SELECT: a
    thousand rows of bound values made a statement of 26,000 placeholders, whose splitting,
    quoting and parsing cost more than the rows' insert.

    The version is read by the statement itself, so an event runs under the version current
    when it was stored, whatever the caller's copy of the workflow says. PostgreSQL returns
    the inserted rows in the order they are inserted (the VALUES list, or the staging table's
    order; Django's bulk_create relies on it too).
    """
    if not indexed:
        return []  # an empty batch: nothing to insert (and VALUES may not be empty)
    try:
        with connection.cursor() as cursor:
            if len(indexed) > 1 and connection.in_atomic_block:
                _stage(cursor, [event for _, event in indexed])
                cursor.execute(_INSERT_STAGED_SQL, [indexed[0][1].workflow_id])
            else:
                _insert_values(cursor, [event for _, event in indexed])
            rows = cursor.fetchall()
    except IntegrityError as exc:
        # version_id NOT NULL: the workflow has no current version to run events under.
        if getattr(getattr(exc.__cause__, "diag", None), "column_name", None) == "version_id":
            raise UnknownWorkflow(indexed[0][1].workflow_id) from None
        raise
    returned = iter(rows)
    row = next(returned, None)
    out: list[tuple[int, Event | None]] = []
    for index, event in indexed:
        # Keys in one statement are distinct and a keyless row is always inserted, so the
        # next returned row is this event's exactly when their keys match.
        if row is not None and row[1] == event.idempotency_key:
            event.pk, event.version_id = row[0], row[2]
            event._state.adding = False
            out.append((index, event))
            row = next(returned, None)
        else:
            out.append((index, None))
    return out


def _insert_values(cursor: Any, events: list[Event]) -> None:
    params: list[Any] = []
    for event in events:
        for field in _INSERT_FIELDS:
            params.append(field.get_db_prep_save(field.pre_save(event, True), connection))
        params.append(event.workflow_id)
    rows_sql = ", ".join([_ROW_SQL] * len(events))
    cursor.execute(f"{_INSERT_SQL} {rows_sql} {_ON_CONFLICT_SQL}", params)


def _stage(cursor: Any, events: list[Event]) -> None:
    """The events into this session's staging table, emptied first (in a transaction that
    has not committed, as a test's, it may still hold the last batch)."""
    cursor.execute(_STAGE_CREATE_SQL)
    cursor.execute(f"TRUNCATE {_STAGE}")
    with cursor.copy(_STAGE_COPY_SQL) as copy:
        for order, event in enumerate(events):
            copy.write_row((order, *_copy_values(event)))


def _copy_values(event: Event) -> list[Any]:
    """An event's row as COPY takes it: what Django would bind, without its per-field calls."""
    for field in _AUTO_NOW_FIELDS:
        setattr(event, field.attname, field.pre_save(event, True))
    values = []
    for name in _INSERT_ATTNAMES:
        value = getattr(event, name)
        if name in _JSON_ATTNAMES:
            value = None if value is None else Jsonb(value)
        elif isinstance(value, enum.Enum):
            value = value.value
        values.append(value)
    return values


_INSERT_FIELDS = [
    field
    for field in Event._meta.concrete_fields
    if not field.primary_key and field.attname != "version_id"
]
_INSERT_ATTNAMES = [field.attname for field in _INSERT_FIELDS]
_JSON_ATTNAMES = {field.attname for field in _INSERT_FIELDS if isinstance(field, JSONField)}
_AUTO_NOW_FIELDS = [field for field in _INSERT_FIELDS if getattr(field, "auto_now", False)]
_COLUMNS = ", ".join(field.column for field in _INSERT_FIELDS)
# Names come from the models, every value is bound.
_INSERT_SQL = f"INSERT INTO {Event._meta.db_table} ({_COLUMNS}, version_id) VALUES"  # noqa: S608
_ROW_SQL = (
    f"({', '.join(['%s'] * len(_INSERT_FIELDS))}, "  # noqa: S608
    f"(SELECT current_version_id FROM {Workflow._meta.db_table} WHERE id = %s))"
)
_RETURNING_SQL = "RETURNING id, idempotency_key, version_id"
_ON_CONFLICT_SQL = f"ON CONFLICT DO NOTHING {_RETURNING_SQL}"
# The staging table of a batch: the event's columns and the row's place in the batch, this
# session's own, emptied at every commit.
_STAGE = "handoff_ingest_stage"
_STAGE_CREATE_SQL = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} ON COMMIT DELETE ROWS AS "  # noqa: S608
    f"SELECT 0 AS ord, {_COLUMNS} FROM {Event._meta.db_table} WITH NO DATA"
)
_STAGE_COPY_SQL = f"COPY {_STAGE} (ord, {_COLUMNS}) FROM STDIN"
_INSERT_STAGED_SQL = (
    f"INSERT INTO {Event._meta.db_table} ({_COLUMNS}, version_id) "  # noqa: S608
    f"SELECT {', '.join('s.' + field.column for field in _INSERT_FIELDS)}, w.current_version_id "
    f"FROM {_STAGE} AS s LEFT JOIN {Workflow._meta.db_table} AS w ON w.id = %s "
    f"ORDER BY s.ord {_ON_CONFLICT_SQL}"
)


def _new_event(
    workflow: Workflow,
    item: IncomingEvent,
    digest: str,
    headers: dict[str, str],
    source: str,
    now: Any,
) -> Event:
    kept = dict(headers)
    if item.raw_body_hash:
        kept[BODY_HASH_HEADER] = item.raw_body_hash
    return Event(
        workflow=workflow,
        # No version_id: the INSERT reads the workflow's current one (see above).
        payload=item.payload,
        payload_hash=digest,
        source=source,
        headers=kept,
        idempotency_key=item.idempotency_key,
        received_at=now,
        state=EventState.RECEIVED,
        step=Step.VALIDATE,
        next_attempt_at=now,
    )
