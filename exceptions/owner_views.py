"""The owners pages (DESIGN.md section 8): teams, a team, a person, a workflow's ownership.

Everyone with a role reads them; only admins see the forms that change anything (the changes
themselves are in owner_changes, each behind its own permission).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from exceptions import owner_selectors
from exceptions.notices import emails_on
from exceptions.owner_forms import (
    MembershipEndForm,
    MembershipRoleForm,
    MembershipStartForm,
    OwnershipForm,
    ReasonForm,
    TeamCreateForm,
    TeamJoinForm,
    TeamRenameForm,
)
from workflows.models import Team, Workflow
from workflows.ownership import (
    ownership_history,
    ownerships_now,
    team_then,
    workflow_owner_at,
)
from workflows.services.ownership import PRECEDENCE

READ_OWNERS = "workflows.view_team"
MAX_FALLBACK_SLOTS = 20


def _can(request: HttpRequest, *perms: str) -> bool:
    return all(request.user.has_perm(p) for p in perms)


@require_GET
@login_required
@permission_required(READ_OWNERS, raise_exception=True)
def owners_index(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    context: dict[str, Any] = {
        "now": now,
        "teams": owner_selectors.team_rows(now),
        "people": owner_selectors.people_rows(now),
        "workflows": ownerships_now(at=now),
        "can_add_team": _can(request, "workflows.add_team"),
        "create_form": TeamCreateForm(auto_id="new-team-%s"),
    }
    return render(request, "owners/index.html", context)


@require_GET
@login_required
@permission_required(READ_OWNERS, raise_exception=True)
def team_detail(request: HttpRequest, slug: str) -> HttpResponse:
    team = get_object_or_404(Team, slug=slug)
    now = timezone.now()
    page = owner_selectors.team_page(team=team, now=now)
    context: dict[str, Any] = {
        "now": now,
        "team": team,
        "page": page,
        "row": page.row,
        "can_change_team": _can(request, "workflows.change_team"),
        "can_change_members": _can(
            request, "workflows.add_membership", "workflows.change_membership"
        ),
        "can_reassign": _can(request, "exceptions.reassign_exceptioncase"),
        "rename_form": TeamRenameForm(initial={"name": team.name}, auto_id="rename-%s"),
        "deactivate_form": ReasonForm(auto_id="deactivate-%s"),
        "start_form": MembershipStartForm(auto_id="join-%s"),
        "role_form": MembershipRoleForm(auto_id=False),
        "end_form": MembershipEndForm(auto_id=False),
    }
    return render(request, "owners/team.html", context)


@require_GET
@login_required
@permission_required(READ_OWNERS, raise_exception=True)
def person_detail(request: HttpRequest, username: str) -> HttpResponse:
    person = get_object_or_404(get_user_model(), username=username)
    now = timezone.now()
    context: dict[str, Any] = {
        "now": now,
        "person": person,
        "page": owner_selectors.person_page(person=person, now=now),
        "can_change_members": _can(
            request, "workflows.add_membership", "workflows.change_membership"
        ),
        "can_deactivate": _can(request, "auth.change_user") and person.is_active,
        "can_reassign": _can(request, "exceptions.reassign_exceptioncase"),
        "join_form": TeamJoinForm(auto_id="join-%s"),
        "end_form": MembershipEndForm(auto_id=False),
        "deactivate_form": ReasonForm(auto_id="leave-%s"),
        "is_me": person == request.user,
        "emails_on": emails_on(person),
    }
    return render(request, "owners/person.html", context)


@require_GET
@login_required
@permission_required(READ_OWNERS, raise_exception=True)
def workflow_ownership(request: HttpRequest, slug: str) -> HttpResponse:
    workflow = get_object_or_404(Workflow, slug=slug)
    return render(request, "owners/workflow.html", workflow_context(request, workflow))


def workflow_context(
    request: HttpRequest, workflow: Workflow, form: OwnershipForm | None = None
) -> dict[str, Any]:
    """The ownership panel: who owns the workflow now, its history, and the change form."""
    now = timezone.now()
    current = workflow_owner_at(workflow=workflow, at=now)
    if form is None:
        chain = [team.slug for team in current.fallbacks]
        initial: dict[str, Any] = {"owner": current.owner}
        initial.update({f"fallback_{i}": slug for i, slug in enumerate(chain, start=1)})
        slots = min(MAX_FALLBACK_SLOTS, max(4, len(chain) + 2))
        form = OwnershipForm(initial=initial, slots=slots, auto_id="ownership-%s")
    version = workflow.current_version
    file_lines = (
        (version.definition["owner"], version.definition.get("fallback_owners") or [])
        if version is not None
        else None
    )
    return {
        "now": now,
        "workflow": workflow,
        "current": current,
        "history": ownership_history(workflow=workflow),
        "file_lines": file_lines,
        "precedence": PRECEDENCE,
        "form": form,
        "can_change": _can(request, "workflows.change_workflowownership"),
        "route_teams": _route_teams(workflow, now),
    }


def _route_teams(workflow: Workflow, now: Any) -> list[Any]:
    """The teams the current version's routes name, as they stand now."""
    version = workflow.current_version
    routes = version.definition.get("routes", []) if version is not None else []
    named = []
    for route in routes:
        owner = str(route.get("owner", ""))
        team = None if owner.startswith("user:") else team_then(owner, now)
        named.append({"name": route.get("name", ""), "owner": owner, "team": team})
    return named
