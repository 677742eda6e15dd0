"""The demo organisation: teams, the people on them, and three workflows from real operations."""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from audit.actors import SYSTEM
from workflows.models import Membership, Team
from workflows.services.definitions import LoadResult, workflows_load
from workflows.services.teams import membership_start, team_create

WORKFLOW_FILES = sorted((Path(__file__).parent / "workflows").glob("*.yaml"))

TEAMS = {
    "revenue-ops": "Revenue operations",
    "sales-managers": "Sales managers",
    "emea-enterprise": "EMEA enterprise sales",
    "inbound-sdr": "Inbound SDRs",
    "support-tier1": "Support tier 1",
    "support-escalations": "Support escalations",
    "finance-ops": "Finance operations",
    "finance-managers": "Finance managers",
}

# username, first, last, role group, [(team, membership role)]; people beyond the four demo
# logins own work but cannot sign in (no password).
PEOPLE = [
    ("olivia", "Olivia", "Okafor", "operator",
     [("inbound-sdr", "member"), ("support-tier1", "member"), ("finance-ops", "member")]),
    ("marcus", "Marcus", "Lindqvist", "manager",
     [("sales-managers", "lead"), ("finance-managers", "lead"), ("revenue-ops", "lead")]),
    ("ada", "Ada", "Reyes", "admin", [("revenue-ops", "member")]),
    ("priya", "Priya", "Natarajan", "operator", [("emea-enterprise", "member")]),
    ("tomas", "Tomás", "Herrera", "operator", [("finance-ops", "member")]),
    ("lena", "Lena", "Vogel", "operator",
     [("support-escalations", "lead"), ("support-tier1", "member")]),
    ("sven", "Sven", "Larsen", "operator", [("support-tier1", "member")]),
]  # fmt: skip


@transaction.atomic
def demo_org_ensure() -> list[LoadResult]:
    """Create what is missing of the demo organisation and load its workflows. Idempotent."""
    for slug, name in TEAMS.items():
        if not Team.objects.filter(slug=slug).exists():
            team_create(slug=slug, name=name, actor=SYSTEM)
    user_model = get_user_model()
    for username, first, last, role, memberships in PEOPLE:
        user = user_model.objects.filter(username=username).first()
        if user is None:
            user = user_model(
                username=username,
                first_name=first,
                last_name=last,
                email=f"{username}@example.com",
            )
            user.set_unusable_password()
            user.save()
            user.groups.add(Group.objects.get(name=role))
        for team_slug, team_role in memberships:
            team = Team.objects.get(slug=team_slug)
            if not Membership.objects.filter(user=user, team=team).exists():
                membership_start(user=user, team=team, role=team_role, actor=SYSTEM)
    sources = [(path.name, path.read_text(encoding="utf-8")) for path in WORKFLOW_FILES]
    return workflows_load(sources=sources, actor=SYSTEM)
