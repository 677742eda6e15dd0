"""The case file as one JSON document: the shape docs/case-file.md describes.

The HTML page renders this same document, so the two cannot disagree. Every value is plain
JSON (times are ISO 8601 text), so body_sha256 is the SHA-256 of exactly what a reader gets.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from audit.actors import actor_for_user
from audit.canonical import canonical_hash
from audit.chain import entry_document, entry_hash
from audit.head import current_head
from audit.models import AuditEntry
from exceptions.approvals.models import ApprovalRequest
from exceptions.case_file.owners import file_owners, moment
from exceptions.case_file.people import file_approvals, file_people
from exceptions.case_file.records import CaseFileRecords, Section
from exceptions.case_file.timeline import file_timeline
from exceptions.models import ExceptionCase
from workflows.models import Attempt, Decision, Event, Outcome

FORMAT = "handoff.case-file/1"


def section_document(section: Section[Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    """A section's items, with how many rows there are and which were left out."""
    return {
        "total": section.total,
        "omitted": section.omitted,
        # The rows left out come after this many items (null: none were).
        "omitted_after": section.gap_at if section.omitted else None,
        "items": items,
    }


def recorded(record: dict[str, Any], **derived: Any) -> dict[str, Any]:
    """An append-only row as the file keeps it: its fields, their hash, then what is derived."""
    return {"record": record, "record_sha256": canonical_hash(record), **derived}


def event_document(event: Event, subject: Event, version_hash: str) -> dict[str, Any]:
    if event.pk == subject.pk:
        relation = "subject"
    elif event.received_at <= subject.received_at:
        relation = "earlier"
    else:
        relation = "later"
    return {
        "id": event.pk,
        "relation": relation,
        "replay_of": event.replay_of_id,
        "workflow": event.workflow.slug,
        "version": {"number": event.version.number, "content_hash": version_hash},
        "received_at": moment(event.received_at),
        "source": event.source,
        "idempotency_key": event.idempotency_key,
        "headers": event.headers,
        "payload": event.payload,
        "payload_hash": event.payload_hash,
        "payload_hash_matches": canonical_hash(event.payload) == event.payload_hash,
        "context": event.context,
        "state": event.state,
        "completed_at": moment(event.completed_at),
    }


def decision_document(
    decision: Decision, version_hash: str, owner: dict[str, Any] | None
) -> dict[str, Any]:
    return recorded(
        {
            "id": decision.pk,
            "event": decision.event_id,
            "step": decision.step,
            "rule": decision.rule,
            "version": decision.version_number,
            "inputs": decision.inputs,
            "result": decision.result,
            "ok": decision.ok,
            "explanation": decision.explanation,
            "created_at": moment(decision.created_at),
        },
        version_hash=version_hash,
        owner_then=owner,
    )


def attempt_document(attempt: Attempt) -> dict[str, Any]:
    return recorded(
        {
            "id": attempt.pk,
            "event": attempt.event_id,
            "number": attempt.number,
            "trigger": attempt.trigger,
            "actor": attempt.actor_label,
            "started_at": moment(attempt.started_at),
            "finished_at": moment(attempt.finished_at),
            "status": attempt.status,
            "http_status": attempt.http_status,
            "error_class": attempt.error_class,
            "error_message": attempt.error_message,
            "duration_ms": attempt.duration_ms,
            "superseded": attempt.superseded,
        }
    )


def outcome_document(outcome: Outcome) -> dict[str, Any]:
    return recorded(
        {
            "id": outcome.pk,
            "event": outcome.event_id,
            "status": outcome.status,
            "source": outcome.source,
            "evidence": outcome.evidence,
            "reported_by": outcome.reported_by,
            "observed_at": moment(outcome.observed_at),
        }
    )


def case_document(case: ExceptionCase) -> dict[str, Any]:
    return {
        "id": case.pk,
        "event": case.event_id,
        "reason": case.reason_id,
        "reason_label": case.reason.label,
        "step": case.step,
        "detail": case.detail,
        "state": case.state,
        "opened_at": moment(case.opened_at),
        "acknowledge_due_at": moment(case.acknowledge_due_at),
        "resolve_due_at": moment(case.resolve_due_at),
        "acknowledged_at": moment(case.acknowledged_at),
        "resolved_at": moment(case.resolved_at),
        "resolution_code": case.resolution_code,
        "resolution_note": case.resolution_note,
        "closed_by": case.closed_by.get_username() if case.closed_by else None,
    }


