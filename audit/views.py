"""The trail page (DESIGN.md section 8: /audit/). Reads only audit data, so it lives here."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers
from django_htmx.middleware import HtmxDetails

from audit import presenters, selectors
from audit.models import AuditEntry
from audit.pagination import InvalidCursor


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
        "sees_everything": request.user.has_perm(selectors.SEE_EVERYTHING),
        "chain": selectors.chain_status(),
    }
    template = "audit/trail.html#results" if request.htmx else "audit/trail.html"
    return render(request, template, context)
