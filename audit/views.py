"""The trail page (DESIGN.md section 8: /audit/). Reads only audit data, so it lives here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers
from django_htmx.middleware import HtmxDetails

from audit import presenters, selectors
from audit.exports import FORMATS, PIN, Export, ExportPlan, ExportRefused, digest_trailer
from audit.models import AuditEntry
from audit.pagination import InvalidCursor
from audit.services import audit_export_record


class HtmxHttpRequest(HttpRequest):
    """A request as django-htmx's middleware leaves it (the typing its documentation gives)."""

    htmx: HtmxDetails


VIEW = "audit.view_auditentry"
EXPORT = "audit.export_auditentry"
# Parameters that are a position in the list, not part of what was asked for.
POSITION = ("after", "before")


def filter_query(params: QueryDict) -> str:
    """The query string of the filters alone: what an export of "this view" is asked for."""
    kept = params.copy()
    for name in POSITION:
        kept.pop(name, None)
    return kept.urlencode()


def _with(query: str, **changes: str) -> str:
    params = QueryDict(query, mutable=True)
    for name, value in changes.items():
        params[name] = value
    return params.urlencode()


@require_GET
@login_required
@permission_required(VIEW, raise_exception=True)
@vary_on_headers("HX-Request")
def trail(request: HtmxHttpRequest) -> HttpResponse:
    filterset = selectors.trail_filter(request.GET, user=request.user)
    entries = filterset.qs if filterset.is_valid() else AuditEntry.objects.none()
    query = filter_query(request.GET)
    chain = selectors.chain_status()
    try:
        page = selectors.trail_page(
            entries, after=request.GET.get("after", ""), before=request.GET.get("before", "")
        )
    except InvalidCursor:
        problem = {
            "message": "This link points to a position in the trail that is not a valid page.",
            "retry_url": f"{reverse('audit')}?{query}",
            "retry_label": "Start from the newest entries",
        }
        return render(request, "400.html", problem, status=400)
    context: dict[str, Any] = {
        "filter": filterset,
        "rows": presenters.entry_rows(page.rows),
        "query": query,
        "next_url": f"?{_with(query, after=page.next_cursor)}" if page.next_cursor else "",
        "prev_url": f"?{_with(query, before=page.prev_cursor)}" if page.prev_cursor else "",
        "can_export": request.user.has_perm(EXPORT),
        "export_query": _with(query, **{PIN: str(chain["sealed"])}) if chain["sealed"] else query,
        "sees_everything": request.user.has_perm(selectors.SEE_EVERYTHING),
        "chain": chain,
    }
    template = "audit/trail.html#results" if request.htmx else "audit/trail.html"
    return render(request, template, context)


def _export_plan(request: HttpRequest) -> ExportPlan | HttpResponse:
    """The export the query asks for, or a 400 page saying what in it is wrong."""
    try:
        return selectors.export_plan_for(request.GET, user=request.user)
    except ExportRefused as exc:
        problem = {
            "message": f"This export cannot be made: {exc}.",
            "retry_url": f"{reverse('audit')}?{filter_query(request.GET)}",
            "retry_label": "Back to the trail",
        }
        return render(request, "400.html", problem, status=400)


@require_GET
@login_required
@permission_required(EXPORT, raise_exception=True)
def export(request: HttpRequest, fmt: str) -> HttpResponse | StreamingHttpResponse:
    """The filtered trail as a file, streamed; audited when it ends (or is cut off).

    Pinned to a chain head: the response names it (X-Audit-Until-Seq, the file name) and links
    the digest of exactly these bytes, which a JSON Lines file also carries as its last line.
    """
    plan = _export_plan(request)
    if isinstance(plan, HttpResponse):
        return plan
    export = Export(plan, fmt)
    response = StreamingHttpResponse(
        _streamed(export, request.user), content_type=f"{FORMATS[fmt]}; charset=utf-8"
    )
    head = plan.head.seq if plan.head else 0
    pinned = _with(filter_query(request.GET), **{PIN: str(head)})
    response["Content-Disposition"] = f'attachment; filename="audit-trail-{head}.{fmt}"'
    response["X-Audit-Until-Seq"] = str(head)
    response["Link"] = f'<{reverse("audit-export-digest", args=[fmt])}?{pinned}>; rel="describedby"'
    return response


def _streamed(export: Export, actor: Any) -> Iterator[bytes]:
    complete = False
    try:
        yield from export.chunks()
        complete = True
        if export.format == "jsonl":
            yield digest_trailer(export.digest())
    finally:
        audit_export_record(actor=actor, digest=export.digest(), complete=complete)


@require_GET
@login_required
@permission_required(EXPORT, raise_exception=True)
def export_digest(request: HttpRequest, fmt: str) -> HttpResponse:
    """The digest of the export the same query gives, computed again from the table.

    Give it until_seq (the export's X-Audit-Until-Seq) and it is the digest of those bytes at
    any later time; the bytes themselves are hashed and dropped, never sent.
    """
    plan = _export_plan(request)
    if isinstance(plan, HttpResponse):
        return plan
    export = Export(plan, fmt)
    for _ in export.chunks():
        pass
    response = JsonResponse(export.digest(), json_dumps_params={"indent": 2, "sort_keys": True})
    head = plan.head.seq if plan.head else 0
    response["Content-Disposition"] = f'attachment; filename="audit-trail-{head}.{fmt}.digest"'
    return response
