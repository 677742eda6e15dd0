"""The catalogue of workflows and one workflow's page."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from console.catalogue import selectors
from console.catalogue.forms import SIMULATE, simulate_form
from console.catalogue.readiness import scorecards
from console.catalogue.samples import REVIEW_SAMPLES, VIEW_SAMPLES, DrawForm, review_summaries
from console.catalogue.selectors import workflow_for
from console.outcomes.charts import stacked_bars
from console.outcomes.presenters import bucket_label
from workflows.definition_text import definition_diff, readable_definition
from workflows.models import Workflow, WorkflowVersion

VIEW_WORKFLOWS = "workflows.view_workflow"


@require_GET
@login_required
@permission_required(VIEW_WORKFLOWS, raise_exception=True)
def workflow_list(request: HttpRequest) -> HttpResponse:
    rows, figures = selectors.catalogue()
    cards = {card.workflow.pk: card for card in scorecards(recent=figures)}
    context = {
        "rows": [(row, cards.get(row.workflow.pk)) for row in rows],
        "scope": figures.scope,
        "now": timezone.now(),
    }
    return render(request, "console/workflows.html", context)


def _number(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 9 else None


def diff_context(request: HttpRequest, versions: list[WorkflowVersion]) -> dict[str, Any]:
    """The two versions compared (?from=&to=, by number), and their diff. Newest first in."""
    by_number = {v.number: v for v in versions}
    if len(versions) < 2:
        return {"diff_versions": versions}
    new = by_number.get(_number(request.GET.get("to")) or 0, versions[0])
    old = by_number.get(_number(request.GET.get("from")) or 0)
    if old is None:
        old = next((v for v in versions if v.number < new.number), versions[-1])
    return {
        "diff_versions": versions,
        "diff_old": old,
        "diff_new": new,
        "diff": definition_diff(
            old.definition,
            new.definition,
            old_name=f"v{old.number}",
            new_name=f"v{new.number}",
        ),
    }


def page_context(request: HttpRequest, workflow: Workflow) -> dict[str, Any]:
    """Everything the workflow page shows this person."""
    page = selectors.workflow_page(workflow)
    context: dict[str, Any] = {
        "workflow": workflow,
        "page": page,
        "definition": readable_definition(
            workflow.current_version.definition if workflow.current_version else {}
        ),
        "now": timezone.now(),
        **diff_context(request, page.versions),
    }
    (context["scorecard"],) = scorecards([workflow], recent=page.figures)
    drift = selectors.drift_summary(workflow, page.figures.scope)
    context["drift"] = drift
    context["drift_chart"] = stacked_bars(
        id="drift",
        title="Events flagged for shape drift, per day",
        labels=[bucket_label(day, "day") for day, _ in drift.days],
        series=[("flagged", [count for _, count in drift.days])],
        fmt=lambda value: f"{value:,.0f}",
    )
    if request.user.has_perm(SIMULATE):
        context["simulate_form"] = simulate_form(workflow)
    if request.user.has_perm(VIEW_SAMPLES):
        context["samples"] = review_summaries(workflow)
        context["can_review"] = request.user.has_perm(REVIEW_SAMPLES)
        context["draw_form"] = DrawForm(auto_id="draw-%s")
    return context


@require_GET
@login_required
@permission_required(VIEW_WORKFLOWS, raise_exception=True)
@vary_on_headers("HX-Request")
def workflow_detail(request: HttpRequest, slug: str) -> HttpResponse:
    workflow = workflow_for(slug)
    if getattr(request, "htmx", False):
        page = selectors.workflow_versions(workflow)
        context = {"workflow": workflow, **diff_context(request, page)}
        return render(request, "console/workflow.html#diff", context)
    return render(request, "console/workflow.html", page_context(request, workflow))


@require_GET
@login_required
@permission_required(VIEW_WORKFLOWS, raise_exception=True)
def workflow_readiness(request: HttpRequest, slug: str) -> HttpResponse:
    """One workflow's readiness audit, as a page to print."""
    workflow = workflow_for(slug)
    context = {"cards": scorecards([workflow]), "single": workflow, "now": timezone.now()}
    return render(request, "console/readiness.html", context)


@require_GET
@login_required
@permission_required(VIEW_WORKFLOWS, raise_exception=True)
def readiness_all(request: HttpRequest) -> HttpResponse:
    """Every workflow's readiness audit on one page to print."""
    context = {"cards": scorecards(), "single": None, "now": timezone.now()}
    return render(request, "console/readiness.html", context)
