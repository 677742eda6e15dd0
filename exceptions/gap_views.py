"""The ownership-gaps radar and the reassignment it links to (DESIGN.md section 8)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from exceptions import gaps, services, tasks
from exceptions.owner_forms import active_teams, reason_field
from exceptions.reassign import Scope, ScopeRefused, preview, reassign_start, scope_from
from exceptions.selectors import bulk_job_for

TRIAGE = "exceptions.triage_exceptioncase"


@require_GET
@login_required
@permission_required("exceptions.view_ownership_gaps", raise_exception=True)
def gaps_radar(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    radar = gaps.radar(now=now)
    context = {"now": now, "radar": radar, "open_gaps": sum(1 for g in radar if g.count)}
    return render(request, "owners/gaps.html", context)


class ReassignForm(forms.Form):
    to_team = forms.ModelChoiceField(
        label="To team",
        queryset=active_teams(),
        to_field_name="slug",
        required=False,
        empty_label="(keep each case's team)",
    )
    to_person = forms.ModelChoiceField(
        label="To person",
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        to_field_name="username",
        required=False,
        empty_label="(nobody: the team picks it up)",
    )
    reason = reason_field()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("to_team") and not data.get("to_person"):
            raise forms.ValidationError("Choose a team or a person to move the cases to.")
        return data


@require_http_methods(["GET", "POST"])
@login_required
@permission_required(TRIAGE, raise_exception=True)
def reassign(request: HttpRequest) -> HttpResponse:
    """GET: the scope, the form and, once a target is chosen, what would move. POST: move it."""
    params = request.POST if request.method == "POST" else request.GET
    try:
        scope = scope_from(params, user=request.user, now=timezone.now())
    except ScopeRefused as refused:
        return render(request, "owners/reassign.html", {"refused": str(refused)}, status=400)
    chosen = request.method == "POST" or "to_team" in params or "to_person" in params
    form = ReassignForm(params if chosen else None, auto_id="reassign-%s")
    context: dict[str, Any] = {
        "scope": scope,
        "form": form,
        "scope_query": scope.params.urlencode(),
    }
    if chosen and form.is_valid():
        team, person = form.cleaned_data["to_team"], form.cleaned_data["to_person"]
        context["total"], context["rows"] = preview(scope, team=team, person=person)
        if request.method == "POST" and params.get("confirm") == "1":
            return _start(request, scope, team, person, form.cleaned_data["reason"])
    elif request.method == "POST":
        return render(request, "owners/reassign.html", context, status=422)
    return render(request, "owners/reassign.html", context)


def _start(request: HttpRequest, scope: Scope, team: Any, person: Any, reason: str) -> HttpResponse:
    try:
        job = reassign_start(
            scope=scope, team=team, person=person, reason=reason, actor=request.user
        )
    except ScopeRefused as refused:
        messages.error(request, f"Not moved: {refused}")
        return redirect(f"{reverse('owners-reassign')}?{scope.params.urlencode()}")
    if job.total <= services.BULK_INLINE_MAX:
        job = services.bulk_job_run_inline(job=job)
        skipped = f", {job.skipped} skipped (changed meanwhile)" if job.skipped else ""
        messages.success(request, f"Moved {job.succeeded} of {job.total} cases{skipped}.")
    else:
        tasks.bulk_job_enqueue(job.pk)
    query = scope.params.copy()
    query["job"] = str(job.pk)
    return redirect(f"{reverse('owners-reassign-job')}?{query.urlencode()}")


@require_GET
@login_required
@permission_required(TRIAGE, raise_exception=True)
def reassign_job(request: HttpRequest) -> HttpResponse:
    """The job's progress (the queue's own progress bar), and what is left in the scope."""
    job_id = request.GET.get("job", "")
    job = bulk_job_for(pk=int(job_id), user=request.user) if job_id.isdigit() else None
    if job is None:
        return redirect("owners-gaps")
    return render(request, "owners/reassign_job.html", {"job": job})
