"""Ownership with a history, so the owners pages are not empty: a team that is not staffed yet,
a change of role, someone moving off a team, and a workflow whose fallback chain was changed
in the console (asked by the admin, approved by the manager: four-eyes). Later, once there are
cases, someone leaves and their work is handed over (console.demo.triage). All through the real
services, by the demo admin."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from exceptions.approvals.binding import Seen
from exceptions.approvals.services import approval_approve, approval_for_ownership
from workflows.four_eyes import ApprovalRequired
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
    _ownership_change_approved(
        workflow=Workflow.objects.get(slug="lead-routing"),
        owner="revenue-ops",
        fallback_owners=["sales-managers", "emea-enterprise"],
        asked_by=admin,
        approver=get_user_model().objects.get(username="marcus"),
        reason="EMEA enterprise covers for the sales managers during the Q4 push",
    )
    return True


def _ownership_change_approved(
    *,
    workflow: Workflow,
    owner: str,
    fallback_owners: list[str],
    asked_by: Any,
    approver: Any,
    reason: str,
) -> None:
    """The admin asks for the change (four-eyes) and the demo manager approves it."""
    try:
        workflow_ownership_set(
            workflow=workflow,
            owner=owner,
            fallback_owners=fallback_owners,
            actor=asked_by,
            reason=reason,
        )
    except ApprovalRequired as required:
        approval = approval_for_ownership(
            required=required,
            workflow=workflow,
            actor=asked_by,
            owner=owner,
            fallback_owners=fallback_owners,
            reason=reason,
        )
        approval_approve(
            approval=approval,
            actor=approver,
            seen=Seen(approval.version, approval.payload_hash, approval.workflow_version_id),
            comment="Agreed for the quarter",
        )
