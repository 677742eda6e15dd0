"""How cases and events read on the queue, case and event pages: words and rows, no queries.

The selectors fetch; these shape what they fetched so a template only places it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from exceptions.models import ExceptionCase
from exceptions.selectors import CaseGroup, EventRecords
from workflows.rules import compiled_version
from workflows.services.engine import FieldProblem, validation_problems

PAYLOAD_LINE_LIMIT = 3000


def short_duration(delta: timedelta) -> str:
    """A duration as an operator scans it: "3h 12m", "2d 4h", "<1m"."""
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h" if hours and days < 10 else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m"
    return "<1m"


def sla_wording(case: ExceptionCase, now: datetime) -> tuple[str, str]:
    """(state, words): ("breached", "breached 2h ago"), ("due", "ack in 12m") or ("", "")."""
    state, due = case.sla_state(now), case.sla_due_at
    if due is None:  # then sla_state is "" too: no clock runs
        return "", ""
    if state == "breached":
        return state, f"breached {short_duration(now - due)} ago"
    if state == "due":
        clock = "ack" if case.acknowledged_at is None and case.acknowledge_due_at else "resolve"
        return state, f"{clock} in {short_duration(due - now)}"
    return "", ""


@dataclass(frozen=True)
class QueueRow:
    """One line of the queue, worked out once here so the template only places it."""

    pk: int
    version: int
    url: str
    age: str
    opened_at: datetime
    sla_state: str
    sla_text: str
    sla_due_at: datetime | None
    workflow: str
    reason: str
    team: str
    person: str
    detail: str
    state: str
    state_label: str
    is_open: bool
    fingerprint: str
    group_size: int
    is_group: bool = False
    group_size_is_floor: bool = False  # the group has at least group_size cases

    # Times in the row's markup, formatted here: the date filter costs more than the rest of
    # the row. In the display time zone (TIME_ZONE), as every page shows times.
    @property
    def opened_iso(self) -> str:
        return self.opened_at.isoformat()

    @property
    def opened_text(self) -> str:
        return f"{timezone.localtime(self.opened_at):%Y-%m-%d %H:%M}"

    @property
    def due_text(self) -> str:
        return f"{timezone.localtime(self.sla_due_at):%Y-%m-%d %H:%M}" if self.sla_due_at else ""


def queue_rows(
    cases: list[ExceptionCase], *, now: datetime, sizes: dict[str, int] | None = None
) -> list[QueueRow]:
    """Rows for the queue template."""
    url = reverse("case", args=[0]).removesuffix("0/")
    rows = []
    for case in cases:
        sla_state, sla_text = sla_wording(case, now)
        rows.append(
            QueueRow(
                pk=case.pk,
                version=case.version,
                url=f"{url}{case.pk}/",
                age=short_duration(now - case.opened_at),
                opened_at=case.opened_at,
                sla_state=sla_state,
                sla_text=sla_text,
                sla_due_at=case.sla_due_at,
                workflow=case.workflow.name,
                reason=case.reason.label,
                team=case.owner_team.slug if case.owner_team is not None else "",
                person=case.owner_user.get_username() if case.owner_user is not None else "",
                detail=case.detail,
                state=case.state,
                state_label=case.get_state_display(),
                is_open=case.is_open,
                fingerprint=case.fingerprint,
                group_size=(sizes or {}).get(case.fingerprint, 1),
            )
        )
    return rows


def group_rows(groups: list[CaseGroup], *, now: datetime) -> list[QueueRow]:
    """One row per group: its first case's words, with the group's oldest age and worst SLA."""
    rows = []
    for group, row in zip(groups, queue_rows([g.head for g in groups], now=now), strict=True):
        sla_state, sla_text = "", ""
        if group.due is not None:
            late = now > group.due
            sla_state = "breached" if late else "due"
            sla_text = (
                f"breached {short_duration(now - group.due)} ago"
                if late
                else f"next due in {short_duration(group.due - now)}"
            )
        rows.append(
            dataclasses.replace(
                row,
                age=short_duration(now - group.oldest),
                opened_at=group.oldest,
                sla_state=sla_state,
                sla_text=sla_text,
                sla_due_at=group.due,
                group_size=group.size,
                group_size_is_floor=group.size_is_floor,
                is_group=True,
            )
        )
    return rows


# --- an event's story ---------------------------------------------------------------------------


@dataclass(frozen=True)
class JsonLine:
    depth: int
    key: str  # JSON-encoded key with its colon, or ""
    text: str  # a JSON scalar, or an opening or closing bracket
    comma: bool
    path: str
    mark: str  # "" | "bad" (the failing field) | "near" (holds a missing field) | "read"


def payload_lines(
    payload: Any, *, bad: set[str], near: set[str], read: set[str]
) -> tuple[list[JsonLine], bool]:
    """The payload as pretty JSON lines, each knowing its dotted path, so the page can mark the
    failing field without building HTML here. (lines, truncated)."""
    lines: list[JsonLine] = []

    def mark(path: str) -> str:
        if path in bad:
            return "bad"
        if path in near:
            return "near"
        return "read" if path in read else ""

    def walk(value: Any, depth: int, key: str, path: str, comma: bool) -> None:
        if len(lines) >= PAYLOAD_LINE_LIMIT:
            return
        label = f"{json.dumps(key, ensure_ascii=False)}: " if key else ""
        if isinstance(value, dict) and value:
            lines.append(JsonLine(depth, label, "{", False, path, mark(path)))
            items = list(value.items())
            for i, (child_key, child) in enumerate(items):
                child_path = f"{path}.{child_key}" if path else str(child_key)
                walk(child, depth + 1, str(child_key), child_path, i < len(items) - 1)
            lines.append(JsonLine(depth, "", "}", comma, path, mark(path)))
        elif isinstance(value, list) and value:
            lines.append(JsonLine(depth, label, "[", False, path, mark(path)))
            for i, child in enumerate(value):
                walk(child, depth + 1, "", f"{path}.{i}" if path else str(i), i < len(value) - 1)
            lines.append(JsonLine(depth, "", "]", comma, path, mark(path)))
        else:
            text = json.dumps(value, ensure_ascii=False)
            lines.append(JsonLine(depth, label, text, comma, path, mark(path)))

    walk(payload, 0, "", "", False)
    return lines, len(lines) >= PAYLOAD_LINE_LIMIT


@dataclass
class Story(EventRecords):
    """An event's records, with the payload marked where the version finds fault with it."""

    problems: list[FieldProblem] = dataclasses.field(default_factory=list)
    lines: list[JsonLine] = dataclasses.field(default_factory=list)
    lines_truncated: bool = False
    route_decision: Any = None
    owner_change: AuditEntry | None = None
    # The attempt the destination accepted, if any: a replay would send the event again.
    delivered: Any = None


