"""The exception queue: filters, pages, groups, bulk jobs and saved views."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.db.models import Q
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import push_url, trigger_client_event

from exceptions import actions, presenters, selectors, services, tasks
from exceptions.actions import BulkForm
from exceptions.approvals.services import ApprovalRefused, approval_for_bulk
from exceptions.filters import PAGE_SIZES, SORTS, filter_choices, view_query
from exceptions.forms import SavedViewForm
from exceptions.models import (
    OPEN_STATES,
    BulkJob,
    CaseState,
    ExceptionCase,
    SavedView,
)
from exceptions.pagination import InvalidCursor
from exceptions.selectors import DEFAULT_VIEWS, SORT_SPECS
from exceptions.views.base import TRIAGE, VIEW_CASES, HtmxHttpRequest
from workflows.four_eyes import ApprovalRequired

JOB_SESSION_KEY = "queue_bulk_job"


def _with(query: str, **changes: str) -> str:
    params = QueryDict(query, mutable=True)
    for name, value in changes.items():
        params.pop(name, None)
        if value:
            params[name] = value
    return params.urlencode()


def queue_params(request: HtmxHttpRequest) -> QueryDict:
    """The queue filters in force: this request's own, or those of the queue page it came from."""
    if request.method == "GET":
        return request.GET
    current = request.htmx.current_url if request.htmx else None
    if current and urlsplit(current).path == reverse("queue"):
        return QueryDict(urlsplit(current).query)
    return QueryDict(request.POST.get("query", ""))


def _queue_context(request: HtmxHttpRequest, params: QueryDict) -> dict[str, Any]:
    """The results part of the queue. A cursor that is not ours raises InvalidCursor."""
    if not params.getlist("state"):
        # No state chosen means the open ones; say so in the form and in every link.
        params = params.copy()
        params.setlist("state", list(OPEN_STATES))
    filterset = selectors.case_filter(params, user=request.user)
    sort = params.get("sort", "")
    if sort not in SORT_SPECS:
        sort = "sla"
    per_value = params.get("per", "50")
    per = int(per_value) if per_value in dict(PAGE_SIZES) else 50
    grouped = params.get("group") == "1"
    query = view_query(params)
    queryset = filterset.qs if filterset.is_valid() else ExceptionCase.objects.none()
    position = {"after": params.get("after", ""), "before": params.get("before", "")}
    if grouped:
        open_only = set(params.getlist("state")) <= set(OPEN_STATES)
        page = selectors.queue_groups_page(
            queryset=queryset, sort=sort, per=per, open_only=open_only, **position
        )
    else:
        page = selectors.queue_page(queryset=queryset, sort=sort, per=per, **position)
    job = _current_job(request, params)
    now = timezone.now()
    if grouped:
        rows = presenters.group_rows(page.rows, now=now)
    else:
        rows = presenters.queue_rows(page.rows, now=now, sizes=page.group_sizes)
    return {
        "filter": filterset,
        "params": params,
        "states": params.getlist("state"),
        "state_choices": CaseState.choices,
        "page": page,
        "rows": rows,
        "grouped": grouped,
        "sort": sort,
        "per": per,
        "sorts": SORTS,
        "page_sizes": PAGE_SIZES,
        "query": query,
        "full_query": _with(query, job=str(job.pk) if job else ""),
        "first_url": f"?{query}",
        "next_url": f"?{_with(query, after=page.next_cursor)}" if page.next_cursor else "",
        "prev_url": f"?{_with(query, before=page.prev_cursor)}" if page.prev_cursor else "",
        "sort_urls": {name: f"?{_with(query, sort=name)}" for name, _ in SORTS},
        "group_url": f"?{_with(query, group='' if grouped else '1')}",
        "job": job,
        "now": now,
        "can_triage": request.user.has_perm(TRIAGE),
    }


def _current_job(request: HtmxHttpRequest, params: QueryDict) -> BulkJob | None:
    """The bulk job to show: the one in the URL, else this person's unfinished one."""
    job_id = params.get("job") or request.session.get(JOB_SESSION_KEY)
    if not job_id or not str(job_id).isdigit():
        return None
    return selectors.bulk_job_for(pk=int(job_id), user=request.user)


def render_results(
    request: HtmxHttpRequest, params: QueryDict, *, status: int = 200, **extra: Any
) -> HttpResponse:
    try:
        context = _queue_context(request, params)
    except InvalidCursor:
        # After an action the list is shown again: from its first page, if the position the
        # person was at is not one we know.
        context = _queue_context(request, QueryDict(view_query(params)))
    context.update(extra)
    return render(request, "exceptions/queue.html#rows", context, status=status)


def _bad_position(request: HtmxHttpRequest, params: QueryDict) -> HttpResponse:
    context = {
        "message": "This link points to a position in the queue that is not a valid page: "
        "it was changed or cut short.",
        "retry_url": f"{reverse('queue')}?{view_query(params)}",
        "retry_label": "Start from the first page",
    }
    return render(request, "400.html", context, status=400)


@require_GET
@login_required
@permission_required(VIEW_CASES, raise_exception=True)
@vary_on_headers("HX-Request")
def queue(request: HtmxHttpRequest) -> HttpResponse:
    try:
        context = _queue_context(request, request.GET)
    except InvalidCursor:
        return _bad_position(request, request.GET)
    if request.htmx:
        return render(request, "exceptions/queue.html#rows", context)
    context.update(
        choices=filter_choices(),
        default_views=DEFAULT_VIEWS,
        saved_views=selectors.saved_views(user=request.user),
        bulk_form=BulkForm(auto_id="bulk-id_%s", user=request.user),
        bulk_offers=actions.offers_in_bulk(request.user),
        key_offers=actions.offers_by_key(request.user),
    )
    return render(request, "exceptions/queue.html", context)


