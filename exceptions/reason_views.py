"""/reason-codes/: the codes cases carry; admins add their own and retire them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from exceptions.models import OPEN_STATES, ReasonCode
from exceptions.owner_forms import reason_field
from exceptions.presenters import short_duration
from exceptions.reasons import reason_code_create, reason_code_retire
from exceptions.services import CaseActionRefused
from workflows.definitions import parse_duration


def _duration(value: str) -> timedelta | None:
    if not value.strip():
        return None
    seconds = parse_duration(value.strip())
    if seconds is None or seconds < 60 or seconds > 90 * 86400:
        raise forms.ValidationError("Write a duration like 30m, 4h or 2d (1 minute to 90 days).")
    return timedelta(seconds=seconds)


class ReasonCodeForm(forms.Form):
    code = forms.SlugField(label="Code", max_length=64, help_text="e.g. duplicate_customer")
    label = forms.CharField(label="Label", max_length=200)
    description = forms.CharField(label="Description (optional)", required=False, max_length=2000)
    acknowledge_within = forms.CharField(label="Acknowledge within", required=False)
    resolve_within = forms.CharField(label="Resolve within", required=False)
    note_required = forms.BooleanField(label="A note is required to close", required=False)

    def clean_acknowledge_within(self) -> timedelta | None:
        return _duration(self.cleaned_data["acknowledge_within"])

    def clean_resolve_within(self) -> timedelta | None:
        return _duration(self.cleaned_data["resolve_within"])


@require_GET
@login_required
@permission_required("exceptions.view_reasoncode", raise_exception=True)
def reason_codes(request: HttpRequest) -> HttpResponse:
    codes = ReasonCode.objects.annotate(
        open_cases=Count("cases", filter=Q(cases__state__in=OPEN_STATES))
    ).order_by("-active", "-builtin", "code")
    rows = [
        (reason, *(short_duration(d) if d else "—" for d in (
            reason.default_acknowledge_within, reason.default_resolve_within
        )))
        for reason in codes
    ]  # fmt: skip
    context: dict[str, Any] = {
        "codes": rows,
        "can_add": request.user.has_perm("exceptions.add_reasoncode"),
        "can_retire": request.user.has_perm("exceptions.change_reasoncode"),
        "form": ReasonCodeForm(auto_id="code-%s"),
        "retire_form": forms.Form(),
    }
    return render(request, "owners/reason_codes.html", context)


@require_POST
@login_required
@permission_required("exceptions.add_reasoncode", raise_exception=True)
def reason_code_new(request: HttpRequest) -> HttpResponse:
    form = ReasonCodeForm(request.POST, auto_id="code-%s")
    if form.is_valid():
        data = form.cleaned_data
        try:
            reason = reason_code_create(actor=request.user, **data)
        except CaseActionRefused as refused:
            messages.error(request, f"Not added: {refused}")
        else:
            messages.success(request, f"Reason code {reason.code} added: operators can use it now.")
            return redirect("reason-codes")
    else:
        problems = " ".join(str(e) for errors in form.errors.values() for e in errors)
        messages.error(request, f"Not added: {problems}")
    return redirect("reason-codes")


class RetireForm(forms.Form):
    reason = reason_field(required=False)


@require_POST
@login_required
@permission_required("exceptions.change_reasoncode", raise_exception=True)
def reason_code_retire_view(request: HttpRequest, code: str) -> HttpResponse:
    reason = get_object_or_404(ReasonCode, code=code)
    form = RetireForm(request.POST)
    note = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        reason_code_retire(reason=reason, actor=request.user, note=note)
    except CaseActionRefused as refused:
        messages.error(request, f"Not retired: {refused}")
    else:
        messages.success(request, f"{reason.code} retired: its cases keep it, new ones cannot.")
    return redirect("reason-codes")
