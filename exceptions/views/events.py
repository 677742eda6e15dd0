"""/events/: every event in any state; and retrying or replaying one from its own page."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from exceptions.approvals.services import ApprovalRefused, approval_for_event_replay
from exceptions.event_filters import EVENT_SORTS, EventFilter, event_filter_choices
from exceptions.event_forms import EventReplayForm, EventRetryForm
from exceptions.event_presenters import event_rows
from exceptions.event_selectors import EVENT_SORT_SPECS, event_has_open_case, events_page
from exceptions.filters import PAGE_SIZES, people_choices, view_query
from exceptions.pagination import InvalidCursor
from exceptions.services.cases import CaseActionRefused
from exceptions.services.events import (
    PAGE_REPLAY_STATES,
    PAGE_RETRY_STATES,
    event_replay_from_page,
    event_retry_from_page,
)
from exceptions.views.base import TRIAGE, HtmxHttpRequest
from workflows.four_eyes import ApprovalRequired
from workflows.models import Event

VIEW_EVENTS = "workflows.view_event"


def _with(query: str, **changes: str) -> str:
    params = QueryDict(query, mutable=True)
    for name, value in changes.items():
        params.pop(name, None)
        if value:
            params[name] = value
    return params.urlencode()


def _list_context(params: QueryDict) -> dict[str, Any]:
    """The results part of the list. A cursor that is not ours raises InvalidCursor."""
    filterset = EventFilter(params, queryset=Event.objects.all())
    sort = params.get("sort", "")
    if sort not in EVENT_SORT_SPECS:
        sort = "newest"
    per_value = params.get("per", "50")
    per = int(per_value) if per_value in dict(PAGE_SIZES) else 50
    query = view_query(params)
    queryset = filterset.qs if filterset.is_valid() else Event.objects.none()
    page = events_page(
        queryset=queryset,
        sort=sort,
        after=params.get("after", ""),
        before=params.get("before", ""),
        per=per,
    )
    now = timezone.now()
    return {
        "filter": filterset,
        "params": params,
        "states": params.getlist("state"),
        "page": page,
        "rows": event_rows(page, now=now),
        "sort": sort,
        "per": per,
        "sorts": EVENT_SORTS,
        "page_sizes": PAGE_SIZES,
        "query": query,
        "first_url": f"?{query}",
        "next_url": f"?{_with(query, after=page.next_cursor)}" if page.next_cursor else "",
        "prev_url": f"?{_with(query, before=page.prev_cursor)}" if page.prev_cursor else "",
        "now": now,
    }


@require_GET
@login_required
@permission_required(VIEW_EVENTS, raise_exception=True)
@vary_on_headers("HX-Request")
def event_list(request: HtmxHttpRequest) -> HttpResponse:
    try:
        context = _list_context(request.GET)
    except InvalidCursor:
        context = {
            "message": "This link points to a position in the list of events that is not a "
            "valid page: it was changed or cut short.",
            "retry_url": f"{reverse('events')}?{view_query(request.GET)}",
            "retry_label": "Start from the first page",
        }
        return render(request, "400.html", context, status=400)
    if request.htmx:
        return render(request, "exceptions/events.html#rows", context)
    context.update(choices=event_filter_choices(), people=people_choices())
    return render(request, "exceptions/events.html", context)


# --- retry and replay from the event page -------------------------------------------------------


def event_page_offers(request: HtmxHttpRequest, event: Event) -> dict[str, Any]:
    """The retry and replay forms the event page shows this person, if any apply."""
    if not request.user.has_perm(TRIAGE) or event_has_open_case(event.pk):
        return {}
    offers: dict[str, Any] = {}
    if event.state in PAGE_RETRY_STATES:
        offers["retry_form"] = EventRetryForm(auto_id="retry-id_%s")
    if event.state in PAGE_REPLAY_STATES:
        offers["replay_form"] = EventReplayForm(auto_id="replay-id_%s")
    return offers


@require_POST
@login_required
@permission_required(TRIAGE, raise_exception=True)
def event_action(request: HtmxHttpRequest, pk: int, action: str) -> HttpResponse:
    """Retry or replay one event; the page says what happened, or why not."""
    event = Event.objects.select_related("workflow", "version").filter(pk=pk).first()
    if event is None or action not in ("retry", "replay"):
        raise Http404("No such event or action.")
    form: EventRetryForm | EventReplayForm
    form = EventRetryForm(request.POST) if action == "retry" else EventReplayForm(request.POST)
    if not form.is_valid():
        problems = " ".join(str(e) for errors in form.errors.values() for e in errors)
        messages.error(request, f"Not done: {problems}")
        return redirect("event", pk=pk)
    data = form.cleaned_data
    try:
        if action == "retry":
            event_retry_from_page(event=event, actor=request.user, note=data["note"])
            messages.success(request, f"Event {pk}: the step that stopped it will run again.")
        else:
            replay = event_replay_from_page(
                event=event, actor=request.user, run_version=data["run_version"], note=data["note"]
            )
            messages.success(request, f"Event {pk} replayed as event {replay.pk}.")
    except ApprovalRequired as required:
        try:
            approval = approval_for_event_replay(
                required=required,
                event=event,
                actor=request.user,
                run_version=data["run_version"],
                note=data["note"],
            )
        except ApprovalRefused as refused:
            messages.error(request, f"Not done: {refused}")
        else:
            messages.info(
                request,
                f"{required} Approval request #{approval.pk} waits for a {approval.required_role}.",
            )
    except CaseActionRefused as refused:
        messages.error(request, f"Not done: {refused}")
    return redirect("event", pk=pk)
