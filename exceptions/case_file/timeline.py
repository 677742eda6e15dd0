"""The case file's story in one chronological list, in words a reviewer who was not there reads.

Made from the document's own sections, so it says nothing the sections do not hold.
"""

from __future__ import annotations

from typing import Any

from exceptions.models import Resolution
from workflows.models import AttemptStatus, AttemptTrigger, OutcomeSource, Step
from workflows.services.engine.wording import evidence_summary

# Among things that happened in the same microsecond, the order they happen in.
_RANK = {
    "received": 0,
    "decision": 1,
    "case_opened": 2,
    "attempt": 3,
    "outcome": 4,
    "entry": 5,
    "gap": 6,
}
# What a person did to a case, as the sentence after their name says it.
_CASE_VERBS = {
    "acknowledge": "acknowledged",
    "assign": "assigned",
    "claim": "claimed",
    "comment": "commented on",
    "dismiss": "dismissed",
    "reclassify": "re-classified",
    "record_outcome": "recorded the outcome by hand on",
    "replay": "replayed the event from",
    "retry": "ran the event again from",
    "snooze": "snoozed",
    "wake": "woke",
}
_APPROVAL_TYPE = "approval_request"
_APPROVAL_VERBS = {
    "approval.request": "asked for a second person's approval:",
    "approval.edit": "edited approval",
    "approval.approve": "approved",
    "approval.reject": "rejected",
    "approval.execute": "ran the approved",
    "approval.refuse": "was refused approval of",
    "approval.expire": "expired approval",
}
_SECTIONS = (
    ("decisions", "record", "created_at", "decisions"),
    ("attempts", "record", "started_at", "delivery attempts"),
    ("outcomes", "record", "observed_at", "outcomes"),
    ("cases", None, "opened_at", "exception cases"),
    ("audit_entries", "fields", "created_at", "audit entries"),
)


def _label(choices: Any, value: str) -> str:
    return str(dict(choices.choices).get(value, value))


def _item(at: str, kind: str, event: int | None, ref: tuple[str, int], summary: str, **more: Any):
    return {
        "at": at,
        "kind": kind,
        "event": event,
        "ref": {"section": ref[0], "id": ref[1]},
        "summary": summary,
        "actor": more.get("actor"),
        "roles": more.get("roles"),
    }


def _received(event: dict[str, Any]) -> str:
    version = event["version"]["number"]
    if event["replay_of"]:
        edited = event["headers"].get("x-handoff-payload-edited") == "true"
        by = event["headers"].get("x-handoff-replay-by", "")
        return (
            f"Event {event['id']} made as a replay of event {event['replay_of']}"
            f"{' by ' + by if by else ''}, under version {version}"
            f"{', with an edited payload' if edited else ''}"
        )
    return (
        f"Event {event['id']} received from {event['source']} under version {version}; "
        f"payload SHA-256 {event['payload_hash'][:16]}…"
    )


def _attempt(record: dict[str, Any]) -> str:
    by = f" by {record['actor']}" if record["actor"] != "system" else ""
    words = [
        f"Delivery attempt {record['number']} ({_label(AttemptTrigger, record['trigger']).lower()}"
        f"{by}): {_label(AttemptStatus, record['status']).lower()}"
    ]
    error = record["error_class"]
    if record["http_status"] and not error.startswith("HTTP"):
        words.append(f"HTTP {record['http_status']}")
    if error:
        words.append(f"{error}: {record['error_message']}".rstrip(": "))
    words.append(f"{record['duration_ms']} ms")
    return ", ".join(words)


def _outcome(record: dict[str, Any]) -> str:
    source = _label(OutcomeSource, record["source"]).lower()
    by = f", reported by {record['reported_by']}" if record["reported_by"] else ""
    return (
        f"Outcome {record['status']} ({source}{by}); evidence: "
        f"{evidence_summary(record['evidence'])}"
    )