@require_GET
@login_required
@permission_required(VIEW_CASES, raise_exception=True)
def group_members(request: HtmxHttpRequest, fingerprint: str) -> HttpResponse:
    queryset = selectors.cases_matching(request.GET, user=request.user)
    members = selectors.group_members(fingerprint=fingerprint, queryset=queryset)
    context = {
        "members": presenters.queue_rows(members, now=timezone.now()),
        "fingerprint": fingerprint,
        "now": timezone.now(),
        "can_triage": request.user.has_perm(TRIAGE),
        "group_query": _with(view_query(request.GET), fingerprint=fingerprint, group=""),
    }
    if not request.htmx:
        return redirect(f"{reverse('queue')}?{context['group_query']}")
    return render(request, "exceptions/queue.html#members", context)


@require_POST
@login_required
@permission_required(TRIAGE, raise_exception=True)
def bulk(request: HtmxHttpRequest) -> HttpResponse:
    form = BulkForm(request.POST, auto_id="bulk-id_%s", user=request.user)
    params = QueryDict(request.POST.get("query", ""))
    if not form.is_valid():
        problems = [str(e) for errors in form.errors.values() for e in errors]
        message = "Bulk action not started: " + " ".join(problems)
        return _bulk_answer(request, params, error=message, status=422)
    data = form.cleaned_data
    if data["scope"] == "matching":
        filterset = selectors.case_filter(params, user=request.user)
        if not filterset.is_valid():
            return _bulk_answer(request, params, error="The filter is not valid.", status=422)
        cases = filterset.qs
        scope = f"everything matching: {view_query(params) or 'all open'}"
    else:
        cases = ExceptionCase.objects.filter(
            Q(pk__in=data["case"]) | Q(fingerprint__in=data["group"], state__in=OPEN_STATES)
        )
        scope = f"{len(data['case'])} selected cases, {len(data['group'])} selected groups"
    asked: dict[str, Any] = {
        "actor": request.user,
        "action": data["action"],
        "params": form.params(me=request.user),
        "note": data["note"],
        "cases": cases,
        "scope": scope,
    }
    try:
        job = services.bulk_job_create(**asked)
    except ApprovalRequired as required:
        try:
            approval = approval_for_bulk(required=required, **asked)
        except ApprovalRefused as refused:
            return _bulk_answer(request, params, error=f"{required} {refused}", status=422)
        info = f"{required} Approval request #{approval.pk} waits for a {approval.required_role}."
        return _bulk_answer(request, params, info=info)
    if job.total <= services.BULK_INLINE_MAX:
        job = services.bulk_job_run_inline(job=job)
        return _bulk_answer(request, params, info=_job_summary(job))
    tasks.bulk_job_enqueue(job.pk)
    request.session[JOB_SESSION_KEY] = job.pk
    url = f"{reverse('queue')}?{_with(view_query(params), job=str(job.pk))}"
    if not request.htmx:
        return redirect(url)
    response = render_results(request, QueryDict(urlsplit(url).query))
    return push_url(response, url)


def _job_summary(job: BulkJob) -> str:
    verb = actions.ACTIONS[job.action].label.lower()
    parts = [f"{verb}: {job.succeeded} of {job.total} done"]
    if job.skipped:
        parts.append(f"{job.skipped} skipped (changed meanwhile or not applicable)")
    if job.failed:
        parts.append(f"{job.failed} failed")
    return "Bulk " + ", ".join(parts) + "."


def _bulk_answer(
    request: HtmxHttpRequest,
    params: QueryDict,
    *,
    info: str = "",
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    if request.htmx:
        return render_results(
            request, params, status=status, flash=error or info, flash_kind="error" if error else ""
        )
    if error:
        messages.error(request, error)
    else:
        messages.success(request, info)
    return redirect(f"{reverse('queue')}?{view_query(params)}")


@require_GET
@login_required
@permission_required(VIEW_CASES, raise_exception=True)
def bulk_progress(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    job = selectors.bulk_job_for(pk=pk, user=request.user)
    if job is None:
        raise Http404("No such bulk job of yours.")
    if not request.htmx:
        return redirect(f"{reverse('queue')}?job={job.pk}")
    response = render(request, "exceptions/queue.html#job", {"job": job})
    if job.is_finished:
        if request.session.get(JOB_SESSION_KEY) == job.pk:
            del request.session[JOB_SESSION_KEY]
        trigger_client_event(response, "queue-refresh")
    return response


@require_POST
@login_required
@permission_required(VIEW_CASES, raise_exception=True)
def saved_view_save(request: HtmxHttpRequest) -> HttpResponse:
    form = SavedViewForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the view a name.")
        return redirect(f"{reverse('queue')}?{request.POST.get('query', '')}")
    query = view_query(QueryDict(form.cleaned_data["query"]))
    view = services.saved_view_save(owner=request.user, name=form.cleaned_data["name"], query=query)
    messages.success(request, f"Saved the view “{view.name}”.")
    return redirect(f"{reverse('queue')}?{query}")


@require_POST
@login_required
@permission_required(VIEW_CASES, raise_exception=True)
def saved_view_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    view = get_object_or_404(SavedView, pk=pk, owner=request.user)
    services.saved_view_delete(view=view, actor=request.user)
    messages.success(request, f"Deleted the view “{view.name}”.")
    return redirect("queue")
