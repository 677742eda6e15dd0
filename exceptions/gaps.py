"""The ownership-gaps radar: work that has, or soon will have, nobody to do it.

Each gap is counted, aged (since when it has been a gap, as far as the records say) and linked
to where it is fixed: a team's page, a workflow's ownership panel, or a reassignment prepared
with exactly the cases concerned.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.db.models import Count, Max, Min, Q
from django.urls import reverse

from exceptions.models import OPEN_STATES, ExceptionCase
from exceptions.owner_selectors import memberships_now
from workflows.models import Membership, Team
from workflows.ownership import WorkflowLines, ownerships_now

# A person carries "far more" than their team when they hold at least this many times the
# median of the team's members, and at least OVERLOAD_MARGIN cases more than it.
OVERLOAD_FACTOR = 3
OVERLOAD_MARGIN = 5
ITEM_LIMIT = 20


@dataclass(frozen=True)
class GapItem:
    label: str
    detail: str
    count: int
    since: datetime | None
    fix_url: str
    fix_label: str


@dataclass
class Gap:
    key: str
    title: str
    explains: str
    items: list[GapItem] = field(default_factory=list)
    count: int = 0  # what the gap counts (workflows, teams, cases or people)
    unit: str = ""  # one of them, in the singular

    @property
    def counted(self) -> str:
        """ "1 team", "47 cases", "2 people"."""
        if self.count == 1:
            return f"1 {self.unit}"
        return f"{self.count} " + ("people" if self.unit == "person" else f"{self.unit}s")

    @property
    def since(self) -> datetime | None:
        """The oldest of its items: how long the gap has been open."""
        times = [item.since for item in self.items if item.since is not None]
        return min(times) if times else None


def reassign_url(**scope: str) -> str:
    return f"{reverse('owners-reassign')}?{urlencode(scope)}"


def _open() -> Any:
    return ExceptionCase.objects.filter(state__in=OPEN_STATES)


def _staffing(now: datetime) -> dict[str, tuple[Team, int, datetime | None]]:
    """Per team slug: (team, active members now, when its last membership ended)."""
    counts: dict[int, int] = {}
    for membership in memberships_now(now):
        if membership.user.is_active:
            counts[membership.team_id] = counts.get(membership.team_id, 0) + 1
    ended = dict(
        Membership.objects.filter(valid_to__isnull=False, valid_to__lte=now)
        .values("team_id")
        .annotate(last=Max("valid_to"))
        .values_list("team_id", "last")
    )
    return {
        team.slug: (team, counts.get(team.pk, 0), ended.get(team.pk)) for team in Team.objects.all()
    }


def _team_problem(slug: str, staffing: dict[str, Any]) -> tuple[str, datetime | None]:
    """Why a team cannot take work ("" if it can), and since when."""
    if slug not in staffing:
        return "does not exist", None
    team, members, last_ended = staffing[slug]
    if not team.active:
        return "is inactive", team.deactivated_at
    if members == 0:
        return "has no active members", last_ended or team.created_at
    return "", None


def workflow_gaps(owned: list[WorkflowLines], staffing: dict[str, Any]) -> tuple[Gap, Gap]:
    owners = Gap(
        "workflow-owner",
        "Workflows whose owner team cannot take work",
        "Events that no route sends elsewhere fall back along the chain, or open no_owner cases.",
        unit="workflow",
    )
    chains = Gap(
        "fallback-chain",
        "Empty or dead fallback chains",
        "When the owner cannot take work, nothing catches these workflows' events.",
        unit="workflow",
    )
    for item in owned:
        url = reverse("owners-workflow", args=[item.workflow.slug])
        problem, since = _team_problem(item.lines.owner, staffing)
        if problem:
            owners.items.append(
                GapItem(item.workflow.name, f"owner {item.lines.owner} {problem}", 1, since,
                        url, "Change the owner")
            )  # fmt: skip
        chain = item.lines.fallback_owners
        dead = [slug for slug in chain if _team_problem(slug, staffing)[0]]
        if not chain or len(dead) == len(chain):
            detail = (
                "no fallback teams" if not chain else f"every fallback is out: {', '.join(dead)}"
            )
            chains.items.append(
                GapItem(item.workflow.name, detail, 1, item.lines.valid_from, url, "Set a chain")
            )
    owners.count, chains.count = len(owners.items), len(chains.items)
    return owners, chains


def team_gap(staffing: dict[str, Any]) -> Gap:
    gap = Gap(
        "empty-team",
        "Active teams with no active members",
        "Routing passes these teams over; whatever they own goes down the fallback chain.",
        unit="team",
    )
    for slug, (team, members, last_ended) in sorted(staffing.items()):
        if team.active and members == 0:
            gap.items.append(
                GapItem(team.name, slug, 1, last_ended or team.created_at,
                        reverse("owners-team", args=[slug]), "Add people")
            )  # fmt: skip
    gap.count = len(gap.items)
    return gap


def _case_gap(gap: Gap, rows: Any, label: Any, fix: Any, fix_label: str) -> Gap:
    """One item per person, most cases first, saying which teams' cases they hold."""
    by = "owner_user__username"
    grouped = (
        rows.order_by().values(by).annotate(n=Count("id"), since=Min("opened_at")).order_by("-n")
    )
    teams: dict[str, set[str]] = {}
    for name, slug in rows.order_by().values_list(by, "owner_team__slug").distinct():
        teams.setdefault(name, set()).add(slug or "no team")
    for row in grouped[:ITEM_LIMIT]:
        detail = "cases of " + ", ".join(sorted(teams.get(row[by], set())))
        gap.items.append(
            GapItem(label(row[by]), detail, row["n"], row["since"], fix(row[by]), fix_label)
        )
    gap.count = rows.count()
    return gap


