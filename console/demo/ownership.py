"""Ownership with a history, so the owners pages are not empty: a team that is not staffed yet,
a change of role, someone moving off a team, and a workflow whose fallback chain was changed
in the console. Later, once there are cases, someone leaves and their work is handed over
(console.demo.triage). All through the real services, by the demo admin."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from workflows.models import Membership, Team, Workflow
from workflows.services.ownership import workflow_ownership_set
from workflows.services.teams import membership_change_role, membership_end, team_create

NEW_TEAM = "partner-success"


@transaction.atomic
def demo_ownership_ensure() -> bool:
    """Make the demo's ownership history once; False when it is there already."""
    admin = get_user_model().objects.filter(username="ada").first()
    if admin is None or Team.objects.filter(slug=NEW_TEAM).exists():
        return False
    team_create(
        slug=NEW_TEAM,
        name="Partner success",
        actor=admin,
        reason="New partner programme; people join in January",
    )
    priya = Membership.objects.get(
        user__username="priya", team__slug="emea-enterprise", valid_to__isnull=True
    )
    membership_change_role(
        membership=priya, role=Membership.LEAD, actor=admin, reason="Took over the EMEA desk"
    )
    lena = Membership.objects.get(
        user__username="lena", team__slug="support-tier1", valid_to__isnull=True
    )
    membership_end(membership=lena, actor=admin, reason="Works escalations full time")
    workflow_ownership_set(
        workflow=Workflow.objects.get(slug="lead-routing"),
        owner="revenue-ops",
        fallback_owners=["sales-managers", "emea-enterprise"],
        actor=admin,
        reason="EMEA enterprise covers for the sales managers during the Q4 push",
    )
    return True
