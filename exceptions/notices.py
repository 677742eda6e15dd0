"""Emails about cases: to the owner when a case is assigned or breaches its SLA, and escalation
of a breach nobody acknowledged to the team's leads, then to the first fallback team.

Each is owed as a Notice row, written (with its audit entry, as a system action) in the
transaction of what caused it; the sender gathers each person's unsent notices into one email.
Each escalation step is taken once per deadline: the CaseEscalation row is unique, so however
often the sweep runs, it sends a step at most once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone

from audit.services import audit_record
from exceptions.models import (
    OPEN_STATES,
    CaseEscalation,
    CaseState,
    EscalationLevel,
    ExceptionCase,
    Notice,
    NoticeKind,
    NotificationPreference,
)
from workflows.models import Membership, Team
from workflows.ownership import owner_lines_at
from workflows.rules import compiled_version
from workflows.selectors import active_members

SWEEP_LIMIT = 500
SEND_LIMIT = 2000


def case_url(case: ExceptionCase) -> str:
    return settings.HANDOFF_BASE_URL.rstrip("/") + reverse("case", args=[case.pk])


def _wanting(people: Iterable[Any], *, besides: Any = None) -> list[Any]:
    """The people who can be emailed and have not turned emails off (never who acted)."""
    found = {p.pk: p for p in people if p.is_active and p.email and p != besides}
    off = set(
        NotificationPreference.objects.filter(user_id__in=found, email=False).values_list(
            "user_id", flat=True
        )
    )
    return [person for pk, person in sorted(found.items()) if pk not in off]


def team_people(team: Team | None, now: datetime, *, role: str = "") -> list[Any]:
    if team is None or not team.active:
        return []
    members = active_members(team_id=team.pk, at=now)
    if role:
        members = members.filter(role=role)
    return [m.user for m in members]


def _owe(
    case: ExceptionCase,
    people: list[Any],
    kind: str,
    detail: str,
    action: str,
    extra: dict[str, Any],
) -> list[str]:
    """Write the notices and their system audit entry; the usernames they go to."""
    Notice.objects.bulk_create(Notice(user=p, case=case, kind=kind, detail=detail) for p in people)
    names = [p.get_username() for p in people]
    audit_record(
        actor=None, action=action, target=case, after={"to": names, **extra}, reason=detail
    )
    return names


def case_assigned(*, case: ExceptionCase, actor: Any, before: dict[str, Any]) -> list[str]:
    """Notices for whoever a case was just given to: the person, else the team's people."""
    now = timezone.now()
    if case.owner_user is not None:
        if before.get("owner_user") == case.owner_user.get_username():
            return []
        people = [case.owner_user]
    else:
        slug = case.owner_team.slug if case.owner_team is not None else None
        if slug is None or (before.get("owner_team") == slug and not before.get("owner_user")):
            return []
        people = team_people(case.owner_team, now)
    wanting = _wanting(people, besides=actor)
    if not wanting:
        return []
    detail = f"Case {case.pk} ({case.reason.label}) is now yours" + (
        "" if case.owner_user is not None else f" as a member of {case.owner_team}"
    )
    return _owe(case, wanting, NoticeKind.ASSIGNED, detail, "notify.assigned", {})


def notification_email_set(*, user: Any, email: bool) -> NotificationPreference:
    """A person's own preference; like a saved view it is not on the audit trail."""
    pref, _ = NotificationPreference.objects.update_or_create(user=user, defaults={"email": email})
    return pref


def emails_on(user: Any) -> bool:
    return not NotificationPreference.objects.filter(user=user, email=False).exists()


# --- breaches and escalation ----------------------------------------------------------------


def _step(case: ExceptionCase, level: str, deadline: datetime) -> CaseEscalation | None:
    """Take an escalation step once: None if it was taken before for this deadline."""
    try:
        with transaction.atomic():
            return CaseEscalation.objects.create(case=case, level=level, deadline=deadline)
    except IntegrityError:
        return None


def _taken(level: str, **since: Any) -> Exists:
    return Exists(
        CaseEscalation.objects.filter(
            case_id=OuterRef("pk"), level=level, deadline=OuterRef("sla_due_at"), **since
        )
    )


def breached_cases(now: datetime, wait: timedelta) -> Any:
    """Open cases past a deadline with a step due for it now (not one whose leads still have
    their turn), oldest deadline first."""
    unacknowledged = Q(acknowledged_at__isnull=True) & ~Q(state=CaseState.ACKNOWLEDGED)
    escalation_due = (
        unacknowledged
        & ~_taken(EscalationLevel.FALLBACK)
        & ~_taken(EscalationLevel.LEADS, created_at__gt=now - wait)
    )
    return (
        ExceptionCase.objects.filter(state__in=OPEN_STATES, sla_due_at__lt=now)
        .filter(~_taken(EscalationLevel.BREACH) | escalation_due)
        .select_related("owner_team", "owner_user", "reason", "event__version")
        .order_by("sla_due_at", "id")
    )