def entry_words(fields: dict[str, Any]) -> str:
    """What an audit entry says happened, as a sentence after the actor's name."""
    action, object_id = fields["action"], fields["object_id"]
    after = fields["after"] if isinstance(fields["after"], dict) else {}
    code = after.get("resolution_code")
    if action == "case.resolve" and code == Resolution.APPROVED:
        words = f"approved the review on case {object_id}: the action may run"
    elif action == "case.resolve" and code == Resolution.REJECTED:
        words = f"rejected the review on case {object_id}: the action never runs"
    elif action == "case.resolve":
        words = f"resolved case {object_id} as {code}"
    elif fields["object_type"] == _APPROVAL_TYPE:
        kind = after.get("kind") or ""
        words = _APPROVAL_VERBS.get(action, action) + f" request #{object_id}"
        words += f" ({kind.replace('_', ' ')})" if action == "approval.request" and kind else ""
    elif action == "event.replay":
        words = f"replayed event {object_id} as event {after.get('replay_id')}"
    elif action == "event.retry":
        words = f"ran event {object_id} again from step {after.get('step')}"
    elif action.startswith("case."):
        verb = action.removeprefix("case.")
        words = f"{_CASE_VERBS.get(verb, verb.replace('_', ' ') + ' on')} case {object_id}"
    else:
        kind = fields["object_type"].rpartition(".")[2] or "—"
        words = f"{action} on {kind} {object_id}".rstrip()
    reason = fields["reason"]
    return f"{words} (“{reason}”)" if reason else words


def file_timeline(body: dict[str, Any]) -> list[dict[str, Any]]:
    items = [
        _item(e["received_at"], "received", e["id"], ("events", e["id"]), _received(e))
        for e in body["events"]
    ]
    for d in body["decisions"]["items"]:
        r = d["record"]
        summary = f"{_label(Step, r['step'])}: {r['explanation']}"
        items.append(
            _item(r["created_at"], "decision", r["event"], ("decisions", r["id"]), summary)
        )
    for a in body["attempts"]["items"]:
        r = a["record"]
        items.append(
            _item(
                r["started_at"],
                "attempt",
                r["event"],
                ("attempts", r["id"]),
                _attempt(r),
                actor=r["actor"],
            )
        )
    for o in body["outcomes"]["items"]:
        r = o["record"]
        items.append(
            _item(r["observed_at"], "outcome", r["event"], ("outcomes", r["id"]), _outcome(r))
        )
    for c in body["cases"]["items"]:
        summary = f"Case {c['id']} opened: {c['reason_label']}. {c['detail']}"
        items.append(_item(c["opened_at"], "case_opened", c["event"], ("cases", c["id"]), summary))
    case_events = {c["id"]: c["event"] for c in body["cases"]["items"]}
    for e in body["audit_entries"]["items"]:
        f = e["fields"]
        event = None
        if f["object_type"] == "workflows.event":
            event = int(f["object_id"])
        elif f["object_type"] == "exceptions.exceptioncase" and f["object_id"].isdigit():
            event = case_events.get(int(f["object_id"]))
        elif f["object_type"] == _APPROVAL_TYPE and isinstance(f["after"], dict):
            event = f["after"].get("event") or case_events.get(f["after"].get("case"))
        items.append(
            _item(
                f["created_at"],
                "entry",
                event,
                ("audit_entries", f["id"]),
                f"{f['actor_label']} {entry_words(f)}",
                actor=f["actor_label"],
                roles=f["actor_roles"],
            )
        )
    items.extend(_gaps(body))
    items.sort(key=lambda i: (i["at"], _RANK[i["kind"]], i["ref"]["id"]))
    return items


def _gaps(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Where a long section was cut, a line saying how much is left out there."""
    gaps = []
    for name, inner, at_field, words in _SECTIONS:
        section = body[name]
        if not section["omitted"]:
            continue
        last_kept = section["items"][section["omitted_after"] - 1]
        row = last_kept[inner] if inner else last_kept
        gaps.append(
            _item(
                row[at_field],
                "gap",
                None,
                (name, 0),
                f"{section['omitted']} more {words} left out here: the file keeps the first "
                f"and last {section['omitted_after']} of {section['total']}",
            )
        )
    return gaps
