"""/approvals/: pending requests first, what each would do, and the forms that decide them."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import reswap

from exceptions.approvals import selectors, services
from exceptions.approvals.forms import DecideForm, EditForm
from exceptions.approvals.models import ApprovalKind, ApprovalRequest
from exceptions.views.base import HtmxHttpRequest

VIEW = "exceptions.view_approvalrequest"
TEMPLATE = "exceptions/approvals.html"


def _get(pk: int) -> ApprovalRequest:
    try:
        return selectors.approval_for_page(pk)
    except ApprovalRequest.DoesNotExist as exc:
        raise Http404("No such approval request.") from exc


def _card(
    request: HtmxHttpRequest,
    approval: ApprovalRequest,
    *,
    flash: str = "",
    flash_kind: str = "",
    decide_form: DecideForm | None = None,
    edit_form: EditForm | None = None,
) -> dict[str, Any]:
    """One request as its card shows it to this person."""
    refusal = services.may_decide(approval, request.user) if approval.is_pending else ""
    mine = approval.requested_by_id == request.user.pk
    if edit_form is None and mine and approval.is_pending:
        initial: dict[str, Any] = {"version": approval.version, "reason": approval.reason}
        if approval.kind == ApprovalKind.EDITED_REPLAY:
            initial["payload"] = selectors.pretty_json(approval.params["params"]["payload"])
        edit_form = EditForm(initial=initial, auto_id=f"edit-{approval.pk}-%s")
    return {
        "approval": approval,
        "what": selectors.what_it_does(approval),
        "can_decide": approval.is_pending and not refusal,
        "refusal": refusal,
        "mine": mine,
        "decide_form": decide_form or DecideForm.for_request(approval),
        "edit_form": edit_form if mine and approval.is_pending else None,
        "edits_payload": approval.kind == ApprovalKind.EDITED_REPLAY,
        "flash": flash,
        "flash_kind": flash_kind,
    }


@require_GET
@login_required
@permission_required(VIEW, raise_exception=True)
@vary_on_headers("HX-Request")
def approval_list(request: HtmxHttpRequest) -> HttpResponse:
    filterset, rows = selectors.approvals_list(request.GET)
    context = {
        "filter": filterset,
        "cards": [_card(request, approval) for approval in rows],
        "limit": selectors.LIST_LIMIT,
        "now": timezone.now(),
    }
    if request.htmx:
        return render(request, f"{TEMPLATE}#results", context)
    return render(request, TEMPLATE, context)


@require_GET
@login_required
@permission_required(VIEW, raise_exception=True)
def approval_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    context = {"cards": [_card(request, _get(pk))], "single": True, "now": timezone.now()}
    return render(request, TEMPLATE, context)


def _answer(
    request: HtmxHttpRequest, pk: int, *, status: int, flash: str, kind: str, **forms: Any
) -> HttpResponse:
    """The fresh card (htmx), or back to the list with the message."""
    if request.htmx:
        context = {"card": _card(request, _get(pk), flash=flash, flash_kind=kind, **forms)}
        response = render(request, f"{TEMPLATE}#card", context, status=status)
        return reswap(response, "outerHTML") if status == 403 else response
    if status == 403:
        raise PermissionDenied(flash)
    (messages.error if kind else messages.success)(request, flash)
    return redirect(reverse("approval", args=[pk]))


@require_POST
@login_required
@permission_required(services.DECIDE, raise_exception=True)
def approval_decide(request: HtmxHttpRequest, pk: int, decision: str) -> HttpResponse:
    """Approve (and run) or reject one request; refusals say why, and what changed."""
    approval = _get(pk)
    form = DecideForm(request.POST, auto_id=f"decide-{pk}-%s")
    if not form.is_valid():
        problems = " ".join(str(e) for errors in form.errors.values() for e in errors)
        return _answer(request, pk, status=422, flash=f"Not decided: {problems}", kind="error")
    comment = form.cleaned_data["comment"]
    try:
        if decision == "approve":
            done = services.approval_approve(
                approval=approval, actor=request.user, seen=form.seen(), comment=comment
            )
            flash = f"Request #{pk} approved and run{_ran(done)}."
        else:
            services.approval_reject(
                approval=approval,
                actor=request.user,
                version=form.cleaned_data["version"],
                comment=comment,
            )
            flash = f"Request #{pk} rejected: it will not run."
    except services.ApprovalForbidden as forbidden:
        return _answer(request, pk, status=403, flash=f"Not decided: {forbidden}", kind="error")
    except services.ApprovalStale as stale:
        return _answer(request, pk, status=409, flash=str(stale), kind="conflict")
    except services.ApprovalRefused as refused:
        return _answer(request, pk, status=422, flash=f"Not decided: {refused}", kind="error")
    return _answer(request, pk, status=200, flash=flash, kind="")


def _ran(approval: ApprovalRequest) -> str:
    result = approval.result
    if "replay_event" in result:
        return f": the replay is event {result['replay_event']}"
    if "bulk_job" in result:
        return f": bulk job {result['bulk_job']} works through {result['total']} cases"
    return ": the new ownership is in force" if "ownership" in result else ""


@require_POST
@login_required
@permission_required(VIEW, raise_exception=True)
def approval_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The requester changes their pending request; its version goes up."""
    approval = _get(pk)
    form = EditForm(request.POST, auto_id=f"edit-{pk}-%s")
    if not form.is_valid():
        problems = " ".join(str(e) for errors in form.errors.values() for e in errors)
        return _answer(
            request, pk, status=422, flash=f"Not changed: {problems}", kind="error", edit_form=form
        )
    data = form.cleaned_data
    try:
        edited = services.approval_request_edit(
            approval=approval,
            actor=request.user,
            version=data["version"],
            reason=data["reason"],
            payload=data["payload"],
        )
    except services.ApprovalForbidden as forbidden:
        return _answer(request, pk, status=403, flash=f"Not changed: {forbidden}", kind="error")
    except services.ApprovalRefused as refused:
        return _answer(
            request, pk, status=422, flash=f"Not changed: {refused}", kind="error", edit_form=form
        )
    flash = f"Request #{pk} is now at version {edited.version}: it waits for a new decision."
    return _answer(request, pk, status=200, flash=flash, kind="")