def approval_request_document(
    approval: ApprovalRequest, entries: list[AuditEntry]
) -> dict[str, Any]:
    """A four-eyes request: what was asked, by whom, what it was bound to, who decided it under
    which roles (kept as they were), what running it did, and its entries on the trail."""
    return {
        "id": approval.pk,
        "kind": approval.kind,
        "kind_label": approval.get_kind_display(),
        "state": approval.state,
        "event": approval.event_id,
        "case": approval.case_id,
        "requested_by": approval.requested_by.get_username(),
        "requested_at": moment(approval.requested_at),
        "reason": approval.reason,
        "required_role": approval.required_role,
        "payload_hash": approval.payload_hash,
        "workflow_version": (
            approval.workflow_version.number if approval.workflow_version is not None else None
        ),
        "version": approval.version,
        "params": approval.params,
        "decided_by": approval.decided_by.get_username() if approval.decided_by else None,
        "decided_at": moment(approval.decided_at),
        "decider_roles": approval.decider_roles,
        "comment": approval.comment,
        "expires_at": moment(approval.expires_at),
        "result": approval.result,
        "entries": [e.pk for e in entries if e.approval_id == approval.pk],
    }


def entry_record(entry: AuditEntry) -> dict[str, Any]:
    """An audit entry: the fields its hash covers, and its seal (or that it is being sealed)."""
    sealed = entry.seq is not None
    return {
        "fields": entry_document(entry),
        "sealed": sealed,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
        "sealed_at": moment(entry.sealed_at),
        # sha256(prev_hash + canonical fields) == hash, checked as the file was made.
        "hash_matches": entry_hash(entry.prev_hash, entry) == entry.hash if sealed else None,
    }


def case_file_body(records: CaseFileRecords, *, now: datetime) -> dict[str, Any]:
    """What the case file says: everything but when, by whom and against which chain head."""
    subject = records.subject
    workflow_of = {e.pk: e.workflow_id for e in records.events}

    def version_hash(event_id: int, number: int) -> str:
        return records.version_hashes.get((workflow_of[event_id], number), "")

    owners = file_owners(records, now=now)
    body: dict[str, Any] = {
        "subject": {
            "event": subject.pk,
            "case": records.case.pk if records.case is not None else None,
            "workflow": subject.workflow.slug,
            "workflow_name": subject.workflow.name,
        },
        "family": {"events": [e.pk for e in records.events], "cut": records.family_cut},
        "events": [
            event_document(e, subject, version_hash(e.pk, e.version.number)) for e in records.events
        ],
        "decisions": section_document(
            records.decisions,
            [
                decision_document(
                    d, version_hash(d.event_id, d.version_number), owners.by_decision.get(d.pk)
                )
                for d in records.decisions.rows
            ],
        ),
        "attempts": section_document(
            records.attempts, [attempt_document(a) for a in records.attempts.rows]
        ),
        "outcomes": section_document(
            records.outcomes, [outcome_document(o) for o in records.outcomes.rows]
        ),
        "cases": section_document(records.cases, [case_document(c) for c in records.cases.rows]),
        "approval_requests": section_document(
            records.approvals,
            [approval_request_document(a, records.audit.rows) for a in records.approvals.rows],
        ),
        "audit_entries": section_document(
            records.audit, [entry_record(e) for e in records.audit.rows]
        ),
        "owners": owners.document,
    }
    body["people"] = file_people(records, now=now)
    body["approvals"] = file_approvals(records, body["people"])
    body["timeline"] = file_timeline(body)
    return body


def case_file_document(records: CaseFileRecords, *, actor: Any, now: datetime) -> dict[str, Any]:
    """The whole file: the body, its hash, and when, by whom and at which chain head."""
    body = case_file_body(records, now=now)
    who = actor_for_user(actor, now)
    head = current_head()
    return {
        "format": FORMAT,
        "generated_at": moment(now),
        "generated_by": {"username": who.label, "roles": who.roles},
        "chain_head": head.document() if head is not None else None,
        "body_sha256": canonical_hash(body),
        "body": body,
    }
