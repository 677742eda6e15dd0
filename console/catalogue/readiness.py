"""The readiness audit: each workflow scored against the operating controls, with the evidence.

Every control is computed from the workflow's current definition and its real history (the last
HISTORY_DAYS days; trends compare the last TREND_DAYS with the TREND_DAYS before). A control is
"pass", "warn" or "fail", and its evidence says what was found in words a reviewer can check.
History is read for all the workflows at once, so the page for all of them costs about what the
page for one does.
"""

# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from console.outcomes.metrics import OutcomeFigures
from console.outcomes.presenters import duration
from console.outcomes.rollup import outcome_figures
from console.outcomes.scope import Scope, midnight
from workflows.models import Workflow
from workflows.services.engine.route import OwnerDirectory

HISTORY_DAYS = 30
TREND_DAYS = 7
IDEMPOTENT_SHARE = 0.95  # of events carrying a key, to pass
REPLAYS_SUCCEEDING = 0.8  # of finished replays, to pass (below half fails)
REVIEW_WARN, REVIEW_FAIL = 0.10, 0.30  # shares of events that waited for a review
SLA_BREACH_WARN = 0.10  # share of cases whose clock was breached
WORSE = 1.2  # a trend 20% worse than the period before warns; twice as bad (and >5%) fails
STATUS_ORDER = {"pass": 0, "warn": 1, "fail": 2}

HISTORY_SQL = """
SELECT e.workflow_id,
    count(*),
    count(e.idempotency_key),
    count(*) FILTER (WHERE e.replay_of_id IS NOT NULL),
    count(*) FILTER (WHERE e.replay_of_id IS NOT NULL AND e.state = 'succeeded'),
    count(*) FILTER (WHERE e.replay_of_id IS NOT NULL
        AND e.state IN ('failed', 'needs_attention')),
    count(*) FILTER (WHERE e.state = 'failed')
FROM workflows_event e
WHERE e.received_at >= %(since)s
GROUP BY 1
"""

CASES_SQL = """
SELECT c.workflow_id,
    count(*) FILTER (WHERE c.state IN ('open', 'acknowledged', 'snoozed')),
    count(*) FILTER (WHERE c.state IN ('open', 'acknowledged', 'snoozed')
        AND c.owner_team_id IS NULL AND c.owner_user_id IS NULL),
    count(*) FILTER (WHERE c.opened_at >= %(since)s),
    count(*) FILTER (WHERE c.opened_at >= %(since)s AND c.reason_id = 'review_required'),
    count(*) FILTER (WHERE c.opened_at >= %(since)s AND (
        coalesce(c.acknowledged_at, c.resolved_at, %(now)s) > c.acknowledge_due_at
        OR coalesce(c.resolved_at, %(now)s) > c.resolve_due_at))
FROM exceptions_exceptioncase c
WHERE c.state IN ('open', 'acknowledged', 'snoozed') OR c.opened_at >= %(since)s
GROUP BY 1
"""


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    status: str  # "pass", "warn" or "fail"
    evidence: str


@dataclass
class Scorecard:
    workflow: Workflow
    controls: list[Control]
    computed_at: datetime

    @property
    def status(self) -> str:
        return max((c.status for c in self.controls), key=STATUS_ORDER.__getitem__, default="pass")

    def count(self, status: str) -> int:
        return sum(1 for c in self.controls if c.status == status)

    @property
    def passes(self) -> int:
        return self.count("pass")

    @property
    def warnings(self) -> int:
        return self.count("warn")

    @property
    def failures(self) -> int:
        return self.count("fail")


@dataclass
class History:
    """What the workflows did lately, read once for all of them."""

    now: datetime
    events: dict[int, tuple[int, ...]]
    cases: dict[int, tuple[int, ...]]
    recent: OutcomeFigures
    previous: OutcomeFigures
    owners: OwnerDirectory = field(default_factory=OwnerDirectory)


def _grouped(sql: str, params: dict[str, Any]) -> dict[int, tuple[int, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0]: tuple(row[1:]) for row in cursor.fetchall()}


def history_load(
    *, recent: OutcomeFigures | None = None, workflow: Workflow | None = None
) -> History:
    """The history every scorecard reads (of one workflow's, if given, or all of them).

    `recent` may be figures the page already has for the last TREND_DAYS days, by day.
    """
    now = timezone.now()
    today = timezone.localdate()
    end = midnight(today + timedelta(days=1))
    middle = end - timedelta(days=TREND_DAYS)
    if recent is None or recent.scope.start != middle or recent.scope.end != end:
        recent = outcome_figures(Scope(start=middle, end=end, unit="day", workflow=workflow))
    since = now - timedelta(days=HISTORY_DAYS)
    return History(
        now=now,
        events=_grouped(HISTORY_SQL, {"since": since}),
        cases=_grouped(CASES_SQL, {"since": since, "now": now}),
        recent=recent,
        previous=outcome_figures(
            Scope(start=middle - timedelta(days=TREND_DAYS), end=middle, unit="day")
        ),
    )


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "—"


