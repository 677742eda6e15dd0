"""Every write to the audit trail: recording entries and sealing them into the chain."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, TypedDict, Unpack, cast

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from audit.actors import SYSTEM, Actor, actor_for_user
from audit.chain import GENESIS_HASH, entry_hash
from audit.context import current_approval_id, current_request_id
from audit.head import HeadInvalid, HeadMismatch, current_head, head_advance, head_file
from audit.models import AuditEntry, ChainCheck
from audit.verification import verify_chain, verify_head

logger = logging.getLogger(__name__)

# pg_try_advisory_xact_lock key: "one sealer at a time" across every process.
SEAL_LOCK_KEY = 0x48414E44  # "HAND"


class AuditOutsideTransaction(RuntimeError):
    """audit_record was called outside the transaction of the change it records."""


def _as_json(value: Any) -> Any:
    # Stored exactly as it will be read back and hashed: dates, decimals and ids become text.
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


class EntryFields(TypedDict, total=False):
    """What an entry says beyond its actor and action (audit_record's keywords)."""

    target: Any
    object_type: str
    object_id: str | int
    before: Any
    after: Any
    reason: str
    approval_id: int | None
    request_id: str | None
    workflow: str | None


def audit_record(*, actor: Any, action: str, **fields: Unpack[EntryFields]) -> AuditEntry:
    """Append one entry; call it inside the transaction of the change it records.

    actor is a user, an audit.actors.Actor (an API token, the system), or None for the system.
    target, when given, names the object (its model label and primary key) and, unless
    `workflow` says otherwise, the workflow it belongs to. The request id and the approval being
    carried out come from audit.context unless given.
    """
    _require_transaction(action)
    entry = _entry(_resolve(actor, timezone.now()), action=action, **fields)
    entry.save(force_insert=True)
    return entry


def audit_record_many(
    *, actor: Any, action: str, entries: list[EntryFields], approval_id: int | None = None
) -> list[AuditEntry]:
    """audit_record of one actor's same action on many objects, in one INSERT: each dict holds
    the target (or object_type and object_id), before, after and reason of one entry. The
    actor's roles and memberships are read once, for all of them."""
    _require_transaction(action)
    resolved = _resolve(actor, timezone.now())
    built = []
    for fields in entries:
        fields.setdefault("approval_id", approval_id)
        built.append(_entry(resolved, action=action, **fields))
    return AuditEntry.objects.bulk_create(built)


def _require_transaction(action: str) -> None:
    if not connection.in_atomic_block:
        raise AuditOutsideTransaction(
            f"audit_record({action!r}) must run inside the transaction of the change it records"
        )


def _resolve(actor: Any, now: Any) -> Actor:
    if actor is None:
        return SYSTEM
    if isinstance(actor, Actor):
        return actor
    return actor_for_user(actor, now)


def _entry(actor: Actor, *, action: str, **fields: Unpack[EntryFields]) -> AuditEntry:
    target = fields.get("target")
    object_type, object_id = fields.get("object_type", ""), fields.get("object_id", "")
    workflow, request_id = fields.get("workflow"), fields.get("request_id")
    approval_id = fields.get("approval_id")
    if target is not None:
        object_type = object_type or target._meta.label_lower
        object_id = object_id or target.pk
    if workflow is None:
        workflow = _workflow_of(target)
    return AuditEntry(
        created_at=timezone.now(),
        actor_id=actor.user_id,
        actor_kind=actor.kind,
        actor_label=actor.label,
        actor_roles=list(actor.roles),
        actor_memberships=_as_json(list(actor.memberships)),
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        before=_as_json(fields.get("before")),
        after=_as_json(fields.get("after")),
        reason=fields.get("reason", ""),
        request_id=request_id if request_id is not None else current_request_id.get(),
        approval_id=approval_id if approval_id is not None else current_approval_id.get(),
        workflow=workflow,
    )


def _workflow_of(target: Any) -> str:
    """The slug of the workflow a target belongs to: a workflow's own, or its `workflow`'s.

    Read by shape, not by import: audit depends on nothing of ours.
    """
    if target is None:
        return ""
    if target._meta.label_lower == "workflows.workflow":
        return str(target.slug)
    related = getattr(target, "workflow", None)
    return str(getattr(related, "slug", "") or "")


@transaction.atomic
def audit_seal(*, batch_size: int | None = None) -> int:
    """Chain the next batch of unsealed entries; returns how many were sealed.

    Writers never wait on this: they only insert. One sealer at a time holds an advisory lock
    (a second one returns 0 at once). Entries are taken by "not yet sealed", never by an id
    watermark, so an entry whose transaction commits late with a low id is sealed in a later
    batch instead of being skipped.
    """
    batch_size = batch_size or settings.AUDIT_SEAL_BATCH_SIZE
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SEAL_LOCK_KEY])
        (locked,) = cursor.fetchone()
    if not locked:
        return 0
    pending = list(AuditEntry.objects.filter(seq__isnull=True).order_by("id")[:batch_size])
    if not pending:
        return 0
    last = AuditEntry.objects.filter(seq__isnull=False).order_by("-seq").only("seq", "hash").first()
    # last was filtered on a sealed seq: it is never None there.
    seq, prev_hash = (cast(int, last.seq), last.hash) if last else (0, GENESIS_HASH)
    sealed_at = timezone.now()
    for entry in pending:
        seq += 1
        entry.seq = seq
        entry.prev_hash = prev_hash
        entry.hash = entry_hash(prev_hash, entry)
        entry.sealed_at = sealed_at
        prev_hash = entry.hash
    _seal_write(pending, sealed_at)
    transaction.on_commit(audit_head_keep, robust=True)
    return len(pending)


