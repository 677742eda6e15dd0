"""The owners pages' changes: each a POST behind the permission it needs, calling one service.

Only admins hold these permissions (console migration 0003); everyone else gets 403. A change
that cannot be made comes back as a message saying why, on the page it was asked from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from exceptions.approvals.services import approval_for_ownership
from exceptions.handover import person_deactivate
from exceptions.notices import notification_email_set
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
from exceptions.owner_views import MAX_FALLBACK_SLOTS, workflow_context
from workflows.four_eyes import ApprovalRequired
from workflows.models import Membership, Team, Workflow
from workflows.services.ownership import workflow_ownership_set
from workflows.services.teams import (
    OwnersRefused,
    membership_change_role,
    membership_end,
    membership_start,
    team_create,
    team_deactivate,
    team_rename,
)

CHANGE_MEMBERS = ("workflows.add_membership", "workflows.change_membership")


def _apply(
    request: HttpRequest, form: forms.Form, back: str, change: Callable[[dict[str, Any]], str]
) -> HttpResponse:
    """Run `change` on a valid form; tell the person what happened, or why nothing did."""
    if not form.is_valid():
        problems = " ".join(str(e) for errors in form.errors.values() for e in errors)
        messages.error(request, f"Not changed: {problems}")
        return redirect(back)
    try:
        messages.success(request, change(form.cleaned_data))
    except OwnersRefused as refused:
        messages.error(request, f"Not changed: {refused}")
    return redirect(back)


def _team_url(team: Team) -> str:
    return reverse("owners-team", args=[team.slug])


@require_POST
@login_required
@permission_required("workflows.add_team", raise_exception=True)
def team_new(request: HttpRequest) -> HttpResponse:
    form = TeamCreateForm(request.POST)
    if not form.is_valid():
        return _apply(request, form, reverse("owners"), lambda data: "")
    try:
        team = team_create(actor=request.user, **form.cleaned_data)
    except OwnersRefused as refused:
        messages.error(request, f"Not created: {refused}")
        return redirect("owners")
    messages.success(request, f"Team {team.slug} created. Add its people below.")
    return redirect(_team_url(team))


@require_POST
@login_required
@permission_required("workflows.change_team", raise_exception=True)
def team_rename_view(request: HttpRequest, slug: str) -> HttpResponse:
    team = get_object_or_404(Team, slug=slug)

    def change(data: dict[str, Any]) -> str:
        renamed = team_rename(
            team=team, name=data["name"], actor=request.user, reason=data["reason"]
        )
        return f"Team {renamed.slug} is now called {renamed.name}."

    return _apply(request, TeamRenameForm(request.POST), _team_url(team), change)


@require_POST
@login_required
@permission_required("workflows.change_team", raise_exception=True)
def team_deactivate_view(request: HttpRequest, slug: str) -> HttpResponse:
    team = get_object_or_404(Team, slug=slug)

    def change(data: dict[str, Any]) -> str:
        team_deactivate(team=team, actor=request.user, reason=data["reason"])
        return (
            f"Team {team.slug} deactivated: routing passes it over. Its open cases stay with it "
            "until reassigned; the ownership-gaps radar lists what it leaves uncovered."
        )

    return _apply(request, ReasonForm(request.POST), _team_url(team), change)


@require_POST
@login_required
@permission_required(CHANGE_MEMBERS, raise_exception=True)
def membership_add(request: HttpRequest, slug: str) -> HttpResponse:
    team = get_object_or_404(Team, slug=slug)

    def change(data: dict[str, Any]) -> str:
        person = data["person"]
        membership_start(
            user=person, team=team, role=data["role"], actor=request.user, reason=data["reason"]
        )
        return f"{person.get_username()} is on {team.slug} as {data['role']} from now."

    return _apply(request, MembershipStartForm(request.POST), _team_url(team), change)


@require_POST
@login_required
@permission_required(CHANGE_MEMBERS, raise_exception=True)
def membership_join(request: HttpRequest, username: str) -> HttpResponse:
    person = get_object_or_404(get_user_model(), username=username)

    def change(data: dict[str, Any]) -> str:
        team = data["team"]
        membership_start(
            user=person, team=team, role=data["role"], actor=request.user, reason=data["reason"]
        )
        return f"{person.get_username()} is on {team.slug} as {data['role']} from now."

    back = reverse("owners-person", args=[person.get_username()])
    return _apply(request, TeamJoinForm(request.POST), back, change)


def _back(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next", "")
    return target if target.startswith("/owners/") else fallback


@require_POST
@login_required
@permission_required(CHANGE_MEMBERS, raise_exception=True)
def membership_role(request: HttpRequest, pk: int) -> HttpResponse:
    membership = get_object_or_404(Membership.objects.select_related("user", "team"), pk=pk)

    def change(data: dict[str, Any]) -> str:
        membership_change_role(
            membership=membership, role=data["role"], actor=request.user, reason=data["reason"]
        )
        return (
            f"{membership.user.get_username()} is a {data['role']} of {membership.team.slug} "
            f"from now (was {membership.role})."
        )

    back = _back(request, _team_url(membership.team))
    return _apply(request, MembershipRoleForm(request.POST), back, change)


@require_POST
@login_required
@permission_required(CHANGE_MEMBERS, raise_exception=True)
def membership_stop(request: HttpRequest, pk: int) -> HttpResponse:
    membership = get_object_or_404(Membership.objects.select_related("user", "team"), pk=pk)

    def change(data: dict[str, Any]) -> str:
        membership_end(membership=membership, actor=request.user, reason=data["reason"])
        return f"{membership.user.get_username()} is off {membership.team.slug} from now."

    back = _back(request, _team_url(membership.team))
    return _apply(request, MembershipEndForm(request.POST), back, change)


@require_POST
@login_required
@permission_required("workflows.change_workflowownership", raise_exception=True)
def ownership_set(request: HttpRequest, slug: str) -> HttpResponse:
    workflow = get_object_or_404(Workflow, slug=slug)
    slots = min(MAX_FALLBACK_SLOTS, max(4, int(request.POST.get("slots", "4") or 4)))
    form = OwnershipForm(request.POST, slots=slots, auto_id="ownership-%s")
    error = ""
    if form.is_valid():
        try:
            workflow_ownership_set(
                workflow=workflow,
                owner=form.owner_slug(),
                fallback_owners=form.fallbacks(),
                actor=request.user,
                reason=form.cleaned_data["reason"],
            )
        except OwnersRefused as refused:
            error = str(refused)
        except ApprovalRequired as required:
            approval = approval_for_ownership(
                required=required,
                workflow=workflow,
                actor=request.user,
                owner=form.owner_slug(),
                fallback_owners=form.fallbacks(),
                reason=form.cleaned_data["reason"],
            )
            messages.info(
                request,
                f"{required} Approval request #{approval.pk} waits for a "
                f"{approval.required_role}; the ownership stays as it is until then.",
            )
            return redirect("owners-workflow", slug=workflow.slug)
    context = workflow_context(request, workflow, form=form)
    context["error"] = error
    return render(request, "owners/workflow.html", context, status=422)


@require_POST
@login_required
@permission_required("auth.change_user", raise_exception=True)
def person_leave(request: HttpRequest, username: str) -> HttpResponse:
    person = get_object_or_404(get_user_model(), username=username)

    def change(data: dict[str, Any]) -> str:
        handed = person_deactivate(person=person, actor=request.user, reason=data["reason"])
        return (
            f"{person.get_username()} is deactivated; their memberships ended and "
            f"{handed.moved} open cases were handed over"
            + (f" ({handed.unowned} found nobody and are now unowned)" if handed.unowned else "")
            + "."
        )

    back = reverse("owners-person", args=[person.get_username()])
    return _apply(request, ReasonForm(request.POST), back, change)


@require_POST
@login_required
def emails_set(request: HttpRequest, username: str) -> HttpResponse:
    """A person turns their own emails on or off; nobody else can."""
    if username != request.user.get_username():
        raise PermissionDenied("Only you choose whether you get emails.")
    wanted = request.POST.get("email") == "on"
    notification_email_set(user=request.user, email=wanted)
    messages.success(
        request, "You will get emails about your cases." if wanted else "No more emails."
    )
    return redirect("owners-person", username=username)
