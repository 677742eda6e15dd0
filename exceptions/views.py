"""The exception queue, the case page and the event page (DESIGN.md section 8)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import push_url, trigger_client_event
from django_htmx.middleware import HtmxDetails

from exceptions import actions, presenters, selectors, services, tasks
from exceptions.actions import BulkForm
from exceptions.filters import PAGE_SIZES, SORTS, filter_choices, view_query
from exceptions.forms import ActionForm, CommentForm, PreviewForm, SavedViewForm
from exceptions.models import (
    OPEN_STATES,
    BulkJob,
    CaseState,
    ExceptionCase,
    SavedView,
)
from exceptions.ownership import owner_panel
from exceptions.pagination import InvalidCursor
from exceptions.selectors import DEFAULT_VIEWS, SORT_SPECS
from exceptions.services import CaseActionRefused, CaseConflict
from workflows.models import Event
from workflows.services.engine import event_dry_run

TRIAGE = "exceptions.triage_exceptioncase"
VIEW_CASES = "exceptions.view_exceptioncase"
JOB_SESSION_KEY = "queue_bulk_job"


class HtmxHttpRequest(HttpRequest):
    """A request as django-htmx's middleware leaves it (the typing its documentation gives)."""

    htmx: HtmxDetails


# --- the queue --------------------------------------------------------------------------------


def _with(query: str, **changes: str) -> str:
    params = QueryDict(query, mutable=True)
    for name, value in changes.items():
        params.pop(name, None)
        if value:
            params[name] = value
    return params.urlencode()


def _queue_params(request: HtmxHttpRequest) -> QueryDict:
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
    pager = selectors.queue_groups_page if grouped else selectors.queue_page
    page = pager(
        queryset=queryset,
        sort=sort,
        after=params.get("after", ""),
        before=params.get("before", ""),
        per=per,
    )
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


def _render_results(
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
    job = services.bulk_job_create(
        actor=request.user,
        action=data["action"],
        params=form.params(me=request.user),
        note=data["note"],
        cases=cases,
        scope=scope,
    )
    if job.total <= services.BULK_INLINE_MAX:
        job = services.bulk_job_run_inline(job=job)
        return _bulk_answer(request, params, info=_job_summary(job))
    tasks.bulk_job_enqueue(job.pk)
    request.session[JOB_SESSION_KEY] = job.pk
    url = f"{reverse('queue')}?{_with(view_query(params), job=str(job.pk))}"
    if not request.htmx:
        return redirect(url)
    response = _render_results(request, QueryDict(urlsplit(url).query))
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
        return _render_results(
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
    if can_triage:
        context["comment_form"] = CommentForm(auto_id="comment-id_%s")
    if can_triage and case.is_open:
        context["preview"] = event_dry_run(event=case.event)
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
        except CaseActionRefused as refused:
            status, kind, flash = 422, "error", f"Not done: {refused}"
    fresh = _get_case(pk)
    if _from_queue(request):
        return _render_results(
            request, _queue_params(request), status=status, flash=flash, flash_kind=kind
        )
    if request.htmx:
        context = _case_context(
            request,
            fresh,
            bound=(action, shown) if shown is not None else None,
            flash=flash,
            flash_kind=kind,
        )
        return render(request, "exceptions/case.html#case", context, status=status)
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
        context["preview"] = event_dry_run(event=case.event, payload=form.cleaned_data["payload"])
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
        **owner_panel(event=event, decisions=story.decisions, now=now),
    }
    return render(request, "exceptions/event.html", context)