def audit_head_keep() -> None:
    """Move the head kept outside the table (AUDIT_HEAD_FILE) to the newest sealed entry.

    A recorded head the table no longer holds is left as it is, and said loudly: the periodic
    check raises the alarm, and the file keeps the evidence.
    """
    path, head = head_file(), current_head()
    if path is None or head is None:
        return
    try:
        head_advance(path, head)
    except (HeadInvalid, HeadMismatch) as exc:
        logger.error("audit chain head not moved on: %s", exc)


def _seal_write(entries: list[AuditEntry], sealed_at: Any) -> None:
    """One UPDATE ... FROM (VALUES ...) for the batch. bulk_update's CASE per column made
    PostgreSQL test every row against every id of the batch: about 100 entries a second."""
    rows = ", ".join(["(%s::bigint, %s::bigint, %s, %s)"] * len(entries))
    params: list[Any] = []
    for entry in entries:
        params += [entry.pk, entry.seq, entry.prev_hash, entry.hash]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditentry AS e SET seq = v.seq, prev_hash = v.prev_hash, "  # noqa: S608
            f"hash = v.hash, sealed_at = %s FROM (VALUES {rows}) AS v(id, seq, prev_hash, hash) "
            "WHERE e.id = v.id",
            [sealed_at, *params],
        )


def audit_seal_pending(*, max_batches: int = 100) -> int:
    """Seal until nothing is left (or max_batches batches), each batch its own transaction."""
    total = 0
    for _ in range(max_batches):
        sealed = audit_seal()
        if sealed == 0:
            break
        total += sealed
    return total


def audit_chain_check(*, head_path: Path | None = None) -> ChainCheck:
    """Verify the whole chain, and the head kept outside it; record what was found.

    head_path defaults to AUDIT_HEAD_FILE. The check is a log row, not an audit entry: the
    machine checking itself changes no state anyone acted on.
    """
    path = head_path if head_path is not None else head_file()
    report = verify_chain()
    problem = report.problem
    if problem:
        problem = f"{report.location}: {problem}"
    elif path is not None:
        problem = verify_head(path)
    head = current_head()
    return ChainCheck.objects.create(
        checked_at=timezone.now(),
        ok=not problem,
        entries=report.checked,
        head_seq=head.seq if head else None,
        head_hash=head.hash if head else "",
        head_checked=path is not None,
        broken_seq=report.broken_seq,
        problem=problem,
    )


@transaction.atomic
def audit_export_record(*, actor: Any, digest: dict[str, Any], complete: bool = True) -> AuditEntry:
    """The entry an export leaves: what was asked for, how many rows went out, their digest.

    An export cut off before its end (the client went away) is recorded too, as incomplete:
    part of the trail still left the building. The head file moves on with every export.
    """
    transaction.on_commit(audit_head_keep, robust=True)
    return audit_record(
        actor=actor,
        action="audit.export",
        object_type=AuditEntry._meta.label_lower,
        after={**digest, "complete": complete},
    )