# --- the controls -------------------------------------------------------------------------------

Check = Callable[[Workflow, dict[str, Any], History], tuple[str, str]]


def _trigger(workflow: Workflow, d: dict[str, Any], h: History) -> tuple[str, str]:
    events, keyed = h.events.get(workflow.pk, (0, 0))[:2]
    if not events:
        return (
            "warn",
            f"No event received in the last {HISTORY_DAYS} days: the trigger is unproven.",
        )
    words = (
        f"{keyed:,} of {events:,} events in the last {HISTORY_DAYS} days came with an "
        f"idempotency key ({_pct(keyed, events)}); a sender that retries with the same key is "
        "captured once."
    )
    if keyed >= IDEMPOTENT_SHARE * events:
        return "pass", words
    if keyed:
        return "warn", words + " The rest could be captured twice when their sender retries."
    return "fail", words + " None could be told apart from a retried duplicate."


def _required(workflow: Workflow, d: dict[str, Any], h: History) -> tuple[str, str]:
    fields = d.get("required_fields") or []
    if not fields:
        return "fail", "No required field: any payload is accepted, however incomplete."
    recent = h.recent.at(workflow.pk, None)
    failing = recent.by_reason.get("validation_failed", 0)
    paths = ", ".join(f["path"] for f in fields)
    return "pass", (
        f"{len(fields)} required field{'s' if len(fields) > 1 else ''} validated ({paths}); "
        f"{failing:,} events failed validation in the last {TREND_DAYS} days."
    )


def _owned(workflow: Workflow, d: dict[str, Any], h: History) -> tuple[str, str]:
    open_cases, unowned = h.cases.get(workflow.pk, (0, 0, 0, 0, 0))[:2]
    words = (
        f"{open_cases:,} open exception cases, each with a reason code; "
        f"{unowned:,} without an owner."
    )
    return ("fail" if unowned else "pass"), words


def _replayable(workflow: Workflow, d: dict[str, Any], h: History) -> tuple[str, str]:
    _, _, replays, succeeded, failed_replays, failed = h.events.get(workflow.pk, (0,) * 6)
    finished = succeeded + failed_replays
    if not replays:
        if failed:
            return "warn", (
                f"{failed:,} events failed in the last {HISTORY_DAYS} days and none was replayed: "
                "replay is unproven."
            )
        return "pass", f"No event failed in the last {HISTORY_DAYS} days; nothing needed a replay."
    words = (
        f"{replays:,} replays in the last {HISTORY_DAYS} days: {succeeded:,} succeeded, "
        f"{failed_replays:,} failed ({_pct(succeeded, finished)} of finished ones succeeded)."
    )
    if not finished or succeeded >= REPLAYS_SUCCEEDING * finished:
        return "pass", words
    return ("warn" if succeeded >= finished / 2 else "fail"), words


def _outcome(workflow: Workflow, d: dict[str, Any], h: History) -> tuple[str, str]:
    action = (d.get("action") or {}).get("type", "none")
    confirm = (d.get("outcome") or {}).get("confirm_within")
    recent = h.recent.at(workflow.pk, None)
    rate = (
        f"outcome rate {recent.outcome_rate}% over {recent.rated:,} events in the last "
        f"{TREND_DAYS} days"
        if recent.rated
        else f"no outcome due in the last {TREND_DAYS} days"
    )
    if action == "webhook" and not confirm:
        return "fail", (
            "No outcome check: a 2xx from the destination is taken as the business outcome. "
            f"Set outcome.confirm_within so the destination confirms it ({rate})."
        )
    checked = (
        f"confirmed by the destination within {duration(confirm)}"
        if confirm
        else ("the workflow has no action: handling the event is its outcome")
    )
    if not recent.rated:
        return "warn", f"Outcome {checked}; {rate}, so the outcome rate is not known yet."
    return "pass", f"Outcome {checked}; {rate}."


def _review(workflow: Workflow, d: dict[str, Any], h: History) -> tuple[str, str]:
    gates = d.get("review") or []
    if not gates:
        return "pass", "No review gate: no event waits for a person's judgement."
    events = h.events.get(workflow.pk, (0,))[0]
    reviewed = h.cases.get(workflow.pk, (0,) * 5)[3]
    share = reviewed / events if events else 0.0
    words = (
        f"{len(gates)} review gate{'s' if len(gates) > 1 else ''}; {reviewed:,} of {events:,} "
        f"events ({_pct(reviewed, events)}) waited for a review in the last {HISTORY_DAYS} days."
    )
    if share > REVIEW_FAIL:
        return "fail", words + " Routine events are being sent to people."
    return ("warn" if share > REVIEW_WARN else "pass"), words