@transaction.atomic
def cases_escalate(*, now: datetime | None = None) -> int:
    """One sweep: breach notices, then escalations of breaches nobody acknowledged. Returns the
    steps taken. Safe to run as often as wanted, by as many workers as want to."""
    now = now or timezone.now()
    wait = timedelta(seconds=settings.HANDOFF_ESCALATION_STEP_SECONDS)
    taken = 0
    for case in breached_cases(now, wait).select_for_update(of=("self",), skip_locked=True)[
        :SWEEP_LIMIT
    ]:
        taken += _escalate(case, now, wait)
    return taken


def _escalate(case: ExceptionCase, now: datetime, wait: timedelta) -> int:
    deadline = case.sla_due_at
    assert deadline is not None  # breached_cases() chose cases past one
    when = deadline.strftime("%Y-%m-%d %H:%M UTC")
    taken = 0
    if _step(case, EscalationLevel.BREACH, deadline):
        people = [case.owner_user] if case.owner_user else team_people(case.owner_team, now)
        detail = f"Case {case.pk} ({case.reason.label}) breached its SLA at {when}"
        extra: dict[str, Any] = {"deadline": deadline}
        _owe(case, _wanting(people), NoticeKind.BREACH, detail, "notify.breach", extra)
        taken += 1
    if case.acknowledged_at is not None or case.state == CaseState.ACKNOWLEDGED:
        return taken
    unheard = f"Nobody acknowledged case {case.pk} after its SLA breached at {when}"
    leads = team_people(case.owner_team, now, role=Membership.LEAD)
    steps = {e.level: e for e in CaseEscalation.objects.filter(case=case, deadline=deadline)}
    if leads and EscalationLevel.LEADS not in steps:
        if _step(case, EscalationLevel.LEADS, deadline):
            detail = f"{unheard}: escalated to the leads of {case.owner_team}"
            extra = {"level": "leads", "team": str(case.owner_team)}
            _owe(case, _wanting(leads), NoticeKind.ESCALATION, detail, "case.escalate", extra)
            taken += 1
        return taken  # the leads have their turn first
    leads_since = steps.get(EscalationLevel.LEADS)
    if leads_since is not None and leads_since.created_at > now - wait:
        return taken
    if EscalationLevel.FALLBACK in steps or not _step(case, EscalationLevel.FALLBACK, deadline):
        return taken
    team = _first_fallback(case, now)
    if team is None:
        # Recorded all the same: the sweep does not come back for it, and the radar shows it.
        detail, people = f"{unheard}, and no fallback team can take it", list[Any]()
    else:
        detail = f"{unheard}: escalated to {team.slug}, the first fallback team"
        people = _wanting(team_people(team, now))
    extra = {"level": "fallback", "team": team.slug if team else None}
    _owe(case, people, NoticeKind.ESCALATION, detail, "case.escalate", extra)
    return taken + 1


def _first_fallback(case: ExceptionCase, now: datetime) -> Team | None:
    """The first team of the workflow's fallback chain in force, other than the case's own."""
    lines = owner_lines_at(
        workflow_id=case.workflow_id, compiled=compiled_version(case.event.version), at=now
    )
    for slug in lines.fallback_owners:
        team = Team.objects.filter(slug=slug, active=True).first()
        if team is not None and team != case.owner_team and team_people(team, now):
            return team
    return None


# --- sending --------------------------------------------------------------------------------


def notices_send(*, limit: int = SEND_LIMIT) -> int:
    """Send each person's unsent notices as one email; returns the emails sent."""
    sent = 0
    with transaction.atomic():
        owed = list(
            Notice.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(sent_at__isnull=True)
            .select_related("user", "case")
            .order_by("user_id", "id")[:limit]
        )
        by_person: dict[int, list[Notice]] = defaultdict(list)
        for notice in owed:
            by_person[notice.user_id].append(notice)
        for notices in by_person.values():
            person = notices[0].user
            if person.is_active and person.email and emails_on(person):
                subject, body = _email(notices)
                send_mail(subject, body, None, [person.email])
                sent += 1
        Notice.objects.filter(pk__in=[n.pk for n in owed]).update(sent_at=timezone.now())
    return sent


def _email(notices: list[Notice]) -> tuple[str, str]:
    if len(notices) == 1:
        subject = f"[Handoff] {notices[0].detail}"
    else:
        subject = f"[Handoff] {len(notices)} cases need you"
    lines = [f"- {n.detail}\n  {case_url(n.case)}" for n in notices[:200]]
    if len(notices) > 200:
        more = f"{settings.HANDOFF_BASE_URL}/queue/?owner=me"
        lines.append(f"…and {len(notices) - 200} more: {more}")
    footer = (
        "You get these because you own these cases or lead their team. "
        "Turn them off on your own page under Owners."
    )
    return subject, "\n".join(lines) + "\n\n" + footer + "\n"
