"""Who owned the events and cases of a case file: at each decision, when each case opened, after
each change, and today.

Answered by the owner selectors (workflows.ownership, exceptions.ownership) from history alone.
Every team is read once with its memberships over the whole period, so the owner beside each of
thousands of decisions costs no query of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from exceptions.case_file.records import CASE_OWNER_LIMIT, CASE_TYPE, CaseFileRecords
from exceptions.ownership import case_owner_at
from workflows.models import Decision, Event
from workflows.owners import owner_ref, owner_username
from workflows.ownership import (
    OwnerAt,
    TeamHistory,
    TeamThen,
    route_owner_at,
    team_histories,
    team_then,
    workflow_owner_at,
)


def moment(value: datetime | None) -> str | None:
    """A time as the case file writes it: ISO 8601 in UTC, to the microsecond (so that, as
    text, times sort in the order they happened)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def team_document(team: TeamThen | None) -> dict[str, Any] | None:
    if team is None:
        return None
    return {
        "slug": team.slug,
        "name": team.name,
        "exists": team.exists,
        "active": team.active,
        "members": [
            {
                "username": m.username,
                "name": m.name,
                "role": m.role,
                "since": moment(m.since),
                "until": moment(m.until),
            }
            for m in team.members
        ],
    }


def owner_document(owner: OwnerAt, *, today: str | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "owner": owner.owner,
        "person": owner.person,
        "through": owner.through,
        "rule": {k: moment(v) if isinstance(v, datetime) else v for k, v in owner.rule.items()},
        "team": team_document(owner.team),
    }
    if today is not None:
        document["same_as_today"] = owner.owner == today
    return document


@dataclass
class FileOwners:
    """The owners part of a case file, and the owner beside each decision."""

    by_decision: dict[int, dict[str, Any]]
    document: dict[str, Any]


def _event_today(event: Event) -> str:
    return owner_ref(event.owner_user or event.owner_team)


def file_owners(records: CaseFileRecords, *, now: datetime) -> FileOwners:
    events = {e.pk: e for e in records.events}
    # Before its first route decision, an event belongs to its workflow's owner.
    unrouted = {
        pk: workflow_owner_at(workflow=e.workflow, at=e.received_at) for pk, e in events.items()
    }
    slugs = {o.team.slug for o in unrouted.values() if o.team is not None}
    for route in records.routes:
        chosen = str((route.result or {}).get("owner") or "") if route.ok else ""
        if chosen and owner_username(chosen) is None:
            slugs.add(chosen)
    slugs |= {e.owner_team.slug for e in events.values() if e.owner_team is not None}
    earliest = min(e.received_at for e in events.values())
    histories = team_histories(slugs, earliest=earliest, latest=now)

    def team_at(slug: str, at: datetime) -> TeamThen:
        history: TeamHistory | None = histories.get(slug)
        return history.at(at) if history is not None else team_then(slug, at)

    routes: dict[int, list[Decision]] = {}
    for route in records.routes:
        routes.setdefault(route.event_id, []).append(route)

    by_decision = {}
    for decision in records.decisions.rows:
        event = events[decision.event_id]
        then = _owner_at_decision(decision, event, routes.get(event.pk, []), unrouted, team_at)
        by_decision[decision.pk] = owner_document(then, today=_event_today(event))

    periods = []
    for pk, owner in unrouted.items():
        periods.append(
            {
                "event": pk,
                "from": moment(events[pk].received_at),
                "decision": None,
                **owner_document(owner),
            }
        )
    for route in records.routes:
        routed = route_owner_at(
            route, subject=f"event {route.event_id}", at=route.created_at, team_at=team_at
        )
        periods.append(
            {
                "event": route.event_id,
                "from": moment(route.created_at),
                "decision": route.pk,
                **owner_document(routed),
            }
        )
    periods.sort(key=lambda p: (p["from"], p["decision"] or 0))
    today = [
        {
            "event": pk,
            "owner": _event_today(event),
            "team": team_document(team_at(event.owner_team.slug, now))
            if event.owner_team
            else None,
        }
        for pk, event in events.items()
    ]
    return FileOwners(
        by_decision=by_decision,
        document={"events": periods, "today": today, "cases": _case_owners(records)},
    )


def _owner_at_decision(
    decision: Decision,
    event: Event,
    routes: list[Decision],
    unrouted: dict[int, OwnerAt],
    team_at: Any,
) -> OwnerAt:
    """The event's owner when `decision` was made: as its last route decision by then chose."""
    done = [r for r in routes if (r.created_at, r.pk) <= (decision.created_at, decision.pk)]
    if done:
        return route_owner_at(
            done[-1], subject=f"event {event.pk}", at=decision.created_at, team_at=team_at
        )
    before = unrouted[event.pk]
    team = team_at(before.team.slug, decision.created_at) if before.team is not None else None
    return OwnerAt(
        subject=f"event {event.pk}",
        at=decision.created_at,
        owner=before.owner,
        through=f"not routed yet: {before.through}",
        rule={"kind": "workflow", **before.rule},
        team=team,
    )


def _case_owners(records: CaseFileRecords) -> list[dict[str, Any]]:
    """Each case's owner when it opened, after every change that moved it, and today."""
    changes: dict[str, list[dict[str, Any]]] = {}
    for entry in records.audit.rows:
        if entry.object_type != CASE_TYPE:
            continue
        before, after = entry.before or {}, entry.after or {}
        if not isinstance(after, dict) or "owner_team" not in after:
            continue
        moved = not isinstance(before, dict) or any(
            before.get(k) != after.get(k) for k in ("owner_team", "owner_user")
        )
        if moved:
            changes.setdefault(entry.object_id, []).append(
                {
                    "entry": entry.pk,
                    "at": moment(entry.created_at),
                    "by": entry.actor_label,
                    "action": entry.action,
                    "owner_team": after.get("owner_team"),
                    "owner_user": after.get("owner_user"),
                    "reason": entry.reason,
                }
            )
    found = []
    for index, case in enumerate(records.cases.rows):
        opened = (
            owner_document(case_owner_at(case=case, at=case.opened_at))
            if index < CASE_OWNER_LIMIT
            else None
        )
        found.append(
            {
                "case": case.pk,
                "event": case.event_id,
                "opened": opened,
                "changes": changes.get(str(case.pk), []),
                "today": {
                    "owner_team": case.owner_team.slug if case.owner_team else None,
                    "owner_user": case.owner_user.get_username() if case.owner_user else None,
                },
            }
        )
    return found