def _owners(workflow: Workflow, d: dict[str, Any], h: History) -> tuple[str, str]:
    owner = d.get("owner") or ""
    _, problem = h.owners.check(owner, h.now)
    if problem:
        return "fail", f"The owner team {owner} {problem}."
    chain = d.get("fallback_owners") or []
    gaps = []
    for ref in chain:
        _, fallback_problem = h.owners.check(ref, h.now)
        if fallback_problem:
            gaps.append(f"{ref} {fallback_problem}")
    routes = {r["owner"] for r in d.get("routes") or []} - {owner, *chain}
    for ref in sorted(routes):
        _, route_problem = h.owners.check(ref, h.now)
        if route_problem:
            gaps.append(f"route owner {ref} {route_problem}")
    words = f"Owner {owner} has active members" + (
        f"; fallback chain {' → '.join(chain)}" if chain else "; no fallback chain"
    )
    if gaps:
        return "warn", words + ". But " + "; ".join(gaps) + "."
    if not chain:
        return "warn", words + ": when the owner has nobody, a no_owner case opens."
    return "pass", words + ", all active."


def _sla(workflow: Workflow, d: dict[str, Any], h: History) -> tuple[str, str]:
    sla = d.get("sla") or {}
    ack, resolve = sla.get("acknowledge_within"), sla.get("resolve_within")
    if not ack and not resolve:
        return "fail", "No SLA: cases get only their reason codes' default clocks, if any."
    counts = h.cases.get(workflow.pk, (0,) * 5)
    cases, breached = counts[2], counts[4]
    words = (
        f"Acknowledge within {duration(ack)}, resolve within {duration(resolve)}; {breached:,} of "
        f"{cases:,} cases in the last {HISTORY_DAYS} days breached a clock "
        f"({_pct(breached, cases)})."
    )
    return ("warn" if cases and breached > SLA_BREACH_WARN * cases else "pass"), words


def _trend(workflow: Workflow, d: dict[str, Any], h: History) -> tuple[str, str]:
    now, before = h.recent.at(workflow.pk, None), h.previous.at(workflow.pk, None)
    if not now.events or not before.events:
        return "warn", f"Not enough history to compare two periods of {TREND_DAYS} days."
    words = (
        f"Last {TREND_DAYS} days against the {TREND_DAYS} before: error rate "
        f"{now.error_rate}% (was {before.error_rate}%), p90 cycle time "
        f"{duration(now.cycle_p90)} (was {duration(before.cycle_p90)})."
    )
    worse = [_worse(now.error_rate, before.error_rate), _worse(now.cycle_p90, before.cycle_p90)]
    if (now.error_rate or 0) > 5 and _worse(now.error_rate, before.error_rate, factor=2):
        return "fail", words + " Errors have doubled."
    return ("warn" if any(worse) else "pass"), words


def _worse(now: float | None, before: float | None, *, factor: float = WORSE) -> bool:
    if now is None or before is None:
        return False
    return now > before * factor and now - before > 0.5


CONTROLS: list[tuple[str, str, Check]] = [
    ("trigger", "Trigger defined and captured once (idempotency in use)", _trigger),
    ("required_fields", "Required fields validated", _required),
    ("exceptions_owned", "Every exception owned and carrying a reason code", _owned),
    ("replayable", "Failed events replayable (replay used and succeeding)", _replayable),
    ("outcome_visible", "Current state and final outcome visible", _outcome),
    ("review_for_judgement", "Human review reserved for judgement", _review),
    ("owner_active", "Owner and fallback chain active", _owners),
    ("sla", "SLA set and met", _sla),
    ("trend", "Error and cycle-time trend", _trend),
]


def scorecard(workflow: Workflow, history: History) -> Scorecard:
    version = workflow.current_version
    definition = version.definition if version is not None else {}
    controls = [
        Control(id, title, *check(workflow, definition, history)) for id, title, check in CONTROLS
    ]
    return Scorecard(workflow=workflow, controls=controls, computed_at=history.now)


def scorecards(
    workflows: list[Workflow] | None = None, *, recent: OutcomeFigures | None = None
) -> list[Scorecard]:
    """The scorecards of the workflows (all of them by default), from one reading of history."""
    only = workflows[0] if workflows is not None and len(workflows) == 1 else None
    if workflows is None:
        workflows = list(Workflow.objects.select_related("current_version").order_by("name"))
    history = history_load(recent=recent, workflow=only)
    return [scorecard(workflow, history) for workflow in workflows]
