"""The case file of an event (/events/<id>/case-file.json and the printable /case-file/), and
the same reached from one of its cases."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from exceptions.case_file.page import page_context
from exceptions.models import ExceptionCase
from exceptions.services.case_files import case_file_generate
from exceptions.views.base import VIEW_CASES, HtmxHttpRequest
from workflows.models import Event

# Whoever may see the event page may read its case file (auditors included).
VIEW_EVENTS = "workflows.view_event"


class CaseParamInvalid(ValueError):
    pass


def _event(pk: int) -> Event:
    event = Event.objects.select_related("workflow").filter(pk=pk).first()
    if event is None:
        raise Http404("No such event.")
    return event


def _case(request: HtmxHttpRequest, event: Event) -> ExceptionCase | None:
    """The case the file was asked for from (?case=), which must be one of the event's."""
    value = request.GET.get("case", "")
    if not value:
        return None
    if not value.isdigit():
        raise CaseParamInvalid(f"case must be a case number, not {value!r}")
    case = ExceptionCase.objects.filter(pk=int(value), event=event).first()
    if case is None:
        raise Http404(f"Event {event.pk} has no case {value}.")
    return case


def _bad_case(request: HtmxHttpRequest, event: Event, problem: CaseParamInvalid) -> HttpResponse:
    context = {
        "message": f"This case file link is not valid: {problem}.",
        "retry_url": reverse("event-case-file", args=[event.pk]),
        "retry_label": f"The case file of event {event.pk}",
    }
    return render(request, "400.html", context, status=400)


@require_GET
@login_required
@permission_required(VIEW_EVENTS, raise_exception=True)
def event_case_file_json(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    event = _event(pk)
    try:
        case = _case(request, event)
    except CaseParamInvalid as problem:
        return JsonResponse(
            {"error": {"code": "invalid_case", "message": str(problem)}}, status=400
        )
    document = case_file_generate(event=event, case=case, actor=request.user, form="json")
    # Not indented: the standard library encodes with its C accelerator only without indent,
    # four times faster on a file of a thousand rows.
    response = JsonResponse(document, json_dumps_params={"ensure_ascii": False})
    response["Content-Disposition"] = f'inline; filename="case-file-event-{event.pk}.json"'
    return response


@require_GET
@login_required
@permission_required(VIEW_EVENTS, raise_exception=True)
def event_case_file(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    event = _event(pk)
    try:
        case = _case(request, event)
    except CaseParamInvalid as problem:
        return _bad_case(request, event, problem)
    document = case_file_generate(event=event, case=case, actor=request.user, form="html")
    context = page_context(document)
    query = f"?case={case.pk}" if case is not None else ""
    context["json_url"] = reverse("event-case-file-json", args=[event.pk]) + query
    return render(request, "exceptions/case_file.html", context)


@require_GET
@login_required
@permission_required(VIEW_CASES, raise_exception=True)
def case_case_file(request: HtmxHttpRequest, pk: int, as_json: bool = False) -> HttpResponse:
    """A case's file is its event's: the same document, marked as asked for from the case."""
    event_id = ExceptionCase.objects.filter(pk=pk).values_list("event_id", flat=True).first()
    if event_id is None:
        raise Http404("No such case.")
    name = "event-case-file-json" if as_json else "event-case-file"
    return redirect(f"{reverse(name, args=[event_id])}?case={pk}")
