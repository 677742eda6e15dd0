"""Sample reviews on the workflow page: draw twenty completed events at random, mark each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from console.catalogue.selectors import workflow_for
from exceptions.event_selectors import latest_outcomes
from workflows.models import Outcome, SampleReview, SampleReviewItem, Workflow
from workflows.services.sample_reviews import (
    CHECKLIST,
    SampleEmpty,
    sample_review_create,
    sample_review_mark,
)

VIEW_SAMPLES = "workflows.view_samplereview"
REVIEW_SAMPLES = "workflows.review_samplereview"
MARKS = [("", "—"), ("yes", "Yes"), ("no", "No")]


@dataclass(frozen=True)
class ReviewSummary:
    review: SampleReview
    marked: int
    answers: list[tuple[str, int, int]]  # (question, yes, no)


def review_summaries(workflow: Workflow, *, limit: int = 5) -> list[ReviewSummary]:
    """The latest reviews of the workflow with their marks counted (one query)."""
    counts: dict[str, Any] = {"marked": Count("items", filter=Q(items__marked_at__isnull=False))}
    for name, _ in CHECKLIST:
        counts[f"{name}_yes"] = Count("items", filter=Q(**{f"items__{name}": True}))
        counts[f"{name}_no"] = Count("items", filter=Q(**{f"items__{name}": False}))
    reviews = (
        SampleReview.objects.filter(workflow=workflow)
        .select_related("created_by")
        .annotate(**counts)
        .order_by("-created_at", "-id")[:limit]
    )
    return [
        ReviewSummary(
            review=r,
            marked=getattr(r, "marked"),  # noqa: B009 (an annotation the stubs do not know)
            answers=[
                (question, getattr(r, f"{name}_yes"), getattr(r, f"{name}_no"))
                for name, question in CHECKLIST
            ],
        )
        for r in reviews
    ]


class DrawForm(forms.Form):
    seed = forms.CharField(
        label="Seed (optional: repeats an earlier draw)", required=False, max_length=64
    )


class MarkForm(forms.Form):
    decision_path_clear = forms.ChoiceField(choices=MARKS, required=False)
    exception_caught_early = forms.ChoiceField(choices=MARKS, required=False)
    evidence_enough = forms.ChoiceField(choices=MARKS, required=False)
    note = forms.CharField(required=False, max_length=2000)

    def marks(self) -> dict[str, bool | None]:
        answer = {"yes": True, "no": False}
        return {name: answer.get(self.cleaned_data[name]) for name, _ in CHECKLIST}


@require_POST
@login_required
@permission_required(REVIEW_SAMPLES, raise_exception=True)
def sample_draw(request: HttpRequest, slug: str) -> HttpResponse:
    workflow = workflow_for(slug)
    form = DrawForm(request.POST)
    seed = form.cleaned_data["seed"] if form.is_valid() else ""
    try:
        review = sample_review_create(workflow=workflow, actor=request.user, seed=seed)
    except SampleEmpty as exc:
        messages.error(request, str(exc))
        return redirect("workflow", slug=slug)
    return redirect("sample-review", slug=slug, pk=review.pk)


def _review_for(workflow: Workflow, pk: int) -> SampleReview:
    review = (
        SampleReview.objects.filter(workflow=workflow, pk=pk).select_related("created_by").first()
    )
    if review is None:
        raise Http404("No such sample review.")
    return review


@dataclass(frozen=True)
class SampleRow:
    item: SampleReviewItem
    outcome: Outcome | None
    marks: list[tuple[str, str, str]]  # (field, question, "yes" | "no" | "")


def _mark(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


def _items(review: SampleReview) -> list[SampleRow]:
    """Each sampled event with its latest outcome and its marks."""
    items = list(
        review.items.select_related("event__version", "marked_by").defer(
            "event__payload", "event__headers", "event__context"
        )
    )
    outcomes = latest_outcomes([item.event_id for item in items])
    return [
        SampleRow(
            item=item,
            outcome=outcomes.get(item.event_id),
            marks=[(name, question, _mark(getattr(item, name))) for name, question in CHECKLIST],
        )
        for item in items
    ]


@require_GET
@login_required
@permission_required(VIEW_SAMPLES, raise_exception=True)
def sample_review(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    workflow = workflow_for(slug)
    review = _review_for(workflow, pk)
    context = {
        "workflow": workflow,
        "review": review,
        "rows": _items(review),
        "checklist": CHECKLIST,
        "can_mark": request.user.has_perm(REVIEW_SAMPLES),
        "marks": MARKS,
    }
    return render(request, "console/sample_review.html", context)


@require_POST
@login_required
@permission_required(REVIEW_SAMPLES, raise_exception=True)
def sample_mark(request: HttpRequest, slug: str, pk: int, item: int) -> HttpResponse:
    workflow = workflow_for(slug)
    review = _review_for(workflow, pk)
    found = review.items.filter(pk=item).first()
    if found is None:
        raise Http404("No such sampled event.")
    form = MarkForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose yes, no or — for each question.")
        return redirect("sample-review", slug=slug, pk=pk)
    sample_review_mark(
        item=found, actor=request.user, note=form.cleaned_data["note"], **form.marks()
    )
    if getattr(request, "htmx", False):
        (row,) = [row for row in _items(review) if row.item.pk == found.pk]
        context = {
            "workflow": workflow,
            "review": review,
            "row": row,
            "checklist": CHECKLIST,
            "can_mark": True,
            "marks": MARKS,
            "saved": True,
        }
        return render(request, "console/sample_review.html#item", context)
    messages.success(request, f"Marks on event {found.event_id} saved.")
    return redirect("sample-review", slug=slug, pk=pk)
