"""/outcomes/ and its CSV: the figures of the scope the filters choose."""

from __future__ import annotations

import csv
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required, permission_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from audit.services import audit_record
from console.outcomes import presenters
from console.outcomes.reasons import reason_recurrences
from console.outcomes.rollup import outcome_figures
from console.outcomes.scope import ScopeForm
from exceptions.models import ReasonCode

VIEW_OUTCOMES = "workflows.view_event"


@require_GET
@login_required
@permission_required(VIEW_OUTCOMES, raise_exception=True)
def outcomes(request: HttpRequest) -> HttpResponse:
    form = ScopeForm(request.GET or None)
    scope = form.scope()
    figures = outcome_figures(scope)
    selected = scope.workflow.pk if scope.workflow is not None else None
    weeks, recurrences = reason_recurrences(scope)
    context: dict[str, Any] = {
        "form": form,
        "scope": scope,
        "figures": figures,
        "panels": presenters.panels(
            figures, selected, dict(ReasonCode.objects.values_list("code", "label"))
        ),
        "summary": [
            (slug, name, figures.at(workflow_id, None))
            for workflow_id, slug, name in figures.workflows
        ],
        "total": figures.at(None, None),
        "weeks": [presenters.bucket_label(week, "week") for week in weeks],
        "recurrences": recurrences,
        "csv_query": urlencode(scope.query()),
        "now": timezone.now(),
    }
    return render(request, "console/outcomes.html", context)


@require_GET
@login_required
@permission_required(VIEW_OUTCOMES, raise_exception=True)
def outcomes_csv(request: HttpRequest) -> HttpResponse:
    """The same figures as the page, per workflow and bucket; the export is on the trail."""
    scope = ScopeForm(request.GET or None).scope()
    figures = outcome_figures(scope)
    with transaction.atomic():
        audit_record(actor=request.user, action="outcomes.export", after=scope.query())
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"outcomes-{scope.start:%Y%m%d}-{scope.end:%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    for row in presenters.csv_rows(figures):
        writer.writerow(row)
    return response