def leaver_gap() -> Gap:
    # People who left are few: look their cases up by the owner index, not by a join.
    left = list(get_user_model().objects.filter(is_active=False).values_list("pk", flat=True))
    rows = _open().filter(owner_user_id__in=left)
    gap = Gap(
        "leavers",
        "Open cases owned by deactivated people",
        "Nobody is working on these: hand them to a team or a person.",
        unit="case",
    )
    return _case_gap(gap, rows, lambda name: f"{name} (left)",
                     lambda name: reassign_url(person=name), "Reassign their cases")  # fmt: skip


def off_team_gap(now: datetime) -> Gap:
    """Counted per (person, team) pair in one pass, then checked against the memberships."""
    pairs = (
        _open()
        .filter(owner_user__isnull=False, owner_team__isnull=False, owner_user__is_active=True)
        .order_by()
        .values_list("owner_user__username", "owner_team__slug")
        .annotate(n=Count("id"), since=Min("opened_at"))
    )
    on_team = {(m.user.get_username(), m.team.slug) for m in memberships_now(now)}
    per_person: dict[str, list[tuple[str, int, datetime]]] = {}
    for name, slug, n, since in pairs:
        if (name, slug) not in on_team:
            per_person.setdefault(name, []).append((slug, n, since))
    gap = Gap(
        "off-team",
        "Open cases owned by people no longer on the owning team",
        "The person left the team the case belongs to (or never was on it).",
        unit="case",
    )
    for name, held in per_person.items():
        gap.items.append(GapItem(
            name, "cases of " + ", ".join(sorted(slug for slug, _, _ in held)),
            sum(n for _, n, _ in held), min(since for _, _, since in held),
            reassign_url(person=name, off_team="1"), "Reassign",
        ))  # fmt: skip
    gap.count = sum(item.count for item in gap.items)
    gap.items = sorted(gap.items, key=lambda item: -item.count)[:ITEM_LIMIT]
    return gap


def query_gap(key: str, title: str, explains: str, rows: Any, query: dict[str, str]) -> Gap:
    gap = Gap(key, title, explains, unit="case")
    found = rows.aggregate(n=Count("id"), since=Min("opened_at"))
    gap.count = found["n"]
    if gap.count:
        gap.items.append(
            GapItem(title, "", gap.count, found["since"], reassign_url(**query), "Reassign them")
        )
    return gap


def overload_gap(now: datetime) -> Gap:
    gap = Gap(
        "overload",
        "People carrying far more open cases than their team's median",
        f"At least {OVERLOAD_FACTOR}× the median of their team and {OVERLOAD_MARGIN} more.",
        unit="person",
    )
    carried = dict(
        _open()
        .filter(owner_user__isnull=False)
        .order_by()
        .values("owner_user")
        .annotate(n=Count("id"))
        .values_list("owner_user", "n")
    )
    teams: dict[str, list[Membership]] = {}
    for membership in memberships_now(now):
        if membership.user.is_active:
            teams.setdefault(membership.team.slug, []).append(membership)
    flagged: dict[str, GapItem] = {}
    for slug, members in sorted(teams.items()):
        median = statistics.median([carried.get(m.user_id, 0) for m in members])
        for m in members:
            load = carried.get(m.user_id, 0)
            name = m.user.get_username()
            if load >= OVERLOAD_FACTOR * median and load >= median + OVERLOAD_MARGIN:
                flagged.setdefault(name, GapItem(
                    name, f"{load} open against a median of {median:g} on {slug}", load,
                    None, reassign_url(person=name), "Spread their cases",
                ))  # fmt: skip
    gap.items = sorted(flagged.values(), key=lambda item: -item.count)[:ITEM_LIMIT]
    gap.count = len(flagged)
    return gap


def radar(*, now: datetime) -> list[Gap]:
    """Every gap, in the order a manager works through them."""
    staffing = _staffing(now)
    owners, chains = workflow_gaps(ownerships_now(at=now), staffing)
    no_owner = _open().filter(Q(reason_id="no_owner") | Q(owner_team=None, owner_user=None))
    late = _open().filter(
        owner_user__isnull=True, acknowledged_at__isnull=True, acknowledge_due_at__lt=now
    )
    return [
        owners,
        chains,
        team_gap(staffing),
        leaver_gap(),
        off_team_gap(now),
        query_gap("no-owner", "No owner: cases with no team and no person",
                  "no_owner cases, and any case whose team and person were both cleared.",
                  no_owner, {"owner_scope": "no_owner"}),
        query_gap("unassigned-late", "Unassigned cases past their acknowledge SLA",
                  "No person has them, and nobody acknowledged them in time.",
                  late, {"owner_scope": "unassigned_late"}),
        overload_gap(now),
    ]  # fmt: skip
