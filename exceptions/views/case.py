"""One case and one event: their pages, the actions on a case, the replay preview."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import reswap

from exceptions import actions, presenters, selectors, services
from exceptions.forms import ActionForm, CommentForm, PreviewForm
from exceptions.models import (
    ExceptionCase,
)
from exceptions.ownership import owner_panel
from exceptions.services import CaseActionForbidden, CaseActionRefused, CaseConflict
from exceptions.views.base import TRIAGE, VIEW_CASES, HtmxHttpRequest
from exceptions.views.events import event_page_offers
from exceptions.views.queue import queue_params, render_results
from workflows.models import Event
from workflows.rules import DefinitionCompileError
from workflows.selectors import event_shape_drift
from workflows.services.engine import event_dry_run

# --- one case ---------------------------------------------------------------------------------


def _case_context(
    request: HtmxHttpRequest,
    case: ExceptionCase,
    *,
    bound: tuple[str, Any] | None = None,
    flash: str = "",
    flash_kind: str = "",
) -> dict[str, Any]:
    can_triage = request.user.has_perm(TRIAGE)
    story = presenters.event_story(selectors.event_records(event=case.event, case=case))
    now = timezone.now()
    context: dict[str, Any] = {
        "case": case,
        "event": case.event,
        "story": story,
        "now": now,
        "can_triage": can_triage,
        "flash": flash,
        "flash_kind": flash_kind,
        "group_size": selectors.group_sizes([case.fingerprint]).get(case.fingerprint, 0),
    }
    context.update(owner_panel(event=case.event, decisions=story.decisions, now=now, case=case))
    context["offers"] = actions.offers_on_case(case, request.user, bound=bound)
    context["approvals"] = case.approval_requests.select_related("requested_by").order_by("-id")
    if can_triage:
        context["comment_form"] = CommentForm(auto_id="comment-id_%s")
    if can_triage and case.is_open:
        context.update(_dry_run(case.event))
    return context


@require_GET
@login_required
@permission_required(VIEW_CASES, raise_exception=True)
@vary_on_headers("HX-Request")
def case_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    case = _get_case(pk)
    context = _case_context(request, case)
    template = "exceptions/case.html#case" if request.htmx else "exceptions/case.html"
    return render(request, template, context)


def _get_case(pk: int) -> ExceptionCase:
    try:
        return selectors.case_for_page(pk)
    except ExceptionCase.DoesNotExist as exc:
        raise Http404("No such case.") from exc


def _from_queue(request: HtmxHttpRequest) -> bool:
    current = request.htmx.current_url if request.htmx else None
    return bool(current) and urlsplit(current).path == reverse("queue")


def _safe_next(request: HtmxHttpRequest, fallback: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return fallback


@require_POST
@login_required
@permission_required(TRIAGE, raise_exception=True)
def case_action(request: HtmxHttpRequest, pk: int, action: str) -> HttpResponse:
    """Every action on one case: the form says what, the service does it or says why not."""
    chosen = actions.ACTIONS.get(action)
    if chosen is None:
        raise Http404("No such action.")
    if not request.user.has_perm(chosen.permission):
        raise PermissionDenied("Your role cannot take this action.")
    case = _get_case(pk)
    if not chosen.allowed(case, request.user):
        raise PermissionDenied("Your role cannot take this action on this case.")
    form = chosen.form(request.POST, auto_id=chosen.auto_id)
    shown: ActionForm | None = form  # none once the action is done or the case moved on
    status, flash, kind = 200, "", ""
    if not form.is_valid():
        status, kind = 422, "error"
        flash = "Not done: " + " ".join(str(e) for errors in form.errors.values() for e in errors)
    else:
        try:
            flash = actions.perform(chosen, case=case, actor=request.user, form=form)
            shown = None
        except CaseConflict as conflict:
            status, kind, flash, shown = 409, "conflict", str(conflict), None
        except CaseActionForbidden as forbidden:
            if not request.htmx:
                raise PermissionDenied(str(forbidden)) from forbidden
            status, kind, flash = 403, "error", f"Not done: {forbidden}"
        except CaseActionRefused as refused:
            status, kind, flash = 422, "error", f"Not done: {refused}"
    fresh = _get_case(pk)
    if _from_queue(request):
        return render_results(
            request, queue_params(request), status=status, flash=flash, flash_kind=kind
        )
    if request.htmx:
        context = _case_context(
            request,
            fresh,
            bound=(action, shown) if shown is not None else None,
            flash=flash,
            flash_kind=kind,
        )
        response = render(request, "exceptions/case.html#case", context, status=status)
        return reswap(response, "outerHTML") if status == 403 else response
    if status == 422 and shown is not None:
        context = _case_context(request, fresh, bound=(action, shown), flash=flash, flash_kind=kind)
        return render(request, "exceptions/case.html", context, status=status)
    if kind:
        messages.error(request, flash)
    else:
        messages.success(request, flash)
    return redirect(_safe_next(request, reverse("case", args=[pk])))


@require_POST
@login_required
@permission_required(TRIAGE, raise_exception=True)
def case_comment(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    case = _get_case(pk)
    form = CommentForm(request.POST, auto_id="comment-id_%s")
    status, flash, kind = 200, "Comment added.", ""
    if form.is_valid():
        try:
            services.case_comment(case=case, actor=request.user, body=form.cleaned_data["body"])
        except CaseActionRefused as refused:
            status, flash, kind = 422, str(refused), "error"
    else:
        status, flash, kind = 422, "Write something to comment.", "error"
    if request.htmx:
        context = _case_context(request, _get_case(pk), flash=flash, flash_kind=kind)
        return render(request, "exceptions/case.html#case", context, status=status)
    (messages.error if kind else messages.success)(request, flash)
    return redirect("case", pk=pk)


def _dry_run(event: Event, payload: Any = None) -> dict[str, Any]:
    """The preview's context: what the current version would decide, or why it cannot run."""
    try:
        return {"preview": event_dry_run(event=event, payload=payload)}
    except DefinitionCompileError as exc:
        # A version stored before a limit it now breaks: its processing_error case must show.
        return {"preview_error": f"The current version cannot run: {exc}"}


@require_POST
@login_required
@permission_required(TRIAGE, raise_exception=True)
def case_preview(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """What the current version would decide for an edited payload. Reads only."""
    case = _get_case(pk)
    form = PreviewForm(request.POST)
    context: dict[str, Any] = {"case": case, "edited": True}
    status = 200
    if form.is_valid():
        context.update(_dry_run(case.event, form.cleaned_data["payload"]))
    else:
        context["preview_error"] = " ".join(
            str(e) for e in form.errors.get("payload", ["Not valid."])
        )
        status = 422
    if not request.htmx:
        raise PermissionDenied("The preview is a part of the case page.")
    return render(request, "exceptions/case.html#preview", context, status=status)


# --- any event --------------------------------------------------------------------------------


@require_GET
@login_required
@permission_required("workflows.view_event", raise_exception=True)
def event_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    try:
        event = selectors.event_for_page(pk)
    except Event.DoesNotExist as exc:
        raise Http404("No such event.") from exc
    story = presenters.event_story(selectors.event_records(event=event))
    now = timezone.now()
    context = {
        "event": event,
        "story": story,
        "now": now,
        "can_triage": request.user.has_perm(TRIAGE),
        "queue_for_event": f"{reverse('queue')}?{urlencode({'q': event.pk})}",
        "shape_drift": event_shape_drift(event.pk),
        **owner_panel(event=event, decisions=story.decisions, now=now),
        **event_page_offers(request, event),
    }
    return render(request, "exceptions/event.html", context)