def event_story(records: EventRecords) -> Story:
    event = records.event
    problems = _problems(event)
    bad = {p.path for p in problems if p.problem != "missing"}
    # A missing field cannot be marked where it is not: mark the object that should hold it.
    near = {p.path.rpartition(".")[0] for p in problems if p.problem == "missing"} - {""}
    read = set()
    for decision in records.decisions:
        if not decision.ok and isinstance(decision.inputs, dict):
            read |= {
                k.removeprefix("payload.") for k in decision.inputs if k.startswith("payload.")
            }
    lines, truncated = payload_lines(event.payload, bad=bad, near=near, read=read)
    return Story(
        **vars(records),
        problems=problems,
        lines=lines,
        lines_truncated=truncated,
        route_decision=next((d for d in reversed(records.decisions) if d.step == "route"), None),
        owner_change=next(
            (e for e in reversed(records.audit) if e.action in ("case.assign", "case.claim")),
            None,
        ),
        delivered=next(
            (a for a in records.attempts if a.status == "succeeded" and not a.superseded), None
        ),
    )


def _problems(event: Any) -> list[FieldProblem]:
    try:
        compiled = compiled_version(event.version)
    except Exception:
        # A version the engine cannot compile (its processing_error case says so) still shows.
        return []
    return validation_problems(compiled, event.payload)
